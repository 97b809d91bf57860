"""A build killed with SIGKILL at any stage leaves the previous index opening and answering."""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import kb
from kb.build import CHECKPOINTS

KILL_AT_ENV = "KB_BUILD_KILL_AT"
from kb.index.layout import IndexLayout

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("civil-registration-system.md", "national-patient-registry.md", "medcom.md")


@pytest.fixture()
def small_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in PAGES:
        shutil.copy(ROOT / "corpus" / name, corpus / name)
    return corpus


def run_build(corpus: Path, index: Path, kill_at: str | None) -> subprocess.CompletedProcess:
    # The English model only and no calibration: this test is about where a build dies, not what it holds.
    env = {**os.environ, "KB_QUERY_LOG_ENABLED": "0", "KB_MULTILINGUAL": "0"}
    env.pop(KILL_AT_ENV, None)
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "indexer", "build", "--corpus", str(corpus), "--index", str(index), "--quiet",
         "--answerability", str(index.parent / "no-calibration.jsonl")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_sigkill_at_every_stage_keeps_the_previous_index(tmp_path, small_corpus, embedder, settings):
    from indexer.loaders import load_corpus

    index_dir = tmp_path / "index"
    first = kb.build_index(load_corpus(small_corpus), index_dir, embedder, settings)
    question = "When was the National Patient Registry established?"

    for n, checkpoint in enumerate(CHECKPOINTS):
        page = small_corpus / "medcom.md"
        page.write_text(page.read_text(encoding="utf-8") + f"\n\nEdit number {n} for the crash test.\n", encoding="utf-8")
        before = IndexLayout(index_dir).current_build_id()
        result = run_build(small_corpus, index_dir, checkpoint)
        assert result.returncode == -signal.SIGKILL, result.stderr

        after = IndexLayout(index_dir).current_build_id()
        if checkpoint == "pointed":
            assert after != before  # the pointer was already swapped: the new version is whole
        else:
            assert after == before
        index = kb.Index.open(index_dir, embedder, settings)  # verifies checksums too
        top = index.search(question, k=1).hits[0]
        assert top.chunk.doc_id == "national-patient-registry"
        index.close()

    # the next build clears what the killed ones left and publishes normally
    page.write_text(page.read_text(encoding="utf-8") + "\n\nA final edit.\n", encoding="utf-8")
    result = run_build(small_corpus, index_dir, None)
    assert result.returncode == 0, result.stderr
    assert "built" in result.stdout
    assert not list(index_dir.glob(".staging-*"))
    final = kb.Index.open(index_dir, embedder, settings)
    assert final.version != first.build_id
    assert "A final edit." in final.document("medcom").text
    versions = {p.name for p in (index_dir / "versions").iterdir()}
    assert final.version in versions and len(versions) <= 3  # old and orphaned versions are pruned

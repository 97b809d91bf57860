"""Building an index version: chunk, reuse or encode, write aside, verify, swap in.

Embeddings are keyed by a hash of (model fingerprint, text the model sees), so a rebuild re-encodes
only chunks whose text or context changed; everything else is copied from the live version.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import faiss
import numpy as np

from kb.ingest.chunking import chunk_document, embedding_text
from kb.core.settings import BUILD_CHECKPOINTS, Settings
from kb.core.records import Chunk, Document
from kb.models.sentence_transformer import Embedder
from kb.core.fsutil import atomic_write_text, fsync_dir, fsync_file
from kb.index.layout import (
    DATABASE,
    EMBEDDINGS,
    FORMAT_VERSION,
    MANIFEST,
    SCHEMA,
    VECTORS,
    IndexLayout,
    IndexCorruptError,
    build_faiss_index,
    file_checksums,
    read_manifest,
)

# Fault injection for the crash-safety tests: the `build_kill_at` setting names a checkpoint at
# which the build SIGKILLs itself, so tests can show the previous index survives every stage.
CHECKPOINTS = BUILD_CHECKPOINTS

ProgressFn = Callable[[int, int], None]  # (done, total) chunks encoded
PostBuildFn = Callable[["object"], dict]  # (kb.Index of the staged version) -> manifest fields


class BuildError(RuntimeError):
    pass


def _checkpoint(settings: Settings, name: str) -> None:
    if settings.build_kill_at == name:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class BuildReport:
    build_id: str
    index_dir: Path
    documents: int
    chunks: int
    encoded: int
    reused: int
    seconds: float
    unchanged: bool  # nothing to do: the live version already matches the corpus
    removed_documents: int = 0
    changed_documents: int = 0
    added_documents: int = 0

    def summary(self) -> str:
        if self.unchanged:
            return (
                f"index {self.build_id} is up to date: {self.documents} documents, {self.chunks} chunks, "
                f"0 encoded, {self.chunks} reused, {self.seconds:.1f} s"
            )
        return (
            f"built {self.build_id}: {self.documents} documents ({self.added_documents} added, "
            f"{self.changed_documents} changed, {self.removed_documents} removed), {self.chunks} chunks, "
            f"{self.encoded} encoded, {self.reused} reused, {self.seconds:.1f} s"
        )


@contextmanager
def build_lock(layout: IndexLayout):
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.lock_file, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BuildError(f"Another build is running on {layout.root} (lock {layout.lock_file}).") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_index(
    documents: Iterable[Document],
    index_dir: Path,
    embedder: Embedder,
    settings: Settings,
    *,
    force: bool = False,
    progress: ProgressFn | None = None,
    extra_manifest: dict | None = None,
    post_build: PostBuildFn | None = None,
    extra_fingerprint: str = "",
) -> BuildReport:
    """Build a new version of the index in `index_dir` and make it current.

    `post_build` runs on the finished but not yet published version (an open `kb.Index`) and
    returns facts to record in its manifest — e.g. the calibrated "answered" threshold — so
    they are in place before any reader can see the version. `extra_fingerprint` names what else
    the version depends on (e.g. the hash of the calibration question files): when it changes, an
    otherwise unchanged corpus is rebuilt (every vector reused) instead of short-circuited.
    """
    t0 = time.perf_counter()
    layout = IndexLayout(Path(index_dir))
    docs = _unique_documents(documents)
    if not docs:
        raise BuildError("No documents to index: check the corpus folder.")
    settings_fingerprint = _settings_fingerprint(embedder, settings)
    corpus_fingerprint = _corpus_fingerprint(docs)

    with build_lock(layout):
        for stale in layout.stale_staging_dirs():
            shutil.rmtree(stale, ignore_errors=True)
        previous = _previous_version(layout)
        prev_manifest = previous[1] if previous else None
        if (
            not force
            and prev_manifest is not None
            and prev_manifest.get("corpus_fingerprint") == corpus_fingerprint
            and prev_manifest.get("settings_fingerprint") == settings_fingerprint
            and prev_manifest.get("extra_fingerprint", "") == extra_fingerprint
        ):
            return BuildReport(
                build_id=prev_manifest["build_id"], index_dir=layout.root,
                documents=prev_manifest["counts"]["documents"], chunks=prev_manifest["counts"]["chunks"],
                encoded=0, reused=prev_manifest["counts"]["chunks"], seconds=time.perf_counter() - t0, unchanged=True,
            )

        chunked = [(doc, chunk_document(doc, settings.chunking, embedder.count_tokens)) for doc in docs]
        all_chunks = [(doc, c) for doc, chunks in chunked for c in chunks]
        texts = [embedding_text(doc.title, c) for doc, c in all_chunks]
        hashes = [_embed_hash(embedder.fingerprint, t) for t in texts]

        vectors = np.zeros((len(all_chunks), embedder.dim), dtype=np.float32)
        reuse = _reusable_vectors(previous, set(hashes), embedder) if previous else {}
        todo = [i for i, h in enumerate(hashes) if h not in reuse]
        for i, h in enumerate(hashes):
            if h in reuse:
                vectors[i] = reuse[h]
        _encode_into(vectors, todo, texts, embedder, settings.encode_batch_size, progress)
        _checkpoint(settings, "encoded")

        build_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
        staging = layout.staging_dir(build_id)
        staging.mkdir(parents=True)
        try:
            _write_database(staging / DATABASE, chunked, hashes)
            np.save(staging / EMBEDDINGS, vectors, allow_pickle=False)
            index, index_info = build_faiss_index(vectors, settings)
            faiss.write_index(index, str(staging / VECTORS))
            for name in (DATABASE, EMBEDDINGS, VECTORS):
                fsync_file(staging / name)
            _checkpoint(settings, "staged")
            prev_docs = (prev_manifest or {}).get("documents", {})
            doc_hashes = {d.id: d.content_hash() for d in docs}
            manifest = {
                "format": FORMAT_VERSION,
                "build_id": build_id,
                "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "model": {"name": embedder.name, "fingerprint": embedder.fingerprint, "dim": embedder.dim,
                          "max_seq_length": embedder.max_seq_length},
                "chunker": {**settings.chunking.as_dict(), "token_counter": "model word pieces"},
                "index": index_info,
                "counts": {"documents": len(docs), "chunks": len(all_chunks)},
                "build": {"encoded": len(todo), "reused": len(all_chunks) - len(todo),
                          "seconds": round(time.perf_counter() - t0, 3)},
                "corpus_fingerprint": corpus_fingerprint,
                "settings_fingerprint": settings_fingerprint,
                "extra_fingerprint": extra_fingerprint,
                "documents": doc_hashes,
                "files": file_checksums(staging),
                **(extra_manifest or {}),
            }
            atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            if post_build is not None:
                from kb.search.index import Index

                staged = Index(staging, manifest, embedder, settings)
                try:
                    manifest.update(post_build(staged))
                finally:
                    staged.close()
                atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
            fsync_dir(staging)
            layout.versions.mkdir(exist_ok=True)
            final = layout.version_dir(build_id)
            os.rename(staging, final)
            fsync_dir(layout.versions)
            _checkpoint(settings, "published")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        layout.point_current_to(build_id)
        _checkpoint(settings, "pointed")
        layout.prune(keep=3)

    return BuildReport(
        build_id=build_id, index_dir=layout.root, documents=len(docs), chunks=len(all_chunks),
        encoded=len(todo), reused=len(all_chunks) - len(todo), seconds=time.perf_counter() - t0, unchanged=False,
        added_documents=sum(1 for d in doc_hashes if d not in prev_docs),
        changed_documents=sum(1 for d, h in doc_hashes.items() if d in prev_docs and prev_docs[d] != h),
        removed_documents=sum(1 for d in prev_docs if d not in doc_hashes),
    )


def _unique_documents(documents: Iterable[Document]) -> list[Document]:
    by_id: dict[str, Document] = {}
    for doc in documents:
        if doc.id in by_id:
            raise BuildError(f"Two documents share the id {doc.id!r} ({by_id[doc.id].path} and {doc.path}).")
        by_id[doc.id] = doc
    return [by_id[k] for k in sorted(by_id)]


def _settings_fingerprint(embedder: Embedder, settings: Settings) -> str:
    payload = json.dumps(
        {"model": embedder.fingerprint, "chunking": settings.chunking.as_dict(),
         "exact_max": settings.exact_index_max_vectors, "hnsw": [settings.hnsw_m, settings.hnsw_ef_construction,
                                                                 settings.hnsw_ef_search],
         "approx": [settings.approx_index, settings.ivf_nlist, settings.ivf_nprobe], "format": FORMAT_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _corpus_fingerprint(docs: list[Document]) -> str:
    digest = hashlib.sha256()
    for doc in docs:
        digest.update(doc.content_hash().encode())
    return digest.hexdigest()


def _embed_hash(model_fingerprint: str, text: str) -> str:
    return hashlib.sha256(f"{model_fingerprint}\x00{text}".encode("utf-8")).hexdigest()[:32]


def _previous_version(layout: IndexLayout) -> tuple[Path, dict] | None:
    current = layout.current_dir()
    if current is None or not current.is_dir():
        return None
    try:
        return current, read_manifest(current)
    except IndexCorruptError:
        return None


def _reusable_vectors(previous: tuple[Path, dict], wanted: set[str], embedder: Embedder) -> dict[str, np.ndarray]:
    """Vectors of the live version whose embed hash is still wanted; nothing if anything looks off."""
    version_dir, manifest = previous
    if manifest.get("model", {}).get("fingerprint") != embedder.fingerprint:
        return {}
    try:
        vectors = np.load(version_dir / EMBEDDINGS, mmap_mode="r")
        conn = sqlite3.connect(f"file:{version_dir / DATABASE}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT row, embed_hash FROM chunks").fetchall()
        finally:
            conn.close()
    except (OSError, ValueError, sqlite3.Error):
        return {}
    if vectors.ndim != 2 or vectors.shape[1] != embedder.dim:
        return {}
    return {h: np.array(vectors[row]) for row, h in rows if h in wanted and row < len(vectors)}


def _encode_into(vectors: np.ndarray, todo: list[int], texts: list[str], embedder: Embedder,
                 batch_size: int, progress: ProgressFn | None) -> None:
    # Encode in length order so each batch pads to similar lengths (much faster on CPU), in slices
    # so the progress bar moves.
    order = sorted(todo, key=lambda i: len(texts[i]))
    step = max(batch_size * 8, 1)
    for pos in range(0, len(order), step):
        ids = order[pos : pos + step]
        vectors[ids] = embedder.encode([texts[i] for i in ids], batch_size=batch_size)
        if progress:
            progress(min(pos + step, len(order)), len(order))
    if progress and not order:
        progress(0, 0)


def _write_database(path: Path, chunked: list[tuple[Document, list[Chunk]]], hashes: list[str]) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        row = 0
        with conn:
            for doc, chunks in chunked:
                conn.execute(
                    "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (doc.id, doc.title, doc.url, doc.source_type, doc.organisation, doc.as_of,
                     json.dumps(list(doc.sources)), doc.path, doc.content_hash(), doc.text),
                )
                for chunk in chunks:
                    conn.execute(
                        "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?)",
                        (row, chunk.id, chunk.doc_id, chunk.section, chunk.start, chunk.end, chunk.text, hashes[row]),
                    )
                    conn.execute(
                        "INSERT INTO chunks_fts(rowid, title, section, body) VALUES (?,?,?,?)",
                        (row, doc.title, chunk.section, chunk.text),
                    )
                    row += 1
        conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
        conn.commit()
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()

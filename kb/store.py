"""The index folder on disk: immutable versions, a CURRENT pointer, and a manifest per version.

Layout::

    <index_dir>/CURRENT                 name of the live version (written atomically)
    <index_dir>/versions/<build_id>/    manifest.json, vectors.faiss, embeddings.npy, kb.sqlite
    <index_dir>/.staging-<build_id>/    a build in progress (removed by the next build if it died)
    <index_dir>/.build.lock             one build at a time

A version folder is never modified after it is swapped in, which is what lets readers open it
without locks (SQLite `immutable=1`) and lets a running app switch versions between requests.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from kb.fsutil import atomic_write_text, sha256_file

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
EMBEDDINGS = "embeddings.npy"
DATABASE = "kb.sqlite"
DATA_FILES = (VECTORS, EMBEDDINGS, DATABASE)


class IndexError_(RuntimeError):
    """Base for index problems that a person must act on; the message says what to do."""


class IndexNotFoundError(IndexError_):
    pass


class IndexMismatchError(IndexError_):
    pass


class IndexCorruptError(IndexError_):
    pass


SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    source_type TEXT NOT NULL,
    organisation TEXT NOT NULL,
    as_of TEXT NOT NULL,
    sources TEXT NOT NULL,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,            -- the vector id in FAISS and the row in embeddings.npy
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    section TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    embed_hash TEXT NOT NULL
);
CREATE INDEX chunks_doc ON chunks(doc_id);
CREATE INDEX documents_source_type ON documents(source_type);
CREATE INDEX documents_organisation ON documents(organisation);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    title, section, body,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


@dataclass(frozen=True)
class IndexLayout:
    root: Path

    @property
    def current_file(self) -> Path:
        return self.root / "CURRENT"

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    @property
    def lock_file(self) -> Path:
        return self.root / ".build.lock"

    def version_dir(self, build_id: str) -> Path:
        return self.versions / build_id

    def staging_dir(self, build_id: str) -> Path:
        return self.root / f".staging-{build_id}"

    def current_build_id(self) -> str | None:
        try:
            value = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return value or None

    def current_dir(self) -> Path | None:
        build_id = self.current_build_id()
        return None if build_id is None else self.version_dir(build_id)

    def point_current_to(self, build_id: str) -> None:
        atomic_write_text(self.current_file, build_id + "\n")

    def stale_staging_dirs(self) -> list[Path]:
        return sorted(self.root.glob(".staging-*")) if self.root.is_dir() else []

    def prune(self, keep: int = 3) -> list[Path]:
        """Drop old versions, never the current one; readers with files open keep working (POSIX)."""
        if not self.versions.is_dir():
            return []
        current = self.current_build_id()
        versions = sorted((p for p in self.versions.iterdir() if p.is_dir()), key=lambda p: p.name)
        doomed = [p for p in versions[:-keep] if p.name != current] if keep else []
        for p in doomed:
            shutil.rmtree(p, ignore_errors=True)
        return doomed


def read_manifest(version_dir: Path) -> dict:
    try:
        return json.loads((version_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"{version_dir} has no {MANIFEST}; rebuild with `python -m indexer build`.") from exc
    except ValueError as exc:
        raise IndexCorruptError(f"{version_dir / MANIFEST} is not valid JSON ({exc}); rebuild the index.") from exc


def file_checksums(version_dir: Path) -> dict[str, dict]:
    return {
        name: {"sha256": sha256_file(version_dir / name), "bytes": (version_dir / name).stat().st_size}
        for name in DATA_FILES
    }


def verify_checksums(version_dir: Path, manifest: dict) -> None:
    """Refuse a version whose files are not the ones the build wrote (truncation, edits, bit rot)."""
    expected = manifest.get("files") or {}
    for name in DATA_FILES:
        path = version_dir / name
        want = expected.get(name)
        if want is None:
            raise IndexCorruptError(f"The manifest in {version_dir} lists no checksum for {name}; rebuild the index.")
        if not path.is_file():
            raise IndexCorruptError(f"{path} is missing; rebuild with `python -m indexer build`.")
        size = path.stat().st_size
        if size != want["bytes"] or sha256_file(path) != want["sha256"]:
            raise IndexCorruptError(
                f"{path} does not match its checksum in the manifest ({size} bytes, expected {want['bytes']}): "
                f"the file is truncated or altered. Rebuild with `python -m indexer build --force`."
            )


def check_model(manifest: dict, model_name: str, fingerprint: str, dim: int, where: Path) -> None:
    model = manifest.get("model", {})
    if model.get("dim") != dim or model.get("fingerprint") != fingerprint:
        raise IndexMismatchError(
            f"The index at {where} was built with model {model.get('name')!r} "
            f"(dimension {model.get('dim')}, fingerprint {model.get('fingerprint')}), but this process uses "
            f"{model_name!r} (dimension {dim}, fingerprint {fingerprint}). Rebuild it with this model: "
            f"`python -m indexer build --corpus corpus --index {where.parent.parent} --force`."
        )


def build_faiss_index(vectors: np.ndarray, exact_max: int, hnsw_m: int, ef_construction: int, ef_search: int) -> tuple[faiss.Index, dict]:
    """Exact inner product for small collections; HNSW above `exact_max` vectors."""
    n, dim = vectors.shape
    if n <= exact_max:
        index = faiss.IndexFlatIP(dim)
        params: dict = {"type": "flat-ip", "params": {}}
    else:
        hnsw = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = ef_construction
        hnsw.hnsw.efSearch = ef_search
        index = hnsw
        params = {"type": "hnsw-flat-ip", "params": {"M": hnsw_m, "efConstruction": ef_construction, "efSearch": ef_search}}
    if n:
        index.add(vectors)
    return index, params


class MetadataDB:
    """Read-only access to a version's SQLite file, one connection per thread.

    The file is immutable once published, so connections open it with `immutable=1`: no locks,
    no journal look-ups, safe to share across threads by giving each its own connection.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.connection()  # fail at open, not at the first request

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            uri = f"file:{self.path}?mode=ro&immutable=1"
            try:
                conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("SELECT count(*) FROM chunks").fetchone()
            except sqlite3.DatabaseError as exc:
                raise IndexCorruptError(f"{self.path} is not a readable index database ({exc}); rebuild the index.") from exc
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()

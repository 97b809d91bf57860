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
import math
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from kb.core.settings import Settings
from kb.core.fsutil import atomic_write_text, sha256_file

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


APPROX_INDEXES = ("ivf", "hnsw")
# k-means wants at least 39 training points per list (FAISS warns below that); we give it 64.
IVF_TRAIN_POINTS_PER_LIST = 64
IVF_TRAIN_SEED = 1234


def ivf_nlist_for(n: int) -> int:
    """Inverted lists for `n` vectors: about 4·√n (the FAISS guideline), at most n/39 so every list
    has enough training points. More lists mean fewer vectors scanned per probe but a costlier
    k-means at build time."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def build_faiss_index(vectors: np.ndarray, settings: Settings) -> tuple[faiss.Index, dict]:
    """Exact inner product up to `settings.exact_index_max_vectors`, approximate above.

    Why: exact search is cheapest to build, has perfect recall and costs well under a millisecond
    for a few thousand vectors; its cost grows linearly and passes a few ms near 100k vectors, where
    an approximate index pays off (docs/BENCHMARKS.md "## Scale" has the measurements). The
    returned dict goes into the manifest, so a reader configures search exactly as built.
    """
    n, dim = vectors.shape
    t0 = time.perf_counter()
    if n <= settings.exact_index_max_vectors:
        index: faiss.Index = faiss.IndexFlatIP(dim)
        info: dict = {"type": "flat-ip", "params": {}}
        if n:
            index.add(vectors)
    elif settings.approx_index == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = settings.hnsw_ef_construction
        hnsw.hnsw.efSearch = settings.hnsw_ef_search
        hnsw.add(vectors)
        index = hnsw
        info = {"type": "hnsw-flat-ip", "params": {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction,
                                                    "efSearch": settings.hnsw_ef_search}}
    elif settings.approx_index == "ivf":
        nlist = settings.ivf_nlist or ivf_nlist_for(n)
        nprobe = max(1, min(settings.ivf_nprobe, nlist))
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = IVF_TRAIN_SEED
        sample_size = min(n, nlist * IVF_TRAIN_POINTS_PER_LIST)
        rows = np.sort(np.random.default_rng(IVF_TRAIN_SEED).choice(n, size=sample_size, replace=False))
        ivf.train(np.ascontiguousarray(vectors[rows]))
        ivf.add(vectors)
        ivf.nprobe = nprobe
        index = ivf
        info = {"type": "ivf-flat-ip", "params": {"nlist": nlist, "nprobe": nprobe, "train_points": sample_size,
                                                   "train_seed": IVF_TRAIN_SEED}}
    else:
        raise ValueError(f"KB_APPROX_INDEX must be one of {', '.join(APPROX_INDEXES)}; got {settings.approx_index!r}")
    info["vectors"] = n
    info["exact_max"] = settings.exact_index_max_vectors
    info["build_seconds"] = round(time.perf_counter() - t0, 3)
    return index, info


def configure_search(index: faiss.Index, info: dict) -> None:
    """Apply the query-time parameters recorded in the manifest (nprobe, efSearch) to a loaded index."""
    params = info.get("params", {})
    if "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])
    if "efSearch" in params:
        faiss.downcast_index(index).hnsw.efSearch = int(params["efSearch"])


def search_parameters(info: dict, selector: faiss.IDSelector) -> faiss.SearchParameters:
    """Per-query parameters with a row filter, of the type the index kind requires.

    FAISS refuses plain `SearchParameters` for IVF and HNSW indexes, and per-query parameters
    replace the index's own, so nprobe/efSearch are carried over from the manifest.
    """
    params = info.get("params", {})
    if "nprobe" in params:
        return faiss.SearchParametersIVF(sel=selector, nprobe=int(params["nprobe"]))
    if "efSearch" in params:
        return faiss.SearchParametersHNSW(sel=selector, efSearch=int(params["efSearch"]))
    return faiss.SearchParameters(sel=selector)


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

"""Dense retrieval over one model's chunk vectors: FAISS built, stored, loaded and searched here.

Each dense retriever of an index version owns three files named after it: `<name>.npy` (the
normalised float32 chunk vectors, memory-mapped, row = chunk row), `<name>.faiss` (the search
structure) and `<name>.spans.npy` (vectors of the sentences and talking points inside chunks,
row = span id in the chunk store), so highlighting and talking points never run the model. Its manifest entry records the model (name, fingerprint, dimension) and the FAISS
index type with its parameters, so a reader searches exactly as built and a process holding
another model is refused with the command that rebuilds.

Index type. Exact inner product up to `exact_index_max_vectors`, approximate above: exact
search is cheapest to build, has perfect recall and costs well under a millisecond for a few
thousand vectors; its cost grows linearly and passes a few ms near 100k vectors, where an
approximate index (IVF inverted lists or an HNSW graph) pays off (docs/BENCHMARKS.md, "Scale").
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from kb.core.settings import APPROX_INDEXES, Settings
from kb.index.layout import IndexCorruptError, IndexMismatchError
from kb.models.encoder import Encoder
from kb.search.query import Query
from kb.search.retriever import Ranked

# A filtered search scores the allowed rows exactly (one matrix product) up to this many rows;
# past it, FAISS with an ID selector is cheaper than gathering the rows from the memory map.
EXACT_FILTER_MAX_ROWS = 50_000
# k-means wants at least 39 training points per list (FAISS warns below that); we give it 64.
IVF_TRAIN_POINTS_PER_LIST = 64
IVF_TRAIN_SEED = 1234


def ivf_nlist_for(n: int) -> int:
    """Inverted lists for `n` vectors: about 4·√n (the FAISS guideline), at most n/39 so every list
    has enough training points. More lists mean fewer vectors scanned per probe but a costlier
    k-means at build time."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def build_faiss_index(vectors: np.ndarray, settings: Settings) -> tuple[faiss.Index, dict]:
    """The search structure for `vectors` and its manifest description (type, parameters)."""
    n, dim = vectors.shape
    t0 = time.perf_counter()
    if n <= settings.exact_index_max_vectors:
        index: faiss.Index = faiss.IndexFlatIP(dim)
        info: dict = {"type": "flat-ip", "params": {}}
        if n:
            index.add(vectors)
    elif settings.approx_index == "hnsw":
        index, info = _hnsw(vectors, settings)
    elif settings.approx_index == "ivf":
        index, info = _ivf(vectors, settings)
    else:
        raise ValueError(f"KB_APPROX_INDEX must be one of {', '.join(APPROX_INDEXES)}; got {settings.approx_index!r}")
    info["vectors"] = n
    info["exact_max"] = settings.exact_index_max_vectors
    info["build_seconds"] = round(time.perf_counter() - t0, 3)
    return index, info


def _hnsw(vectors: np.ndarray, settings: Settings) -> tuple[faiss.Index, dict]:
    hnsw = faiss.IndexHNSWFlat(vectors.shape[1], settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = settings.hnsw_ef_construction
    hnsw.hnsw.efSearch = settings.hnsw_ef_search
    hnsw.add(vectors)
    return hnsw, {"type": "hnsw-flat-ip", "params": {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction,
                                                     "efSearch": settings.hnsw_ef_search}}


def _ivf(vectors: np.ndarray, settings: Settings) -> tuple[faiss.Index, dict]:
    n, dim = vectors.shape
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
    return ivf, {"type": "ivf-flat-ip", "params": {"nlist": nlist, "nprobe": nprobe, "train_points": sample_size,
                                                   "train_seed": IVF_TRAIN_SEED}}


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


def model_entry(encoder: Encoder) -> dict:
    return {"name": encoder.name, "fingerprint": encoder.fingerprint, "dim": encoder.dim,
            "max_seq_length": encoder.max_seq_length}


class DenseRetriever:
    """Nearest chunks by cosine for one model (vectors are normalised: inner product = cosine)."""

    kind = "dense"
    normaliser = "minmax"

    def __init__(self, name: str, encoder: Encoder, index: faiss.Index, vectors: np.ndarray, info: dict,
                 span_vectors: np.ndarray | None = None) -> None:
        self.name = name
        self.encoder = encoder
        self.info = info
        self.faiss_index = index
        self._vectors = vectors
        self._span_vectors = span_vectors if span_vectors is not None else np.zeros((0, encoder.dim), np.float32)
        self.count = int(index.ntotal)
        if self.count != len(vectors):
            raise IndexCorruptError(f"retriever {name}: {self.count} FAISS vectors but {len(vectors)} stored; rebuild.")

    # ---- files ---------------------------------------------------------------------------

    @staticmethod
    def file_names(name: str) -> dict[str, str]:
        return {"vectors": f"{name}.npy", "faiss": f"{name}.faiss", "spans": f"{name}.spans.npy"}

    def files(self) -> list[str]:
        return list(self.file_names(self.name).values())

    @classmethod
    def write(cls, folder: Path, name: str, vectors: np.ndarray, span_vectors: np.ndarray, encoder: Encoder,
              settings: Settings) -> dict:
        """Write this retriever's files for a new version; returns its manifest entry."""
        names = cls.file_names(name)
        np.save(folder / names["vectors"], vectors, allow_pickle=False)
        np.save(folder / names["spans"], span_vectors, allow_pickle=False)
        index, info = build_faiss_index(vectors, settings)
        faiss.write_index(index, str(folder / names["faiss"]))
        return {"kind": cls.kind, "model": model_entry(encoder), "files": names, "index": info}

    @classmethod
    def open(cls, folder: Path, name: str, entry: dict, encoder: Encoder) -> "DenseRetriever":
        """Load a version's files for this retriever, refusing a model other than the one it was built with."""
        model = entry.get("model", {})
        if model.get("dim") != encoder.dim or model.get("fingerprint") != encoder.fingerprint:
            raise IndexMismatchError(
                f"The index at {folder} was built with model {model.get('name')!r} for retriever {name!r} "
                f"(dimension {model.get('dim')}, fingerprint {model.get('fingerprint')}), but this process uses "
                f"{encoder.name!r} (dimension {encoder.dim}, fingerprint {encoder.fingerprint}). Rebuild it with "
                f"this model: `python -m indexer build --corpus corpus --index {folder.parent.parent} --force`."
            )
        names = cls.file_names(name)
        try:
            index = faiss.read_index(str(folder / names["faiss"]))
            vectors = np.load(folder / names["vectors"], mmap_mode="r")
            spans = np.load(folder / names["spans"], mmap_mode="r")
        except (RuntimeError, ValueError, OSError) as exc:
            raise IndexCorruptError(f"Cannot read the vectors of {name} in {folder} ({exc}); rebuild the index.") from exc
        info = entry.get("index", {})
        configure_search(index, info)
        return cls(name, encoder, index, vectors, info, spans)

    def close(self) -> None:
        pass

    # ---- searching -----------------------------------------------------------------------

    def query_vector(self, query: Query) -> np.ndarray:
        return query.vector(self.name, self.encoder)

    def search(self, query: Query, depth: int, allowed: np.ndarray | None) -> Ranked:
        return Ranked(self.name, self.nearest(self.query_vector(query), depth, allowed))

    def nearest(self, qvec: np.ndarray, depth: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The `depth` rows closest to `qvec` (within `allowed` rows when given), best first."""
        if self.count == 0:
            return []
        if allowed is not None and len(allowed) <= EXACT_FILTER_MAX_ROWS:
            if len(allowed) == 0:
                return []
            scores = np.asarray(self._vectors[allowed]) @ qvec
            n = min(depth, len(allowed))
            part = np.argpartition(-scores, n - 1)[:n]
            order = part[np.argsort(-scores[part], kind="stable")]
            return [(int(allowed[i]), float(scores[i])) for i in order]
        params = None
        if allowed is not None:
            params = search_parameters(self.info, faiss.IDSelectorBatch(allowed.astype(np.int64)))
        n = min(depth, self.count)
        scores, ids = self.faiss_index.search(qvec.reshape(1, -1), n, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def score(self, query: Query, rows: Sequence[int]) -> dict[int, float]:
        """Exact cosine of every row; sorted rows keep the memory-mapped read sequential."""
        sorted_rows = sorted(rows)
        if not sorted_rows:
            return {}
        return dict(zip(sorted_rows, (np.asarray(self._vectors[sorted_rows]) @ self.query_vector(query)).tolist()))

    def span_vectors_at(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors of spans (sentences, talking points) by span id, in the order given."""
        if len(ids) == 0:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.asarray(self._span_vectors[list(ids)])

    def vectors_at(self, rows: Sequence[int]) -> np.ndarray:
        """Stored vectors of rows (no re-encoding), in the order given."""
        if len(rows) == 0:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.asarray(self._vectors[list(rows)])

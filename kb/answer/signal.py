"""Does the index answer a query? The one answer signal every part of the product asks.

The search page's "No good match", the API's `answered`, talking points, the coverage report,
facet counts and the query log all call `answer()` here, so "a passage answers the query" means
the same thing everywhere.

The signal. For a query q, `top` is the best cosine of q with any passage (within the active
filters), and `background` is the median cosine of q with the passages (all of them, or a fixed
evenly spaced sample of `BACKGROUND_SAMPLE` for large indexes). The *answer score* is
`top - background`: how far the best passage stands out above what the corpus says about the
query in general. A raw cosine is inflated for queries that share the corpus's vocabulary
without being about it; subtracting the background removes most of that (docs/COVERAGE.md).

The cuts. `margin` (answered at or above it, verdict `covered`) and `thin_margin` (below it the
query scores like questions we know the corpus does not answer, verdict `gap`; in between
`thin`) are calibrated at build time (kb.answer.calibration) and travel in the manifest of the
version they were measured on. As cosines for one query: `cut = background + margin`.
"""
from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from kb.search.index import Index
    from kb.search.query import Filters

BACKGROUND_SAMPLE = 4096
VERDICTS = ("covered", "thin", "gap")
MANIFEST_KEY = "answer_threshold"

# Used only when an index carries no calibration (built without question files): the values
# measured on this corpus with all-MiniLM-L6-v2 (docs/COVERAGE.md), rounded.
DEFAULT_MARGIN = 0.25
DEFAULT_THIN_MARGIN = 0.20
DEFAULT_DENSE = 0.55
DEFAULT_THIN_DENSE = 0.42


@dataclass(frozen=True)
class AnswerThresholds:
    """The cuts an index was calibrated with (or the documented defaults)."""

    margin: float
    thin_margin: float
    dense: float
    thin_dense: float
    calibrated: bool

    def verdict(self, answer_score: float | None = None, top_dense: float | None = None) -> str | None:
        """covered / thin / gap from the answer score; from the raw cosine only when that is all we have."""
        if answer_score is not None and math.isfinite(answer_score):
            hi, lo, value = self.margin, self.thin_margin, answer_score
        elif top_dense is not None and math.isfinite(top_dense):
            hi, lo, value = self.dense, self.thin_dense, top_dense
        else:
            return None
        if value >= hi:
            return "covered"
        return "thin" if value >= lo else "gap"


@dataclass(frozen=True)
class Answer:
    """How well the index answers one query: the best passage, the query's background, the cuts."""

    top_dense: float | None  # best cosine within the filters; None when no passage is allowed
    background: float
    cuts: AnswerThresholds
    top_chunk_id: str | None = None
    top_doc_id: str | None = None

    @property
    def answer_score(self) -> float:
        return (self.background if self.top_dense is None else self.top_dense) - self.background

    @property
    def score(self) -> float | None:
        """The best passage's cosine (what the page and the API show beside the cut)."""
        return self.top_dense

    @property
    def cut(self) -> float:
        """The cosine a passage must reach to answer this query."""
        return self.background + self.cuts.margin

    @property
    def thin_cut(self) -> float:
        """The lower cut: a passage above it at least touches the subject."""
        return self.background + self.cuts.thin_margin

    @property
    def answered(self) -> bool:
        return self.top_dense is not None and self.top_dense >= self.cut

    @property
    def verdict(self) -> str:
        return self.cuts.verdict(answer_score=self.answer_score) or "gap"


def thresholds(index: "Index", retriever: str = "dense") -> AnswerThresholds:
    """The cuts calibrated for a dense retriever's model, from the index manifest, else the
    documented defaults."""
    value = index.manifest.get(MANIFEST_KEY)
    if isinstance(value, dict) and retriever != "dense":
        value = (value.get("by_retriever") or {}).get(retriever)
    if isinstance(value, dict) and all(_finite(value.get(k)) for k in ("margin", "thin_margin", "dense", "thin")):
        return AnswerThresholds(
            margin=float(value["margin"]), thin_margin=float(value["thin_margin"]),
            dense=float(value["dense"]), thin_dense=float(value["thin"]), calibrated=True,
        )
    return AnswerThresholds(DEFAULT_MARGIN, DEFAULT_THIN_MARGIN, DEFAULT_DENSE, DEFAULT_THIN_DENSE, calibrated=False)


def answer(index: "Index", query: str, *, filters: "Filters | None" = None,
           query_vector: np.ndarray | None = None, retriever: str = "dense") -> Answer:
    """The answer signal of `query` on `index`, within `filters` (default: the whole corpus).

    Pass the query's vector when a search already computed it, so the model does not run twice
    (the query cache may be off or full). One top-1 dense search and one product with the
    background sample: well under a millisecond on this corpus.
    """
    dense = index.dense(retriever)
    qvec = dense.encoder.encode_query(query) if query_vector is None else query_vector
    background = background_score(index, qvec, retriever)
    allowed = index.allowed_rows(filters) if filters else None
    nearest = dense.nearest(qvec, 1, allowed)
    cuts = thresholds(index, retriever)
    if not nearest:
        return Answer(None, background, cuts)
    row, top = nearest[0]
    chunk = index.store.chunks_at([row])[row]
    return Answer(float(top), background, cuts, chunk.id, chunk.doc_id)


# ---- the background -----------------------------------------------------------------------

_background_cache: "weakref.WeakKeyDictionary[Index, dict[str, np.ndarray]]" = weakref.WeakKeyDictionary()
_background_lock = threading.Lock()


def background_vectors(index: "Index", retriever: str = "dense") -> np.ndarray:
    """The stored vectors the background is measured on: all, or an evenly spaced fixed sample.

    A fixed sample (not a random one) keeps the answer score of a query reproducible for the
    lifetime of a version; it is read once per opened index and retriever.
    """
    with _background_lock:
        cached = _background_cache.get(index, {}).get(retriever)
    if cached is not None:
        return cached
    n = index.chunk_count
    dense = index.dense(retriever)
    if n == 0:
        vectors = np.zeros((0, dense.encoder.dim), dtype=np.float32)
    else:
        rows = np.unique(np.linspace(0, n - 1, min(n, BACKGROUND_SAMPLE)).round().astype(np.int64)).tolist()
        vectors = np.ascontiguousarray(dense.vectors_at(rows), dtype=np.float32)
    with _background_lock:
        _background_cache.setdefault(index, {})[retriever] = vectors
    return vectors


def background_score(index: "Index", query_vector: np.ndarray, retriever: str = "dense") -> float:
    """Median cosine of a (normalised) query vector with the corpus's passages."""
    vectors = background_vectors(index, retriever)
    if len(vectors) == 0:
        return 0.0
    return float(np.median(vectors @ query_vector))


def warm_queries(encoder: object, texts: Iterable[str], workers: int = 32) -> None:
    """Encode many queries up front, so the searches that follow find them in the query cache.

    Concurrent `encode_query` calls share model calls (kb.models' query batcher), so a hundred
    questions cost a handful of batched calls instead of a hundred single ones — ten times faster
    on a busy two-core machine. Results are cached, not returned.
    """
    unique = list(dict.fromkeys(texts))
    if len(unique) < 2:
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(unique)), thread_name_prefix="kb-warm") as pool:
        list(pool.map(encoder.encode_query, unique))


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

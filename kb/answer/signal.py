"""Does the index answer a query? The one answer signal every part of the product asks.

The search page's "No good match", the API's `answered`, talking points, the coverage report,
facet counts and the query log all call `answer()` here, so "the corpus answers this" means the
same thing everywhere, for questions, two-word topics and Danish alike.

The signal. A few measurements of the query against the index (kb.answer.features: the best
passage's cosine by multilingual-e5, the best single sentence's cosine by the serving model, how
much of the query's wording the best passage covers, and whether the query asks for an amount or
a duration the best passages do not state) go through a logistic regression (kb.answer.model)
fitted at build time on the dev split of inputs written by people outside the team
(tests/eval/answerability.jsonl). Its output, the *answer score*, is the estimated probability
that the corpus answers the query. At or above `cut` the query is answered (verdict `covered`);
below `thin_cut` it scores like the inputs we know the corpus does not answer (`gap`); in between
the corpus touches the subject (`thin`). The cuts and the model travel in the manifest of the
version they were fitted on (kb.answer.calibration); an index built without the calibration file
uses the documented defaults below, fitted the same way on this corpus.

Per passage, "answers" is a cosine cut of the serving model: the query's background (median
cosine with the corpus) plus a margin calibrated per model — what facets and the coverage
report's supporting documents count.
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

from kb.answer.features import AnswerFeatures, Measured, measure
from kb.answer.model import AnswerModel

if TYPE_CHECKING:
    from kb.search.index import Index
    from kb.search.query import Filters, SearchResponse

BACKGROUND_SAMPLE = 4096
VERDICTS = ("covered", "thin", "gap")
MANIFEST_KEY = "answer_signal"
SIGNAL_PASSAGES = 5  # the hybrid results the signal looks at

# The documented defaults, for an index built without the calibration file: the model and cuts
# fitted on the dev split of tests/eval/answerability.jsonl for this corpus (docs/COVERAGE.md) —
# one pair per model set, since `top` is e5's cosine when the index has e5 and MiniLM's otherwise,
# and the two live on different scales (e5's cluster near 0.88, MiniLM's near 0.56).
DEFAULT_MODEL = AnswerModel(
    features=("top", "sentence", "coverage", "type_miss", "non_english"),
    mean=(0.8797, 0.6972, 0.4434, 0.0578, 0.3121), scale=(0.0308, 0.165, 0.2911, 0.2334, 0.4634),
    weights=(1.6064, 0.4138, 0.5912, -1.076, 0.4549), bias=0.7683,
)
DEFAULT_CUT, DEFAULT_THIN_CUT = 0.273, 0.122
DEFAULT_MODEL_ENGLISH_ONLY = AnswerModel(  # KB_MULTILINGUAL=0: MiniLM alone
    features=("top", "sentence", "coverage", "type_miss", "non_english"),
    mean=(0.5597, 0.5826, 0.4531, 0.0809, 0.3121), scale=(0.143, 0.1449, 0.2898, 0.2727, 0.4634),
    weights=(0.8964, 0.2656, 1.107, -1.2069, 1.1302), bias=0.6313,
)
DEFAULT_CUT_ENGLISH_ONLY, DEFAULT_THIN_CUT_ENGLISH_ONLY = 0.2601, 0.1392
DEFAULT_PASSAGE_MARGIN = {"dense": 0.249, "multilingual": 0.0653}


@dataclass(frozen=True)
class AnswerThresholds:
    """The cuts of an index on the answer score (and, per model, on a passage's cosine)."""

    margin: float  # the answer score at or above which a query is answered
    thin_margin: float  # below it: a gap
    passage_margins: dict[str, float]  # per dense retriever: cosine above the query's background
    calibrated: bool

    def verdict(self, answer_score: float | None) -> str | None:
        """covered / thin / gap from an answer score; None without one (a log row of a keyword
        search, say: a cosine alone says too little, kb.answer.features)."""
        if answer_score is None or not math.isfinite(answer_score):
            return None
        if answer_score >= self.margin:
            return "covered"
        return "thin" if answer_score >= self.thin_margin else "gap"


@dataclass(frozen=True)
class Answer:
    """How well the index answers one query, and why."""

    score: float  # the answer score: estimated probability that the corpus answers the query
    cuts: AnswerThresholds
    features: AnswerFeatures
    background: float  # the serving model's median cosine of the query with the corpus
    served_by: str  # the dense retriever that served the query
    top_dense: float | None  # the best passage cosine (feature `top`)
    top_chunk_id: str | None  # the passage people read first (the search's first result)
    top_doc_id: str | None
    asks: str = ""  # "amount" / "duration" when the query asks for one

    @property
    def answer_score(self) -> float:
        return self.score

    @property
    def cut(self) -> float:
        return self.cuts.margin

    @property
    def thin_cut(self) -> float:
        return self.cuts.thin_margin

    @property
    def answered(self) -> bool:
        return self.score >= self.cuts.margin

    @property
    def verdict(self) -> str:
        return self.cuts.verdict(self.score) or "gap"

    @property
    def passage_cut(self) -> float:
        """The serving model's cosine a passage must reach to count as answering this query."""
        return self.background + self.cuts.passage_margins.get(self.served_by, 0.0)

    @property
    def reason(self) -> str:
        """One line a person can check against the best passage."""
        f = self.features
        if f.type_miss:
            return f"asks for {'an amount' if self.asks == 'amount' else 'a duration'}; none of the best passages states one"
        words = f"covers {f.coverage:.0%} of its words"
        closeness = f"best passage cosine {f.top:.3f}, best sentence {f.sentence:.3f}"
        if self.answered:
            return f"a passage answers it ({closeness}; {words})"
        if self.verdict == "thin":
            return f"the corpus touches the subject but no passage clearly answers it ({closeness}; {words})"
        return f"nothing in the corpus is about it ({closeness}; {words})"


def thresholds(index: "Index") -> AnswerThresholds:
    """The cuts calibrated for this index version, else the documented defaults."""
    value = index.manifest.get(MANIFEST_KEY)
    if isinstance(value, dict) and _finite(value.get("cut")) and _finite(value.get("thin_cut")):
        margins = {k: float(v) for k, v in (value.get("passage_margins") or {}).items() if _finite(v)}
        return AnswerThresholds(float(value["cut"]), float(value["thin_cut"]), margins, calibrated=True)
    if "multilingual" not in index.retrievers:
        return AnswerThresholds(DEFAULT_CUT_ENGLISH_ONLY, DEFAULT_THIN_CUT_ENGLISH_ONLY,
                                {"dense": DEFAULT_PASSAGE_MARGIN["dense"]}, calibrated=False)
    return AnswerThresholds(DEFAULT_CUT, DEFAULT_THIN_CUT, dict(DEFAULT_PASSAGE_MARGIN), calibrated=False)


def answer_model(index: "Index") -> AnswerModel:
    value = index.manifest.get(MANIFEST_KEY)
    if isinstance(value, dict) and isinstance(value.get("model"), dict):
        return AnswerModel.from_dict(value["model"])
    return DEFAULT_MODEL if "multilingual" in index.retrievers else DEFAULT_MODEL_ENGLISH_ONLY


def answer(index: "Index", query: str, *, filters: "Filters | None" = None,
           response: "SearchResponse | None" = None) -> Answer:
    """The answer signal of `query` on `index`, within `filters` (default: the whole corpus).

    Pass the hybrid `response` the caller already has for this query and filters, so nothing is
    searched or encoded twice; any other response (keyword or dense mode) is replaced by a hybrid
    search of `SIGNAL_PASSAGES` results.
    """
    if response is None or response.mode != "hybrid":
        response = index.search(query, k=SIGNAL_PASSAGES, mode="hybrid", filters=filters)
    measured = measure(index, query, response, filters)
    return _decide(index, response, measured)


def _decide(index: "Index", response: "SearchResponse", measured: Measured) -> Answer:
    model = answer_model(index)
    f = measured.features
    score = float(model.probability(f.vector(model.features)))
    served = response.dense_retriever
    qvec = response.vectors.get(served)
    qvec = index.dense(served).encoder.encode_query(response.query) if qvec is None else qvec
    first = response.hits[0] if response.hits else None
    return Answer(score, thresholds(index), f, background_score(index, qvec, served), served, f.top,
                  first.chunk.id if first else None, first.chunk.doc_id if first else None, measured.asks)


# ---- the background (per-passage cuts) ----------------------------------------------------

_background_cache: "weakref.WeakKeyDictionary[Index, dict[str, np.ndarray]]" = weakref.WeakKeyDictionary()
_background_lock = threading.Lock()


def background_vectors(index: "Index", retriever: str = "dense") -> np.ndarray:
    """The stored vectors the background is measured on: all, or an evenly spaced fixed sample.

    A fixed sample (not a random one) keeps a query's cuts reproducible for the lifetime of a
    version; it is read once per opened index and retriever.
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


def warm_queries(encoders: Iterable[object], texts: Iterable[str], workers: int = 16) -> None:
    """Encode many queries up front with every encoder, so the searches that follow find them in
    the query caches (concurrent `encode_query` calls share model calls)."""
    unique = list(dict.fromkeys(texts))
    encoders = list(encoders)
    if len(unique) < 2 or not encoders:
        return
    jobs = [(enc, text) for enc in encoders for text in unique]
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs)), thread_name_prefix="kb-warm") as pool:
        list(pool.map(lambda job: job[0].encode_query(job[1]), jobs))


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

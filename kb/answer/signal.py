"""Does the index answer a query at all? The "answered" cut, and what to offer when it does not.

The test compares the best passage's cosine with the query (the top hit of a dense search, within
the active filters) against a per-query cut: the query's *background* (its median cosine with the
corpus) plus the calibrated *margin* (kb.answer.calibration). A cosine means the same thing whatever the
search mode — fused hybrid scores are min-max normalised per query, so the first hit always scores
about 1 — and subtracting the background removes most of the lift a question gets from merely
sharing the corpus's vocabulary. On tests/eval the margin separates our questions from off-topic
ones far better than any fixed cosine (docs/COVERAGE.md).

The margin is measured at build time and stored in the index manifest (`answer_threshold`), so
it travels with the index it was measured on; an index built without calibration uses the
documented defaults in kb.answer.calibration (`DEFAULT_MARGIN`, `DEFAULT_THIN_MARGIN`, `DEFAULT_DENSE`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kb.answer.calibration import background_score, thresholds

if TYPE_CHECKING:  # kb.search.index imports nothing from here; keep the import graph one-way at run time
    from kb.search.index import Filters, Index


def answer_threshold(index: "Index", query: str | None = None) -> float:
    """The cosine a passage must reach to answer `query` (background + calibrated margin).

    Without a query, the calibrated fixed cosine (`dense`) — for callers that hold only a score.
    """
    cuts = thresholds(index)
    if query is None:
        return cuts.dense
    return _background(index, query) + cuts.margin


def touch_threshold(index: "Index", query: str) -> float:
    """The lower, "thin" cut: a passage above it at least touches the subject of `query`."""
    return _background(index, query) + thresholds(index).thin_margin


@dataclass(frozen=True)
class Answerability:
    """The best passage's cosine with a query, and the cut it had to reach."""

    score: float | None
    cut: float

    @property
    def answered(self) -> bool:
        return self.score is not None and self.score >= self.cut


def answerability(index: "Index", query: str, filters: "Filters | None" = None) -> Answerability:
    """Whether the index (within `filters`) holds a passage that answers `query`.

    One dense top-1 search (the query vector is cached, so it costs a vector product) — independent
    of the page size and of the mode the reader chose.
    """
    hits = index.search(query, k=1, mode="dense", filters=filters).hits
    score = float(hits[0].dense_score) if hits and hits[0].dense_score is not None else None
    return Answerability(score=score, cut=answer_threshold(index, query))


@dataclass(frozen=True)
class RelatedTopic:
    """A document to suggest when nothing answers: its title is a query that will find it."""

    title: str
    doc_id: str
    score: float


def related_topics(index: "Index", query: str, n: int = 4) -> list[RelatedTopic]:
    """Titles of the documents nearest to the query (dense), best first, one per document.

    Suggestions come from the index itself (titles people can search for), never from corpus
    files, so the web app needs nothing but the index folder.
    """
    if n < 1:
        return []
    response = index.search(query, k=max(n * 5, 20), mode="dense")
    topics: dict[str, RelatedTopic] = {}
    for hit in response.hits:
        if hit.chunk.doc_id not in topics:
            topics[hit.chunk.doc_id] = RelatedTopic(hit.citation.title, hit.chunk.doc_id, float(hit.dense_score or 0.0))
        if len(topics) == n:
            break
    return list(topics.values())


def _background(index: "Index", query: str) -> float:
    return background_score(index, index.embedder.encode_query(query))

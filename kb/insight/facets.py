"""Facet counts for a query: how many relevant documents each source type and organisation has.

Definition (documented in the README): a document counts for a query when at least one of its
passages is among the top `FACET_DEPTH` candidates of an *unfiltered* hybrid search AND that
passage's cosine with the query, by the model that served it, reaches the query's passage cut
(kb.answer.signal, `Answer.passage_cut`: its background cosine plus the margin calibrated for that
model — the passage speaks to the query). Counts are of documents, not passages, so a long page does not outweigh a short one,
and they come from the unfiltered candidates so that, on a filtered page, the other values stay
visible and clickable. The cut keeps the long tail of weak candidates (every query has 100 of
them) out of the counts: a facet says "this many documents speak to your query here", not "this
many documents exist".
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kb.answer.signal import answer

if TYPE_CHECKING:
    from kb.search.index import Index

FACET_DEPTH = 50


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int


@dataclass(frozen=True)
class Facets:
    """Counts per value, largest first; `documents` is how many documents passed the cut."""

    source_type: list[FacetValue] = field(default_factory=list)
    organisation: list[FacetValue] = field(default_factory=list)
    documents: int = 0

    def __bool__(self) -> bool:
        return self.documents > 0

    def as_dict(self) -> dict:
        return {
            "documents": self.documents,
            "source_type": [{"value": v.value, "count": v.count} for v in self.source_type],
            "organisation": [{"value": v.value, "count": v.count} for v in self.organisation],
        }


def facet_counts(index: "Index", query: str, *, depth: int = FACET_DEPTH, cut: float | None = None) -> Facets:
    """Documents per source_type and per organisation among the relevant unfiltered candidates.

    `cut` is the cosine a passage must reach; pass the `passage_cut` of an `answer()` the caller
    already has (default: computed here, which costs a second answer signal).
    """
    response = index.search(query, k=depth, mode="hybrid")
    limit = answer(index, query, response=response).passage_cut if cut is None else cut
    hits = response.hits
    doc_ids = {h.chunk.doc_id for h in hits if h.dense_score is not None and h.dense_score >= limit}
    docs = [index.documents[d] for d in doc_ids if d in index.documents]
    by_type = Counter(d.source_type for d in docs)
    by_org = Counter(d.organisation for d in docs if d.organisation)
    return Facets(source_type=_ordered(by_type), organisation=_ordered(by_org), documents=len(docs))


def _ordered(counts: Counter) -> list[FacetValue]:
    return [FacetValue(v, c) for v, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower()))]

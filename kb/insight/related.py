"""What to offer when nothing answers: titles of the documents nearest to the query."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kb.search.index import Index


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

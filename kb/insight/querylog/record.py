"""One logged request (`QueryRecord`) and how it is made from what the product answered.

The record type is the whole of what the log accepts: the time (UTC), the kind of request, the
query text, mode, filters, the result count, top scores and the documents in the top five. It
has no field for an IP address, a user agent, a cookie or any other identifier.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from kb.search.query import Filters, SearchResponse

KINDS = ("search", "talking_points")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """UTC, ISO 8601 to the second: how the log stores times, so they sort as text."""
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class QueryRecord:
    """One logged request. Deliberately no field for anything that identifies a person."""

    kind: str
    query: str
    mode: str
    filters: dict
    result_count: int
    top_score: float | None
    top_dense_score: float | None
    top_doc_id: str | None
    top5_doc_ids: tuple[str, ...]
    index_version: str
    answer_score: float | None = None
    at: str = ""  # UTC ISO 8601; filled in by `QueryLog.record` when empty

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {self.kind!r}")


def record_of(kind: str, index, query: str, results, *, mode: str | None = None,
              filters: Filters | None = None) -> QueryRecord:
    """The row for one answered request: a `SearchResponse`, or talking points (items with
    `.score` and `.citation.doc_id`, best first). Nothing about the client goes in."""
    if isinstance(results, SearchResponse):
        doc_ids = [h.chunk.doc_id for h in results.hits]
        top_score, top_dense = results.top_score, results.top_dense_score
        mode = mode or results.mode
        filters = filters or results.filters
    else:
        items = list(results or [])
        doc_ids = [item.citation.doc_id for item in items]
        top_score = float(items[0].score) if items else None
        top_dense = None  # filled in by the answer signal (the best passage's cosine)
        mode = mode or "hybrid"
    return QueryRecord(
        kind=kind, query=query, mode=mode, filters=(filters or Filters()).as_dict(),
        result_count=len(doc_ids), top_score=top_score, top_dense_score=top_dense,
        top_doc_id=doc_ids[0] if doc_ids else None, top5_doc_ids=tuple(doc_ids[:5]),
        index_version=index.version,
    )


def with_answer(rec: QueryRecord, signal) -> QueryRecord:
    """The row with the answer signal the request already computed (kb.answer.signal.Answer)."""
    top_dense = rec.top_dense_score if rec.top_dense_score is not None else signal.top_dense
    return replace(rec, answer_score=signal.answer_score, top_dense_score=top_dense)

"""One call for every endpoint that answers a question: log it to the query log, never fail.

    response = index.search(...)
    log_search("search", index, p.q, response)               # a kb.SearchResponse
    log_search("talking_points", index, p.topic, points)     # a list of talking points

Called after the response is computed. Nothing about the client (address, headers, cookies) is
read here or passed on; the row is built from the query and the results only. The answer score
(kb.answer.calibration) is computed on the log's writer thread, off the request path.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

from flask import current_app

from kb.answer.calibration import answer_signal
from kb.insight.querylog import QueryLog, QueryRecord
from kb.search.index import Filters, Index, SearchResponse

log = logging.getLogger(__name__)

EXTENSION = "kb_query_log"


def query_log() -> QueryLog | None:
    return current_app.extensions.get(EXTENSION)


def log_search(
    kind: str,
    index: Index,
    query: str,
    results: SearchResponse | Sequence,
    *,
    mode: str | None = None,
    filters: Filters | None = None,
) -> None:
    """Queue one row describing this request; swallow (and log) anything that goes wrong.

    `results` is a `SearchResponse`, or a sequence of items with `.score` and `.citation.doc_id`
    (talking points), best first; `mode`/`filters` default to the response's own.
    """
    try:
        qlog = query_log()
        if qlog is None or not qlog.enabled:
            return
        vector = results.query_vector if isinstance(results, SearchResponse) else None
        qlog.record(_record(kind, index, query, results, mode, filters), partial(_with_answer_score, index, vector))
    except Exception:
        log.exception("query log: request not logged")


def _record(kind: str, index: Index, query: str, results, mode: str | None, filters: Filters | None) -> QueryRecord:
    if isinstance(results, SearchResponse):
        doc_ids = [h.chunk.doc_id for h in results.hits]
        top_score = results.top_score
        top_dense = results.top_dense_score
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


def _with_answer_score(index: Index, query_vector, rec: QueryRecord) -> QueryRecord:
    """Runs on the writer thread: how well the whole corpus answers the query (kb.answer.calibration),
    from the vector the search already computed when there is one."""
    signal = answer_signal(index, rec.query, query_vector)
    top_dense = rec.top_dense_score if rec.top_dense_score is not None else signal.top_dense
    return replace(rec, answer_score=signal.answer_score, top_dense_score=top_dense)

"""One call for every endpoint that answers a question: count it, log it to the query log, never fail.

    response = index.search(...)
    log_search("search", index, p.q, response)               # a kb.SearchResponse
    log_search("talking_points", index, p.topic, points)     # a list of talking points

Called after the response is computed. Nothing about the client (address, headers, cookies) is
read here or passed on; the row is built from the query and the results only (kb.insight's
`record_of`). The answer score is computed on the log's writer thread, off the request path, from
the search's own query vector; a keyword-only search has none and is logged without a score
(kb.insight.querylog `with_answer_score`). Personal data in the question is redacted before the
row is stored. The same call counts the request in the metrics (search_app/metrics.py): by mode,
language, retriever route and whether it was answered.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from flask import current_app

from kb import Filters, Index, SearchResponse
from kb.insight import QueryLog, record_of, with_answer_score
from search_app.metrics import count_search

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
    """Count this request and queue one row describing it; swallow (and log) anything that goes wrong."""
    _count(kind, index, query, results, mode)
    try:
        qlog = query_log()
        if qlog is None or not qlog.enabled:
            return
        if isinstance(results, SearchResponse):
            vector, retriever = results.query_vector, results.dense_retriever
        else:
            vector, retriever = None, index.route(query).dense
        qlog.record(record_of(kind, index, query, results, mode=mode, filters=filters),
                    partial(with_answer_score, index, vector, retriever=retriever))
    except Exception:
        log.exception("query log: request not logged")


def _count(kind: str, index: Index, query: str, results: SearchResponse | Sequence, mode: str | None) -> None:
    try:
        if isinstance(results, SearchResponse):
            # ANSWERED HOOK: SearchResponse gains `answered` (with answer_score and answer_cut) in
            # another change; until then a search is counted as `unknown`.
            count_search(kind, results.mode, results.language, results.retrievers, getattr(results, "answered", None))
        else:  # talking points: answered when there are points (Briefing.answered)
            route = index.route(query)
            count_search(kind, mode or "hybrid", route.language, route.retrievers, bool(results))
    except Exception:
        log.exception("metrics: request not counted")

"""One call for every endpoint that answers a question: count it, log it to the query log, never fail.

    response = index.search(...); signal = answer(index, p.q, response=response)
    log_search("search", index, p.q, response, signal=signal)                     # a kb.SearchResponse
    log_search("talking_points", index, p.topic, points, signal=briefing.answer)  # talking points

Called after the response is computed. Nothing about the client (address, headers, cookies) is
read here or passed on; the row is built from the query and the results only (kb.insight's
`record_of`). The row stores the answer signal the request computed for its response (the API
returns it too), so the writer thread never runs a model. Personal data in the question is
redacted before the row is stored. The same call counts the request in the metrics (search_app/metrics.py): by mode,
language, retriever route and whether it was answered.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from flask import current_app

from kb import Filters, Index, SearchResponse
from kb.answer import Answer
from kb.insight import QueryLog, record_of, with_answer
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
    signal: Answer,
) -> None:
    """Count this request and queue one row describing it; swallow (and log) anything that goes wrong.
    `signal` is the answer signal the request computed (counted, and stored as the row's answer score)."""
    _count(kind, index, query, results, mode, signal)
    try:
        qlog = query_log()
        if qlog is None or not qlog.enabled:
            return
        qlog.record(with_answer(record_of(kind, index, query, results, mode=mode, filters=filters), signal))
    except Exception:
        log.exception("query log: request not logged")


def _count(kind: str, index: Index, query: str, results: SearchResponse | Sequence, mode: str | None,
           signal: Answer) -> None:
    try:
        if isinstance(results, SearchResponse):
            count_search(kind, results.mode, results.language, results.retrievers, signal.answered)
        else:  # talking points: answered when there are points (Briefing.answered)
            route = index.route(query)
            count_search(kind, mode or "hybrid", route.language, route.retrievers, bool(results))
    except Exception:
        log.exception("metrics: request not counted")

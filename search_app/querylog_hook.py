"""One call for every endpoint that answers a question: log it to the query log, never fail.

    response = index.search(...)
    log_search("search", index, p.q, response)               # a kb.SearchResponse
    log_search("talking_points", index, p.topic, points)     # a list of talking points

Called after the response is computed. Nothing about the client (address, headers, cookies) is
read here or passed on; the row is built from the query and the results only (kb.insight's
`record_of`). The answer score is computed on the log's writer thread, off the request path, from
the search's own query vector; a keyword-only search has none and is logged without a score
(kb.insight.querylog `with_answer_score`). Personal data in the question is redacted before the
row is stored.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from flask import current_app

from kb import Filters, Index, SearchResponse
from kb.insight import QueryLog, record_of, with_answer_score

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
    """Queue one row describing this request; swallow (and log) anything that goes wrong."""
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

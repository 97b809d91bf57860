"""Prometheus metrics at `/metrics`: requests, searches, the index served and the query log.

What is measured (names as scraped; `_total`, `_bucket`, `_sum`, `_count` are added by the client):

* `kb_http_request_duration_seconds{endpoint, method, status}` — a latency histogram per Flask
  endpoint (not per path: a path holds a query or a document id), method and status class (`2xx`).
* `kb_searches_total{kind, mode, language, route}` — every search and talking-points request, by
  mode, the query's language (`SearchResponse.language`) and the retrievers fused (`dense+keyword`).
* `kb_answers_total{kind, answered}` — answered or not (`true`, `false`): the request's answer signal.
* `kb_index_version{version}` (1 for the version served), `kb_index_chunks{version}`,
  `kb_index_swaps_total`, `kb_index_reload_errors_total` (each new `LiveIndex.last_error`) and
  `kb_index_reload_failing` (1 while the newest version cannot be opened).
* `kb_querylog_queue_depth` and `kb_querylog_rows_total{outcome}` (`written`, `dropped`,
  `failed`, from `QueryLog.stats`).

Under gunicorn every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (a fresh
folder per server start, made by search_app/gunicorn_conf.py, which also marks dead workers), and a
scrape of any worker adds up all of them (prometheus_client's multiprocess mode). The index and
query-log figures are taken from each worker's own state after each of its requests and at a
scrape, so a worker's figures are as of its latest request.

Who may read them is KB_METRICS (search_app/settings.py): the admin token by default; KB_METRICS_BIND
adds a second, token-free address served by the gunicorn master for a monitoring-only network.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

EXTENSION = "kb_metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable, not one of ours
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_SECONDS = Histogram("kb_http_request_duration_seconds", "Time to answer a request, by endpoint",
                            ["endpoint", "method", "status"])
SEARCHES = Counter("kb_searches", "Searches and talking-points requests answered",
                   ["kind", "mode", "language", "route"])
ANSWERS = Counter("kb_answers", "Searches by whether the corpus answered them", ["kind", "answered"])
INDEX_VERSION = Gauge("kb_index_version", "1 for each index version a live worker serves", ["version"],
                      multiprocess_mode="livemax")
INDEX_CHUNKS = Gauge("kb_index_chunks", "Chunks in the index version served", ["version"],
                     multiprocess_mode="livemax")
INDEX_SWAPS = Counter("kb_index_swaps", "Newer index versions switched to")
RELOAD_ERRORS = Counter("kb_index_reload_errors", "Newer index versions that could not be opened")
RELOAD_FAILING = Gauge("kb_index_reload_failing", "1 while the newest index version cannot be opened",
                       multiprocess_mode="livemax")
QUERYLOG_QUEUE = Gauge("kb_querylog_queue_depth", "Query-log rows waiting for the writer",
                       multiprocess_mode="livesum")
QUERYLOG_ROWS = Counter("kb_querylog_rows", "Query-log rows by what became of them", ["outcome"])


@dataclass
class _Seen:
    """What this process last reported, so counters grow by the change and gauges move on."""

    version: str | None = None
    error: str | None = None
    swaps: int = 0
    rows: tuple[int, int, int] = (0, 0, 0)


def register(app: Flask) -> None:
    """Time every request; add `/metrics` unless KB_METRICS keeps it off. Register before the
    request checks (security.register), so requests they refuse are timed too."""
    app.extensions[EXTENSION] = _Seen()
    app.before_request(_start_timer)
    app.after_request(_observe)
    web = app.config["WEB_SETTINGS"]
    if web.metrics == "open" or (web.metrics == "admin" and web.admin_token):
        app.add_url_rule("/metrics", "metrics", metrics_view)


def _start_timer() -> None:
    g.kb_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("kb_started", None)
    if started is not None:
        method = request.method if request.method in METHODS else "other"
        REQUEST_SECONDS.labels(request.endpoint or "none", method, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started)
    index = g.get("kb_index")  # set by views.current_index when the request used an index
    _refresh(index)
    return response


def count_search(kind: str, mode: str, language: str, retrievers: tuple[str, ...], answered: bool) -> None:
    """One answered request of `kind` (`search`, `talking_points`), and whether the corpus answered it."""
    SEARCHES.labels(kind, mode, language, "+".join(retrievers) or "none").inc()
    ANSWERS.labels(kind, str(bool(answered)).lower()).inc()


def _refresh(index) -> None:
    """Bring this process's index and query-log figures up to date (cheap: attribute reads)."""
    seen: _Seen = current_app.extensions[EXTENSION]
    live = current_app.extensions["kb_index"]
    if index is not None and index.version != seen.version:
        if seen.version is not None:
            INDEX_VERSION.labels(seen.version).set(0)
            INDEX_CHUNKS.labels(seen.version).set(0)
        seen.version = index.version
        INDEX_VERSION.labels(index.version).set(1)
        INDEX_CHUNKS.labels(index.version).set(index.chunk_count)
    if live.swaps > seen.swaps:
        INDEX_SWAPS.inc(live.swaps - seen.swaps)
        seen.swaps = live.swaps
    if live.last_error != seen.error:
        if live.last_error is not None:
            RELOAD_ERRORS.inc()
        seen.error = live.last_error
        RELOAD_FAILING.set(0 if live.last_error is None else 1)
    _refresh_query_log(seen)


def _refresh_query_log(seen: _Seen) -> None:
    from search_app.querylog_hook import query_log

    qlog = query_log()
    if qlog is None:
        return
    stats = qlog.stats
    rows = (stats.written, stats.dropped, stats.failed)
    for outcome, now, before in zip(("written", "dropped", "failed"), rows, seen.rows):
        if now > before:
            QUERYLOG_ROWS.labels(outcome).inc(now - before)
    seen.rows = rows
    QUERYLOG_QUEUE.set(queue_depth(qlog))


def queue_depth(qlog) -> int:
    """Rows queued and not yet written. QueryLog has no public accessor for its writer's queue yet;
    this reads it where it is and says 0 if that ever moves, rather than breaking a scrape."""
    pending = getattr(getattr(getattr(qlog, "_writer", None), "_queue", None), "qsize", None)
    return int(pending()) if callable(pending) else 0


def exposition() -> bytes:
    """The text format: every worker's values when running under gunicorn, else this process's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def metrics_view():
    if current_app.config["WEB_SETTINGS"].metrics == "admin":
        from search_app.admin import require_token

        refused = require_token()  # the admin pages' check: Bearer token, throttled guessing
        if refused is not None:
            return refused
    try:
        _refresh(current_app.extensions["kb_index"].get())
    except Exception:  # no index yet: the request figures are still worth reading
        _refresh(None)
    response = Response(exposition(), mimetype=CONTENT_TYPE_LATEST.split(";")[0])
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response

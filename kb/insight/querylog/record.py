"""The query log: what people ask and how well the index answered — never who asked.

A SQLite file of its own (`KB_QUERY_LOG`), beside the index but not inside it, so it survives
rebuilds. Rows hold the time (UTC), the kind of request, the query text, mode, filters, the result
count, top scores and the documents in the top five; no IP address, user agent, cookie or any
other identifier is ever accepted by this module (the record type has no field for one).

Writing must never slow or break a search, so `QueryLog.record` only puts the row on a bounded
queue and returns; a background thread enriches it (the answer score, kb.answer.signal) and inserts
rows in batches. A full queue drops the row, a failed write is logged and counted, never raised.
Rows older than the retention period are purged when the writer starts and then periodically.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kb.answer.signal import answer
from kb.core.settings import Settings
from kb.search.query import Filters, SearchResponse

log = logging.getLogger(__name__)

KINDS = ("search", "talking_points")
QUEUE_SIZE = 10_000
BATCH_SIZE = 256
PURGE_EVERY_SECONDS = 3600.0
RETRY_OPEN_SECONDS = 30.0
BUSY_TIMEOUT_SECONDS = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,                 -- UTC, ISO 8601 to the second: sorts as text
    kind TEXT NOT NULL,               -- search | talking_points
    query TEXT NOT NULL,
    mode TEXT NOT NULL,
    filters TEXT NOT NULL,            -- JSON object
    result_count INTEGER NOT NULL,
    top_score REAL,
    top_dense_score REAL,             -- best cosine of the query with any passage
    answer_score REAL,                -- top cosine minus background cosine (kb.answer.signal)
    top_doc_id TEXT,
    top5_doc_ids TEXT NOT NULL,       -- JSON list, for "documents nobody sees"
    index_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queries_at ON queries(at);
"""
COLUMNS = ("at", "kind", "query", "mode", "filters", "result_count", "top_score", "top_dense_score",
           "answer_score", "top_doc_id", "top5_doc_ids", "index_version")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
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

    def row(self) -> tuple:
        return (self.at, self.kind, self.query, self.mode, json.dumps(self.filters, sort_keys=True),
                int(self.result_count), _float(self.top_score), _float(self.top_dense_score),
                _float(self.answer_score), self.top_doc_id, json.dumps(list(self.top5_doc_ids)), self.index_version)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "QueryRecord":
        return cls(
            kind=row["kind"], query=row["query"], mode=row["mode"], filters=json.loads(row["filters"]),
            result_count=row["result_count"], top_score=row["top_score"], top_dense_score=row["top_dense_score"],
            top_doc_id=row["top_doc_id"], top5_doc_ids=tuple(json.loads(row["top5_doc_ids"])),
            index_version=row["index_version"], answer_score=row["answer_score"], at=row["at"],
        )


Enricher = Callable[[QueryRecord], QueryRecord]
_STOP = object()
_PURGE = object()


@dataclass
class QueryLogStats:
    written: int = 0
    dropped: int = 0  # queue full or log unavailable
    failed: int = 0  # rows lost to a write error
    enrich_failed: int = 0  # rows written without their answer score
    purged: int = 0


class QueryLog:
    """Append-only log with a background writer; safe to call from any request thread."""

    def __init__(
        self,
        path: Path,
        retention_days: int,
        *,
        enabled: bool = True,
        queue_size: int = QUEUE_SIZE,
        purge_every_seconds: float = PURGE_EVERY_SECONDS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.enabled = enabled
        self.purge_every_seconds = purge_every_seconds
        self.stats = QueryLogStats()
        self._clock = clock
        self._queue_size = queue_size
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        self._exit_hook = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "QueryLog":
        return cls(settings.query_log_path, settings.query_log_retention_days, enabled=settings.query_log_enabled)

    # ---- writing (request threads) -------------------------------------------------------

    def start(self) -> None:
        """Start the writer and have it purge expired rows now (app start-up); never raises."""
        if not self.enabled or self._closed:
            return
        try:
            self._ensure_writer()
            self._queue.put_nowait(_PURGE)
            if not self._exit_hook:  # write what is queued when the process ends normally
                atexit.register(self.close, 2.0)
                self._exit_hook = True
        except Exception:
            log.exception("query log: could not start the writer")

    def record(self, rec: QueryRecord, enrich: Enricher | None = None) -> bool:
        """Queue a row for writing; returns at once. False when disabled, closed or the queue is full."""
        if not self.enabled or self._closed:
            return False
        try:
            self._ensure_writer()
            if not rec.at:
                rec = replace(rec, at=iso(self._clock()))
            self._queue.put_nowait((rec, enrich))
            return True
        except queue.Full:
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                log.warning("query log queue full; %d rows dropped so far", self.stats.dropped)
            return False
        except Exception:  # never let logging reach the caller
            self.stats.dropped += 1
            log.exception("query log: could not queue a row")
            return False

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued row is written (or failed); for tests and shutdown."""
        if self._thread is None:
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline or not self._thread.is_alive():
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer. Later `record` calls are ignored."""
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                return
            thread.join(timeout)

    def _ensure_writer(self) -> None:
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid != os.getpid():  # forked (e.g. a server worker): the parent's thread is gone
                self._pid = os.getpid()
                self._queue = queue.Queue(maxsize=self._queue_size)
                self._thread = None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kb-querylog-writer", daemon=True)
                self._thread.start()

    # ---- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        next_open = 0.0
        next_purge = 0.0  # purge as soon as the log is open (start-up), then periodically
        errors = 0
        while True:
            try:  # wake up now and then even when idle, so expired rows go on time
                batch = [self._queue.get(timeout=min(self.purge_every_seconds, 60.0))]
            except queue.Empty:
                batch = []
            while batch and len(batch) < BATCH_SIZE:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is _STOP for b in batch)
            if any(b is _PURGE for b in batch):
                next_purge = 0.0
            records = [self._enriched(*b) for b in batch if b is not _STOP and b is not _PURGE]
            try:
                if records or time.monotonic() >= next_purge:
                    if conn is None and time.monotonic() >= next_open:
                        conn = self._connect()
                    if conn is None:
                        self.stats.dropped += len(records)
                    else:
                        if records:
                            with conn:
                                conn.executemany(
                                    f"INSERT INTO queries ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                                    [r.row() for r in records],
                                )
                            self.stats.written += len(records)
                        if time.monotonic() >= next_purge:  # at start-up, then every purge_every_seconds
                            self._purge_with(conn)
                            next_purge = time.monotonic() + self.purge_every_seconds
            except (sqlite3.Error, OSError, ValueError) as exc:
                errors += 1
                self.stats.failed += len(records)
                if errors == 1 or errors % 100 == 0:
                    log.error("query log write to %s failed (%d rows lost, %d failures so far): %s",
                              self.path, len(records), errors, exc)
                if conn is not None:
                    _close_quietly(conn)
                conn = None
                next_open = time.monotonic() + RETRY_OPEN_SECONDS
            except Exception:  # a bug here must not kill the writer
                self.stats.failed += len(records)
                log.exception("query log writer error")
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                if conn is not None:
                    _close_quietly(conn)
                return

    def _enriched(self, rec: QueryRecord, enrich: Enricher | None) -> QueryRecord:
        if enrich is None:
            return rec
        try:
            return enrich(rec)
        except Exception as exc:
            self.stats.enrich_failed += 1
            log.warning("query log: answer score not computed (%s); row written without it", exc)
            return rec

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    # ---- retention -----------------------------------------------------------------------

    def cutoff(self) -> str | None:
        """Rows timed before this are past retention; None when retention is off (days <= 0)."""
        if self.retention_days <= 0:
            return None
        return iso(self._clock() - timedelta(days=self.retention_days))

    def _purge_with(self, conn: sqlite3.Connection) -> int:
        cutoff = self.cutoff()
        if cutoff is None:
            return 0
        with conn:
            removed = conn.execute("DELETE FROM queries WHERE at < ?", (cutoff,)).rowcount
        self.stats.purged += removed
        if removed:
            log.info("query log: purged %d rows older than %d days", removed, self.retention_days)
        return removed

    def purge(self) -> int:
        """Delete rows past retention now (the writer also does this on start and hourly)."""
        if not self.path.exists():
            return 0
        conn = self._connect()
        try:
            return self._purge_with(conn)
        finally:
            conn.close()

    # ---- reading (admin pages) -----------------------------------------------------------

    def read(self, since: datetime | None = None, limit: int = 200_000) -> list[QueryRecord]:
        """Rows at or after `since` (all when None), oldest first; empty when there is no log yet."""
        if not self.path.exists():
            return []
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        conn.row_factory = sqlite3.Row
        try:
            try:
                rows = conn.execute(
                    "SELECT * FROM queries WHERE at >= ? ORDER BY id LIMIT ?",
                    (iso(since) if since else "", limit),
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise
        finally:
            conn.close()
        return [QueryRecord.from_row(r) for r in rows]


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _close_quietly(conn: sqlite3.Connection) -> None:
    try:
        conn.close()
    except sqlite3.Error:
        pass


# ---- rows from what the product answered ----------------------------------------------------

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


def with_answer_score(index, query_vector, rec: QueryRecord) -> QueryRecord:
    """An `Enricher` for the writer thread: how well the whole corpus answers the query (the
    answer signal), from the vector the search already computed when there is one."""
    signal = answer(index, rec.query, query_vector=query_vector)
    top_dense = rec.top_dense_score if rec.top_dense_score is not None else signal.top_dense
    return replace(rec, answer_score=signal.answer_score, top_dense_score=top_dense)

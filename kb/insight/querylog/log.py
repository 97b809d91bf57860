"""`QueryLog`: what the web app holds — a store, a background writer and a retention policy.

Request threads call `record`, which only queues the row (`BackgroundWriter`) and returns; the
writer thread hands each batch to `Batches` (enrich, insert, retention). Every failure is logged
and counted in `stats`, never raised. The admin pages read through `read`, `bounds` and
`period`, which raise `QueryLogUnavailable` when the database cannot be read.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from kb.answer.signal import AnswerThresholds
from kb.core.settings import Settings
from kb.insight.querylog.batches import Batches, Enricher
from kb.insight.querylog.location import open_store
from kb.insight.querylog.record import QueryRecord, iso, utc_now
from kb.insight.querylog.retention import PURGE_EVERY_SECONDS, Retention
from kb.insight.querylog.store import PeriodCounts, QueryStore
from kb.insight.querylog.writer import BackgroundWriter, QueryLogStats

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
READ_LIMIT = 10_000


class QueryLogUnavailable(RuntimeError):
    """The log's database cannot be read just now (the message says where and why)."""


class QueryLog:
    """Append-only log with a background writer; safe to call from any request thread."""

    def __init__(
        self,
        location: str | os.PathLike | QueryStore,
        retention_days: int,
        *,
        enabled: bool = True,
        max_rows: int = 0,
        max_bytes: int = 0,
        queue_size: int = QUEUE_SIZE,
        purge_every_seconds: float = PURGE_EVERY_SECONDS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if retention_days < 1:  # 0 or less used to mean "never purge"; questions are never kept forever
            raise ValueError(f"retention_days must be at least 1 (got {retention_days}): questions are never kept forever")
        self.store = location if isinstance(location, QueryStore) else open_store(location)
        self.enabled = enabled
        self.retention = Retention(retention_days, max_rows, max_bytes, purge_every_seconds, clock)
        self.stats = QueryLogStats()
        self._clock = clock
        batches = Batches(self.store, self.retention, self.stats)
        self._writer = BackgroundWriter(batches.write, self.stats, queue_size=queue_size,
                                        idle_seconds=min(purge_every_seconds, 60.0))
        self._closed = False
        self._schema_lock = threading.Lock()
        self._schema_ready = False  # the readers' view

    @classmethod
    def from_settings(cls, settings: Settings) -> "QueryLog":
        return cls(settings.query_log_path, settings.query_log_retention_days, enabled=settings.query_log_enabled,
                   max_rows=settings.query_log_max_rows, max_bytes=settings.query_log_max_bytes)

    @property
    def retention_days(self) -> int:
        return self.retention.days

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for a database server."""
        return getattr(self.store, "path", None)

    # ---- request threads -------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer and have it apply retention now (app start-up); never raises."""
        if not self.enabled or self._closed:
            return
        try:
            self._writer.poke()
        except Exception:
            log.exception("query log: could not start the writer")

    def record(self, rec: QueryRecord, enrich: Enricher | None = None) -> bool:
        """Queue a row for writing; returns at once. False when disabled, closed or the queue is full."""
        if not self.enabled or self._closed:
            return False
        try:
            if not rec.at:
                rec = replace(rec, at=iso(self._clock()))
        except Exception:
            self.stats.dropped += 1
            log.exception("query log: could not queue a row")
            return False
        return self._writer.put((rec, enrich))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued row is written (or failed); for tests and shutdown."""
        return self._writer.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer. Later `record` calls are ignored."""
        self._closed = True
        self._writer.close(timeout)
        self.store.close()

    # ---- admin pages -----------------------------------------------------------------------

    def purge(self) -> int:
        """Apply retention and the caps now (the writer also does on start, hourly and as rows
        arrive); the number of rows deleted."""
        if not self.store.has_log():
            return 0
        self.store.open()
        expired, over = self.retention.apply(self.store)
        self.stats.purged += expired
        self.stats.capped += over
        return expired + over

    def read(self, since: datetime | None = None, limit: int = READ_LIMIT) -> list[QueryRecord]:
        """Rows at or after `since` (all when None), newest first, at most `limit`."""
        return self._reading(lambda: self.store.read(iso(since) if since else "", limit), [])

    def bounds(self) -> tuple[int | None, int | None]:
        """(oldest, newest) row id: changes whenever a row is written or deleted."""
        return self._reading(self.store.bounds, (None, None))

    def period(self, since: datetime, cuts: AnswerThresholds, max_wordings: int) -> PeriodCounts:
        """The questions report's counts since `since`, computed by the database."""
        return self._reading(lambda: self.store.period(iso(since), cuts.margin, max_wordings),
                             PeriodCounts.empty())

    def _reading(self, query, empty):
        if not self.store.has_log():
            return empty
        try:
            with self._schema_lock:
                if not self._schema_ready:
                    self.store.open()  # an old file is migrated before it is read
                    self._schema_ready = True
            return query()
        except Exception as exc:
            raise QueryLogUnavailable(f"the query log at {self.store.where} cannot be read: {exc}") from exc

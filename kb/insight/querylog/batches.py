"""What the writer thread does with each batch of queued rows.

Enrich each row (the answer score; a failure writes the row without it), open the store on
first use (creating or migrating its schema; after a failure wait `RETRY_OPEN_SECONDS` before
trying again, dropping rows meanwhile), insert the batch in one transaction, and apply retention
and the caps when they are due. Everything that goes wrong is logged and counted, never raised.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kb.insight.querylog.record import QueryRecord
from kb.insight.querylog.retention import Retention
from kb.insight.querylog.store import QueryStore
from kb.insight.querylog.writer import QueryLogStats

log = logging.getLogger(__name__)

RETRY_OPEN_SECONDS = 30.0

Enricher = Callable[[QueryRecord], QueryRecord]


class Batches:
    def __init__(self, store: QueryStore, retention: Retention, stats: QueryLogStats) -> None:
        self._store = store
        self._retention = retention
        self._stats = stats
        self._opened = False  # schema checked since the last failure
        self._next_open = 0.0
        self._errors = 0

    def write(self, items: list[tuple[QueryRecord, Enricher | None]], now: bool) -> None:
        records = [self._enriched(rec, enrich) for rec, enrich in items]
        if now:
            self._retention.request()
        if not records and not self._retention.due():
            return
        if not self._open_for_writing(len(records)):
            return
        if records:
            try:
                self._store.insert(records)
            except Exception as exc:
                self._failed(exc, len(records))
                return
            self._stats.written += len(records)
            self._retention.wrote(len(records))
        if self._retention.due():
            self._apply_retention()

    def _enriched(self, rec: QueryRecord, enrich: Enricher | None) -> QueryRecord:
        if enrich is None:
            return rec
        try:
            return enrich(rec)
        except Exception as exc:
            self._stats.enrich_failed += 1
            log.warning("query log: answer score not computed (%s); row written without it", exc)
            return rec

    def _open_for_writing(self, rows: int) -> bool:
        if self._opened:
            return True
        if time.monotonic() < self._next_open:  # waiting after a failure
            self._stats.dropped += rows
            return False
        try:
            self._store.open()
        except Exception as exc:
            self._failed(exc, rows)
            return False
        self._opened = True
        return True

    def _failed(self, exc: Exception, lost: int) -> None:
        self._errors += 1
        self._stats.failed += lost
        if self._errors == 1 or self._errors % 100 == 0:
            log.error("query log write to %s failed (%d rows lost, %d failures so far): %s",
                      self._store.where, lost, self._errors, exc)
        self._store.close()
        self._opened = False
        self._next_open = time.monotonic() + RETRY_OPEN_SECONDS

    def _apply_retention(self) -> None:
        try:
            expired, over = self._retention.apply(self._store)
        except Exception as exc:  # nothing is lost; the next run tries again
            log.error("query log at %s: retention not applied: %s", self._store.where, exc)
            return
        self._stats.purged += expired
        self._stats.capped += over
        if expired or over:
            log.info("query log: deleted %d rows older than %d days and %d over the caps",
                     expired, self._retention.days, over)

"""How long and how much the query log keeps: rows past `KB_QUERY_LOG_RETENTION_DAYS` go, and
so do the oldest rows beyond `KB_QUERY_LOG_MAX_ROWS` rows or `KB_QUERY_LOG_MAX_BYTES` bytes.

Without caps a flood of requests (or a busy year with a long retention) grows the log without
bound within the retention window. The writer thread applies the policy when it starts, then
every `every_seconds` (an hour), and while a cap is set after every 1% of the row cap written
(at least `CAP_CHECK_ROWS`): between two checks the log can run over a cap by at most that many
rows. A SQLite file does not shrink when rows go, but SQLite reuses the freed pages, so it stops
growing.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kb.insight.querylog.record import iso, utc_now
from kb.insight.querylog.store import QueryStore

PURGE_EVERY_SECONDS = 3600.0
CAP_CHECK_ROWS = 1000


@dataclass
class Retention:
    days: int  # <= 0: keep rows forever
    max_rows: int = 0  # 0: no cap
    max_bytes: int = 0  # 0: no cap
    every_seconds: float = PURGE_EVERY_SECONDS
    clock: Callable[[], datetime] = utc_now
    cap_check_rows: int = 0  # 0: 1% of max_rows, at least CAP_CHECK_ROWS
    _next: float = field(default=0.0, repr=False)  # monotonic time of the next run; 0: at once
    _written: int = field(default=0, repr=False)  # rows written since the last run

    def cutoff(self) -> str | None:
        """Rows timed before this are past retention; None when retention is off (days <= 0)."""
        if self.days <= 0:
            return None
        return iso(self.clock() - timedelta(days=self.days))

    @property
    def capped(self) -> bool:
        return self.max_rows > 0 or self.max_bytes > 0

    def wrote(self, rows: int) -> None:
        self._written += rows

    def request(self) -> None:
        """Run at the next chance (start-up)."""
        self._next = 0.0

    def due(self) -> bool:
        every = self.cap_check_rows or max(CAP_CHECK_ROWS, self.max_rows // 100)
        return time.monotonic() >= self._next or (self.capped and self._written >= every)

    def apply(self, store: QueryStore) -> tuple[int, int]:
        """(rows past retention, rows over a cap) deleted from `store` now."""
        self._next = time.monotonic() + self.every_seconds
        self._written = 0
        cutoff = self.cutoff()
        expired = store.delete_before(cutoff) if cutoff else 0
        over = store.delete_over(self.max_rows, self.max_bytes) if self.capped else 0
        return expired, over

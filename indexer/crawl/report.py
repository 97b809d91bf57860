"""What a crawl reports: saved pages, skipped URLs with a reason, and the progress lines it says.

Every progress line goes through ``terminal_safe``: URLs and details come from the pages crawled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from indexer.terminal import terminal_safe

from .errors import short
from .urls import MAX_URL_LENGTH

__all__ = ["SkippedURL", "SavedPage", "CrawlReport", "Reporter"]


@dataclass
class SkippedURL:
    url: str
    reason: str
    detail: str = ""  # free text (e.g. redirect target, content type, exception message)


@dataclass
class SavedPage:
    url: str
    final_url: str
    fetched_at: str  # ISO-8601, UTC
    path: Path
    sha256: str
    depth: int


@dataclass
class CrawlReport:
    saved: list[SavedPage] = field(default_factory=list)
    skipped: list[SkippedURL] = field(default_factory=list)
    seconds: float = 0.0
    dropped: int = 0  # new links not remembered because the URL cap was reached (the first is in `skipped`)


class Reporter:
    """Records outcomes into a ``CrawlReport`` and tells the progress callback, one safe line each."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.report = CrawlReport()
        self._progress = progress

    def say(self, message: str) -> None:
        if self._progress is None:
            return
        try:
            self._progress(terminal_safe(message))
        except Exception:  # a broken progress callback must not kill the crawl
            pass

    def skip(self, url: str, reason: str, detail: str = "") -> None:
        self.report.skipped.append(SkippedURL(url[:MAX_URL_LENGTH], reason, short(detail)))
        self.say(f"skip {reason}: {url[:200]}" + (f" ({short(detail, 120)})" if detail else ""))

    def saved(self, page: SavedPage, size: int) -> None:
        self.report.saved.append(page)
        self.say(f"saved [{page.depth}] {page.final_url} ({size} bytes)")

    def drop(self, url: str, cap: int) -> None:
        """A new link past the URL cap: the first is listed and said, the rest only counted."""
        self.report.dropped += 1
        if self.report.dropped == 1:
            self.skip(url, "max-urls", f"{cap} distinct URLs seen; further new links are counted, not kept")

    def finish(self, seconds: float, cap: int) -> CrawlReport:
        self.report.seconds = seconds
        if self.report.dropped:
            self.say(f"dropped {self.report.dropped} new links past the URL cap of {cap}")
        return self.report

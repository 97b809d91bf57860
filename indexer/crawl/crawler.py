"""The queue loop: fetch, save, follow links, until the queue, the page cap or the time budget ends."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from .budget import Budget
from .errors import BudgetExhausted, Skip, short
from .fetcher import Fetcher
from .frontier import Frontier
from .links import extract_links
from .page import Page, fetch_page
from .report import CrawlReport, Reporter
from .robots import RobotsRules
from .settings import CrawlSettings, url_cap
from .store import PageStore
from .urls import ALLOWED_SCHEMES, MAX_URL_LENGTH, Scope, normalize_url

__all__ = ["crawl"]


class _Crawler:
    def __init__(
        self, starts: list[str], out_dir: Path, settings: CrawlSettings, progress: Callable[[str], None] | None
    ) -> None:
        self.settings = settings
        self.scope = Scope.for_starts(starts, settings.allow_domains, settings.allow_ports)
        self.reporter = Reporter(progress)
        self.budget = Budget(settings.max_seconds)
        self.fetcher = Fetcher(settings, self.budget)
        self.robots = RobotsRules(self.fetcher, self.scope, settings.user_agent, self.reporter.say)
        self.store = PageStore(out_dir)
        cap = url_cap(settings.max_pages)
        self.frontier = Frontier(starts, cap, lambda url: self.reporter.drop(url, cap))

    def run(self) -> CrawlReport:
        try:
            while self.frontier:
                stop = self._stop_reason()
                if stop is not None:
                    self._skip_queued(stop)
                    break
                url, depth = self.frontier.pop()
                try:
                    self._visit(url, depth)
                except BudgetExhausted:
                    self.reporter.skip(url, "max-seconds")
                    self._skip_queued("max-seconds")
                    break
        finally:
            self.fetcher.close()
        return self.reporter.finish(self.budget.elapsed(), self.frontier.cap)

    def _stop_reason(self) -> str | None:
        if len(self.reporter.report.saved) >= self.settings.max_pages:
            return "max-pages"
        if self.budget.remaining() <= 0:
            return "max-seconds"
        return None

    def _skip_queued(self, reason: str) -> None:
        for url in self.frontier.drain():
            self.reporter.skip(url, reason)

    def _visit(self, url: str, depth: int) -> None:
        try:
            page = fetch_page(url, self.fetcher, self._check_hop, self.settings.max_bytes, self.reporter.say)
        except Skip as skip:
            self.reporter.skip(url, skip.reason, skip.detail)
            return
        except BudgetExhausted:
            raise
        except Exception as exc:  # one odd URL/server must not end the crawl
            self.reporter.skip(url, f"error: {type(exc).__name__}", str(exc))
            return
        try:
            saved = self.store.save(page, depth)
        except Skip as skip:
            self.reporter.skip(url, skip.reason, skip.detail)
            return
        self.reporter.saved(saved, len(page.body))
        if depth < self.settings.depth and len(self.reporter.report.saved) < self.settings.max_pages:
            for link in self._links(page):
                self._consider_link(link, depth + 1)

    def _links(self, page: Page) -> list[str]:
        try:
            return extract_links(page.body, page.final_url)
        except Exception as exc:  # pragma: no cover - parser failure on hostile HTML
            self.reporter.say(f"could not parse links in {page.final_url}: {short(str(exc), 120)}")
            return []

    def _check_hop(self, url: str, hop: int) -> None:
        """Every request, first or after a redirect: scope, duplicate, address, robots.txt."""
        refusal = self.scope.refusal(url, redirect=hop > 0)
        if refusal is not None:
            raise Skip(*refusal)
        if self.store.has(url):
            raise Skip("duplicate-url", url)
        self.fetcher.check_address(url)
        self.robots.check(url, redirect=hop > 0)

    def _skip_once(self, key: str, url: str, reason: str, detail: str = "") -> None:
        if self.frontier.remember(key, url):
            self.reporter.skip(url, reason, detail)

    def _consider_link(self, href: str, depth: int) -> None:
        if len(href) > MAX_URL_LENGTH:
            self._skip_once(_long_url_key(href), href, "url-too-long", f"{len(href)} characters")
            return
        try:
            url = normalize_url(href)
        except ValueError as exc:
            self._skip_once(href, href, "error: invalid URL", str(exc))
            return
        if len(url) > MAX_URL_LENGTH:
            self._skip_once(_long_url_key(url), url, "url-too-long", f"{len(url)} characters")
            return
        if not self.frontier.remember(url):
            return
        refusal = self.scope.refusal(url)
        if refusal is not None:
            self.reporter.skip(url, refusal[0])
            return
        self.frontier.push(url, depth)


def _long_url_key(url: str) -> str:
    """What the seen-set keeps for an over-long URL: a digest, never the URL itself."""
    return "too-long:" + hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def _start_url(start_url: object) -> str:
    if not isinstance(start_url, str) or not start_url.strip():
        raise ValueError("start URL must be a non-empty http:// or https:// URL")
    try:
        scheme = urlsplit(start_url.strip()).scheme.lower()
    except ValueError as exc:
        raise ValueError(f"invalid start URL {start_url!r}: {exc}") from None
    if scheme not in ALLOWED_SCHEMES:
        raise ValueError(
            f"start URL must use http:// or https:// (got {start_url!r}); "
            "file:, ftp:, mailto:, javascript: and other schemes are not crawled"
        )
    try:
        start = normalize_url(start_url)
    except ValueError as exc:
        raise ValueError(f"invalid start URL {start_url!r}: {exc}") from None
    if len(start) > MAX_URL_LENGTH:
        raise ValueError(f"start URL is longer than {MAX_URL_LENGTH} characters")
    return start


def _check_settings(settings: CrawlSettings) -> None:
    if settings.depth < 0:
        raise ValueError("depth must be >= 0")
    if settings.max_pages < 0 or settings.max_bytes < 0:
        raise ValueError("max_pages and max_bytes must be >= 0")
    bad = [p for p in settings.allow_ports if isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 65536]
    if bad:
        raise ValueError(f"allowed ports must be whole numbers from 1 to 65535, got {bad}")


def crawl(
    start_url: str | Sequence[str],
    out_dir: Path,
    settings: CrawlSettings,
    *,
    progress: Callable[[str], None] | None = None,
) -> CrawlReport:
    """Breadth-first crawl from ``start_url``; see ``indexer.crawl`` for the rules.

    ``start_url`` may also be a list of start URLs (``indexer refresh`` checks every URL a source
    lists): each is queued at depth 0, in order, and all share one robots.txt cache, one per-host
    delay and one budget. ``progress`` gets one line per event, with control characters already
    escaped (``terminal_safe``).
    """
    starts = [start_url] if isinstance(start_url, str) else list(start_url)
    if not starts:
        raise ValueError("no start URL given")
    normalized = [_start_url(url) for url in starts]
    _check_settings(settings)
    return _Crawler(normalized, Path(out_dir), settings, progress).run()

"""Crawling one site of sources.yaml with the crawler (indexer.crawl), and what came back per URL.

The crawler does the fetching — robots.txt, per-host delays, the caps, the address rules, the one
redirect follower — into a scratch folder; this module turns its report into one outcome per URL:
read (the page's bytes), or not read with a class that says what it means for a page we know:

* ``gone``: the server says there is no such page (404, 410);
* ``unreachable``: the page may exist but could not be read this time (5xx, other 4xx, timeouts,
  connection errors, robots.txt now forbidding it, a redirect leaving the allowed domains);
* ``unchecked``: it answered, but with something the refresh cannot compare (not HTML, too large);
* anything else (the page cap, the time budget) leaves the page as it was.

A site whose crawl fails as a whole — the crawler refused to start, robots.txt keeps the crawler
off the site, or no start URL answered at all — is a failed source: its pages keep their state.
"""
from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from indexer.crawl import CrawlSettings, crawl, normalize_url
from indexer.crawl.report import CrawlReport

from .sources import Source

GONE = frozenset({"http-404", "http-410"})
UNCHECKED = frozenset({"not-html", "too-large"})
LEFT_AS_IS = frozenset({"max-pages", "max-seconds", "max-urls", "duplicate-url", "duplicate-content"})
# Links a crawl meets but has no business with: they are not pages of the site.
NOT_PAGES = frozenset({"off-domain", "scheme", "port", "url-too-long", "error: invalid URL"})


@dataclass(frozen=True)
class Fetched:
    url: str  # canonical form, as queued
    final_url: str
    body: bytes


@dataclass
class SiteOutcome:
    """One site's crawl: the pages read, the URLs not read (url -> (class, reason, detail)), whether
    the crawl saw the whole site (no cap or budget hit), and why it failed ("" when it did not)."""

    source: Source
    fetched: dict[str, Fetched] = field(default_factory=dict)
    missed: dict[str, tuple[str, str]] = field(default_factory=dict)  # url -> (class, "reason: detail")
    complete: bool = True
    failure: str = ""
    seconds: float = 0.0


def classify(reason: str) -> str | None:
    """`gone`, `unreachable`, `unchecked`, or None (leave the page as it was / not a page)."""
    if reason in GONE:
        return "gone"
    if reason in UNCHECKED:
        return "unchecked"
    if reason in LEFT_AS_IS or reason in NOT_PAGES:
        return None
    return "unreachable"


def crawl_site(source: Source, base: CrawlSettings, scratch: Path, say: Callable[[str], None]) -> SiteOutcome:
    """Crawl `source` (its start URLs at depth 0) with the crawler's rules and `base`'s limits."""
    settings = CrawlSettings(
        depth=source.depth, allow_domains=source.allow_domains, max_pages=max(source.max_pages, len(source.urls)),
        max_bytes=base.max_bytes, max_seconds=base.max_seconds, delay=base.delay, timeout=base.timeout,
        user_agent=base.user_agent, allow_private=base.allow_private, allow_ports=base.allow_ports,
    )
    out_dir = Path(scratch) / f".crawl-{source.id}-{secrets.token_hex(4)}"
    outcome = SiteOutcome(source)
    try:
        report = crawl(list(source.urls), out_dir, settings, progress=say)
        _read(report, outcome)
    except ValueError as exc:
        outcome.failure = f"the crawl could not start: {exc}"
        return outcome
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    outcome.seconds = report.seconds
    outcome.failure = _site_failure(source, report, outcome)
    return outcome


def _read(report: CrawlReport, outcome: SiteOutcome) -> None:
    by_final: dict[str, Fetched] = {}
    by_digest: dict[str, Fetched] = {}
    for page in report.saved:
        fetched = Fetched(page.url, page.final_url, Path(page.path).read_bytes())
        outcome.fetched[page.url] = by_final[page.final_url] = by_digest[page.sha256] = fetched
    for skip in report.skipped:
        if skip.reason in ("max-pages", "max-seconds", "max-urls"):
            outcome.complete = False
        # Another URL for a page read already (a redirect to it, or the same bytes): the same page.
        twin = by_final.get(skip.detail) if skip.reason == "duplicate-url" else (
            by_digest.get(skip.detail) if skip.reason == "duplicate-content" else None)
        if twin is not None:
            outcome.fetched.setdefault(skip.url, Fetched(skip.url, twin.final_url, twin.body))
            continue
        kind = classify(skip.reason)
        if kind is not None and skip.url not in outcome.fetched:
            outcome.missed[skip.url] = (kind, f"{skip.reason}: {skip.detail}" if skip.detail else skip.reason)


def _site_failure(source: Source, report: CrawlReport, outcome: SiteOutcome) -> str:
    """Why the site as a whole failed, or "" — robots.txt keeping the crawler off, or no start URL
    answering (a 404 is an answer: the page is gone, the site is up)."""
    starts = [normalize_url(u) for u in source.urls]
    answered = [u for u in starts if u in outcome.fetched or outcome.missed.get(u, ("",))[0] in ("gone", "unchecked")]
    if answered:
        return ""
    blanket = next((s.detail for s in report.skipped if s.reason == "robots" and "disallowing all" in s.detail), "")
    if blanket:
        return f"robots.txt keeps the crawler off the site: {blanket}"
    reasons = sorted({outcome.missed[u][1] for u in starts if u in outcome.missed}) or ["no start URL was fetched"]
    return "no start URL answered: " + "; ".join(reasons[:3])

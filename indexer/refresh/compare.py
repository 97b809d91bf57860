"""Comparing a site's crawl with what the last refresh saw, URL by URL, by the hash of the CLEANED text.

A page is cleaned exactly as the index would clean it (indexer.loaders.load_html: navigation,
header, footer, cookie banners, scripts and other furniture dropped), so a new cookie banner, a
rotated "last updated" stamp in the footer or a reshuffled menu is not a change; a changed sentence
in the content is. Outcomes (`PageChange.change`):

* ``new``: a URL the refresh had not seen (the first refresh of a site records all its pages so);
* ``changed``: the cleaned text differs from the last time it was read;
* ``gone``: the server says the page is not there (404/410), or a page found by following links
  is no longer linked from the site (only when the crawl saw the whole site);
* ``unreachable``: the page could not be read this time (its last text is kept);
* ``unchecked``: it answered with something that cannot be compared (not HTML, too large);
* ``back``: read again after being gone or unreachable, with the text it had before.

Unchanged pages produce no change, only a fresh `checked_at`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, replace

from indexer.crawl import normalize_url
from indexer.loaders import LoaderError, load_html

from .fetch import Fetched, SiteOutcome
from .state import PageRecord, RefreshStore, sha256_text

DIFF_LINES = 8  # changed lines quoted per page in the report
DIFF_LINE_CHARS = 240


@dataclass(frozen=True)
class PageChange:
    url: str
    source: str
    change: str  # new, changed, gone, unreachable, unchecked, back
    detail: str = ""
    final_url: str = ""
    removed: tuple[str, ...] = ()  # lines of the cleaned text no longer there (changed pages; capped)
    added: tuple[str, ...] = ()  # lines that are new


def cleaned_text(body: bytes, url: str) -> str:
    """The page's text as the index would see it ("" when nothing is left after cleaning)."""
    try:
        return load_html(body, url=url, where=url, defaults={"source_type": "promo"}).text
    except LoaderError:
        return ""


def compare_site(outcome: SiteOutcome, known: dict[str, PageRecord], store: RefreshStore,
                 now: str) -> tuple[list[PageChange], dict[str, PageRecord]]:
    """The changes found on one site and the site's new page records (url -> record)."""
    source = outcome.source
    cited = {normalize_url(u): u for u in source.urls}
    records: dict[str, PageRecord] = {}
    changes: list[PageChange] = []
    for url in sorted(set(known) | set(outcome.fetched) | set(outcome.missed)):
        before = known.get(url)
        if url in outcome.fetched:
            record, change = _read(outcome.fetched[url], before, source.id, source.index, store, now)
        elif url in outcome.missed and (before is not None or url in cited):
            record, change = _missed(url, outcome.missed[url], before, source.id, now)
        elif before is not None and before.cited and url not in cited:
            record, change = None, None  # a start URL sources.yaml no longer lists: forgotten, not gone
        elif before is not None and outcome.complete and url not in cited and before.status != "gone":
            record, change = _missed(url, ("gone", "no longer linked from the site"), before, source.id, now)
        else:  # not looked at this time (cap, budget), or a link we do not follow up: as it was
            record, change = before, None
        if record is None:
            continue
        record.cited = (cited[url],) if url in cited else ()
        records[url] = record
        if change is not None:
            changes.append(change)
    return changes, records


def _read(page: Fetched, before: PageRecord | None, source: str, keep_html: bool, store: RefreshStore,
          now: str) -> tuple[PageRecord, PageChange | None]:
    text = cleaned_text(page.body, page.final_url)
    digest = store.put_text(text)
    html = store.put_html(page.body) if keep_html else ""
    if before is None or not before.text_sha256:
        record = PageRecord(page.url, source, "ok", page.final_url, digest, html, now, now, now, now)
        return record, PageChange(page.url, source, "new", final_url=page.final_url)
    record = replace(before, source=source, status="ok", final_url=page.final_url, text_sha256=digest,
                     html_sha256=html, checked_at=now, detail="",
                     status_since=before.status_since if before.status == "ok" else now)
    if digest != before.text_sha256:
        record.changed_at = now
        removed, added = _diff(store.text(before.text_sha256) or "", text)
        return record, PageChange(page.url, source, "changed", final_url=page.final_url, removed=removed, added=added)
    if before.status != "ok":
        return record, PageChange(page.url, source, "back", f"was {before.status} since {before.status_since}",
                                  page.final_url)
    return record, None


def _missed(url: str, missed: tuple[str, str], before: PageRecord | None, source: str,
            now: str) -> tuple[PageRecord, PageChange | None]:
    kind, reason = missed
    if before is None:
        record = PageRecord(url, source, kind, first_seen=now, status_since=now, detail=reason)
        return record, PageChange(url, source, kind, reason)
    if before.status == kind:  # still so: reported when it began
        return replace(before, source=source, detail=reason), None
    return (replace(before, source=source, status=kind, status_since=now, detail=reason),
            PageChange(url, source, kind, reason, before.final_url))


def _diff(old: str, new: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Lines (paragraphs) removed and added, the first DIFF_LINES of each, cut to DIFF_LINE_CHARS."""
    removed: list[str] = []
    added: list[str] = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")) or not line[1:].strip():
            continue
        target = removed if line[0] == "-" else added
        if len(target) < DIFF_LINES:
            text = line[1:].strip()
            target.append(text if len(text) <= DIFF_LINE_CHARS else text[: DIFF_LINE_CHARS - 1] + "…")
    return tuple(removed), tuple(added)

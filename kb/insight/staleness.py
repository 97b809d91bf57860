"""Stale content: which pages are old, which cite a source that changed since, which facts are dated.

Every corpus page carries an `as_of` date and says "as of YEAR" on its counts, but the
organisations keep changing. This module lists, for the content team (the coverage report, its
page and `indexer coverage`), three kinds of staleness over the documents of an index:

* **old pages** — `as_of` older than `KB_STALE_AFTER_DAYS` (default 365), or missing or unreadable;
* **pages whose sources moved on** — a URL in the page's `sources` changed, disappeared or stopped
  answering after the page's `as_of` (the page's own `url` is the organisation's address, not the
  evidence for its facts, and home pages change weekly, so it does not flag). What changed and when
  comes from the last `indexer refresh`, through the file this module owns, `source_events.json`
  in `KB_REFRESH_DIR`: the refresh writes it with `write_source_events`, the coverage report reads
  it with `read_source_events`. Updating the page (and its `as_of`) after reading the source clears
  the flag;
* **dated facts** — "as of YEAR" (also "as of March 2014", "as of the end of 2019") where YEAR is
  more than `KB_STALE_FACT_AFTER_YEARS` (default 3) years before the current year, each with the
  sentence it stands in, found by a regular expression over the clean text.

Nothing here searches or calls a model: it reads documents and one small JSON file, so the coverage
page can add it for free.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from kb.core.fsutil import atomic_write_text
from kb.core.records import Document
from kb.ingest.sentences import sentence_spans

EVENTS_FILE = "source_events.json"
EVENTS_FORMAT = 1
CHANGES = ("changed", "gone", "unreachable")  # what happened to a source URL

_MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|December|"
           "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec")
# "as of 2020", "as of March 2014", "as of 1 January 2014", "as of mid-2019", "as of the end of 2019"
AS_OF_YEAR = re.compile(
    r"\bas\s+of\s+(?:the\s+)?(?:(?:end|start|beginning|middle|close)\s+of\s+)?(?:(?:early|mid|late)[\s-]+)?"
    rf"(?:\d{{1,2}}\s+)?(?:(?:{_MONTHS})\.?\s+)?(?P<year>(?:19|20)\d\d)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SourceEvent:
    """What the last refresh knows happened to one source URL: `change` is one of CHANGES, `since`
    the ISO date it was first seen so; `aliases` are the other spellings of the URL (as cited, after
    redirects)."""

    url: str
    change: str
    since: str
    detail: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceEvents:
    """The events of the last refresh; `written_at` is None when no refresh has run, `problem` says
    why the file could not be read."""

    events: tuple[SourceEvent, ...] = ()
    written_at: str | None = None
    problem: str = ""

    def by_url(self) -> dict[str, SourceEvent]:
        out: dict[str, SourceEvent] = {}
        for event in self.events:
            for name in (event.url, *event.aliases):
                out.setdefault(name, event)
        return out


@dataclass(frozen=True)
class StalePage:
    doc_id: str
    title: str
    as_of: str
    age_days: int | None  # None: no usable as_of date


@dataclass(frozen=True)
class SourceFlag:
    """A page citing sources that changed (or went away) after its `as_of`."""

    doc_id: str
    title: str
    as_of: str
    events: tuple[SourceEvent, ...]


@dataclass(frozen=True)
class DatedFact:
    doc_id: str
    title: str
    year: int
    sentence: str
    start: int  # offsets of the sentence in the document's clean text
    end: int


@dataclass
class StalenessReport:
    today: str
    stale_after_days: int
    fact_after_years: int
    old_pages: list[StalePage] = field(default_factory=list)
    flagged: list[SourceFlag] = field(default_factory=list)
    dated_facts: list[DatedFact] = field(default_factory=list)
    refreshed_at: str | None = None  # when the source events were written; None: no refresh has run
    problem: str = ""

    def summary(self) -> str:
        refresh = f"sources last refreshed {self.refreshed_at}" if self.refreshed_at else "no source refresh yet"
        return (f"stale: {len(self.old_pages)} pages older than {self.stale_after_days} days, "
                f"{len(self.flagged)} pages citing a source that changed since, {len(self.dated_facts)} facts "
                f"'as of' more than {self.fact_after_years} years ago ({refresh})")

    def as_dict(self) -> dict:
        return asdict(self)


# ---- the events file (written by `indexer refresh`) ------------------------------------------

def write_source_events(refresh_dir: Path, events: Iterable[SourceEvent], written_at: str) -> Path:
    """Replace `source_events.json` in `refresh_dir` atomically; returns its path."""
    rows = sorted(events, key=lambda e: e.url)
    bad = [e.change for e in rows if e.change not in CHANGES]
    if bad:
        raise ValueError(f"unknown source change {bad[0]!r}; use one of {', '.join(CHANGES)}")
    payload = {"format": EVENTS_FORMAT, "written_at": written_at,
               "sources": [{**asdict(e), "aliases": list(e.aliases)} for e in rows]}
    path = Path(refresh_dir) / EVENTS_FILE
    atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    return path


def read_source_events(refresh_dir: Path) -> SourceEvents:
    """The events of the last refresh; empty (written_at None) when no refresh has run. A damaged
    file is not an error for the page that shows it: `problem` says what is wrong."""
    path = Path(refresh_dir) / EVENTS_FILE
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return SourceEvents()
    except (OSError, ValueError) as exc:
        return SourceEvents(problem=f"{path.name} could not be read ({type(exc).__name__}); run `indexer refresh`")
    try:
        if payload.get("format") != EVENTS_FORMAT:
            raise ValueError(f"format {payload.get('format')!r}")
        events = tuple(SourceEvent(url=str(r["url"]), change=str(r["change"]), since=str(r["since"]),
                                   detail=str(r.get("detail", "")), aliases=tuple(map(str, r.get("aliases", ()))))
                       for r in payload["sources"])
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return SourceEvents(problem=f"{path.name} is not a source events file ({exc}); run `indexer refresh`")
    return SourceEvents(events, str(payload.get("written_at") or ""))


# ---- the three lists -------------------------------------------------------------------------

def parse_as_of(value: str) -> date | None:
    """`2026-01-31`, `2026-01` (the 1st) or `2026` (1 January); None when it is none of these."""
    value = (value or "").strip()
    padded = {4: value + "-01-01", 7: value + "-01", 10: value}.get(len(value))
    try:
        return date.fromisoformat(padded) if padded else None
    except ValueError:
        return None


def old_pages(docs: Iterable[Document], today: date, after_days: int) -> list[StalePage]:
    """Pages whose `as_of` is older than `after_days` days (or missing), oldest first."""
    out = []
    for doc in docs:
        when = parse_as_of(doc.as_of)
        age = None if when is None else (today - when).days
        if age is None or age > after_days:
            out.append(StalePage(doc.id, doc.title, doc.as_of, age))
    return sorted(out, key=lambda p: (p.age_days is not None, -(p.age_days or 0), p.doc_id))


def flag_citing_pages(docs: Iterable[Document], events: SourceEvents | Sequence[SourceEvent]) -> list[SourceFlag]:
    """Pages with a source (`sources` front matter) that changed, went or stopped answering after
    the page's `as_of` (any event flags a page without a usable date)."""
    lookup = (events if isinstance(events, SourceEvents) else SourceEvents(tuple(events))).by_url()
    out = []
    for doc in docs:
        written = parse_as_of(doc.as_of)
        hits: dict[str, SourceEvent] = {}
        for cited in doc.sources:
            event = lookup.get(cited)
            since = parse_as_of(event.since[:10]) if event else None
            if event and (written is None or since is None or since > written):
                hits.setdefault(event.url, event)
        if hits:
            out.append(SourceFlag(doc.id, doc.title, doc.as_of, tuple(hits.values())))
    return sorted(out, key=lambda f: (f.as_of, f.doc_id))


def dated_facts(docs: Iterable[Document], today: date, after_years: int) -> list[DatedFact]:
    """Sentences saying "as of YEAR" with YEAR more than `after_years` before this year, oldest first."""
    out = []
    for doc in docs:
        spans = sentence_spans(doc.text)
        seen: set[tuple[int, int]] = set()
        for match in AS_OF_YEAR.finditer(doc.text):
            year = int(match.group("year"))
            if today.year - year <= after_years:
                continue
            start, end = next(((s, e) for s, e in spans if s <= match.start() < e), (match.start(), match.end()))
            if (start, end) not in seen:
                seen.add((start, end))
                out.append(DatedFact(doc.id, doc.title, year, doc.text[start:end], start, end))
    return sorted(out, key=lambda f: (f.year, f.doc_id, f.start))


def staleness_report(docs: Iterable[Document], events: SourceEvents, today: date, *, stale_after_days: int,
                     fact_after_years: int) -> StalenessReport:
    """The three lists over `docs`, as of `today`."""
    docs = list(docs)
    return StalenessReport(
        today=today.isoformat(), stale_after_days=stale_after_days, fact_after_years=fact_after_years,
        old_pages=old_pages(docs, today, stale_after_days), flagged=flag_citing_pages(docs, events),
        dated_facts=dated_facts(docs, today, fact_after_years), refreshed_at=events.written_at,
        problem=events.problem,
    )

"""One refresh: crawl the sites that are due, compare, remember, rebuild, report.

Order matters for safety. The state (what each page looked like) is saved before the build, and
the build is `kb.build_index`, which writes a new version aside and swaps it in atomically — so a
running app keeps serving throughout, and a refresh killed at any point leaves a state and an
index that each make sense on their own. If a due site's crawl fails, the index is not rebuilt
(the previous version keeps serving, the report says why, the exit status is 1): the failed site
keeps its last good pages and stays due. `keep_going` rebuilds anyway.

Idempotent: with nothing due, nothing is crawled or written and the build finds the index up to
date; with sites due but unchanged, only the check times move on.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from indexer.crawl import CrawlSettings
from indexer.crawl.urls import page_key
from indexer.loaders import LoaderError, load_corpus, load_html
from kb.core.records import Document
from kb.core.settings import Settings
from kb.index.layout import IndexLayout
from kb.insight.staleness import SourceEvent, flag_citing_pages, write_source_events
from kb.models import Encoder

from .compare import PageChange, compare_site
from .fetch import crawl_site
from .report import FlaggedPage, IndexSummary, RefreshReport, SiteSummary, write_report
from .sources import Source, load_sources
from .state import PageRecord, RefreshState, RefreshStore, SourceRecord

AWAY = ("gone", "unreachable")


@dataclass
class RefreshOptions:
    sources_file: Path
    corpus: Sequence[Path]
    index_dir: Path
    state_dir: Path
    crawl: CrawlSettings = field(default_factory=CrawlSettings)  # delay, timeout, byte and time caps
    all: bool = False  # every enabled site, due or not
    only: tuple[str, ...] = ()  # these sites, due or not
    keep_going: bool = False  # rebuild even when a site's crawl failed
    build: bool = True
    answerability: Path | None = None
    quiet: bool = False


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def due_date(source: Source, state: RefreshState) -> datetime | None:
    """When `source` is next due (None: now — never crawled completely)."""
    last = state.sources.get(source.id)
    if last is None or not last.last_ok_at:
        return None
    return datetime.fromisoformat(last.last_ok_at) + timedelta(days=source.refresh_days)


def run_refresh(options: RefreshOptions, settings: Settings, *, encoders: Encoder | Mapping[str, Encoder] | None = None,
                say: Callable[[str], None] = lambda _: None, now: datetime | None = None) -> RefreshReport | None:
    """Refresh what is due; returns the report, or None when nothing was due and nothing changed."""
    sources = load_sources(options.sources_file)
    unknown = sorted(set(options.only) - {s.id for s in sources})
    if unknown:
        raise ValueError(f"{options.sources_file}: no source with id {', '.join(map(repr, unknown))}")
    curated = load_corpus(list(options.corpus))
    store = RefreshStore(options.state_dir)
    started = now or utc_now()
    with store.lock():
        for leftover in store.folder.glob(".crawl-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        state = store.load()
        report = RefreshReport(started_at=started.isoformat())
        due = _select(sources, state, options, started, report)
        _forget_removed_sources(state, sources)
        if due:
            _crawl_all(due, state, store, options, started, report, say)
            store.save(state)
            write_source_events(store.folder, state_events(state), started.isoformat())
        report.flagged = _flagged(curated, report.changes, state, started)
        report.still_away = _still_away(state, report.changes)
        if options.build:
            report.index = _rebuild(options, settings, encoders, curated, sources, state, store, report)
        report.finished_at = utc_now().isoformat()
        if not due and (report.index is None or not report.index.built):
            return None
        write_report(report, store.reports, started.strftime("%Y%m%dT%H%M%SZ"))
    return report


def _select(sources: list[Source], state: RefreshState, options: RefreshOptions, now: datetime,
            report: RefreshReport) -> list[Source]:
    due = []
    for source in sources:
        if not source.enabled:
            continue
        when = due_date(source, state)
        if options.only:
            wanted = source.id in options.only
        else:
            wanted = options.all or when is None or when <= now
        if wanted:
            due.append(source)
        elif not options.only:
            report.not_due.append({"id": source.id, "due": when.isoformat() if when else ""})
    return due


def _forget_removed_sources(state: RefreshState, sources: list[Source]) -> None:
    ids = {s.id for s in sources}
    state.sources = {k: v for k, v in state.sources.items() if k in ids}
    state.pages = {k: v for k, v in state.pages.items() if v.source in ids}


def _crawl_all(due: list[Source], state: RefreshState, store: RefreshStore, options: RefreshOptions, now: datetime,
               report: RefreshReport, say: Callable[[str], None]) -> None:
    stamp = now.isoformat()
    for i, source in enumerate(due):
        if i and options.crawl.delay > 0:
            time.sleep(options.crawl.delay)  # two sites may share a host: keep the per-host delay between crawls
        say(f"crawling {source.id}: {len(source.urls)} start URLs, depth {source.depth}")
        try:
            outcome = crawl_site(source, options.crawl, store.folder, say)
        except Exception as exc:  # one site must not end the refresh of the others
            outcome = None
            failure = f"{type(exc).__name__}: {exc}"
        else:
            failure = outcome.failure
        record = state.sources.setdefault(source.id, SourceRecord())
        record.last_attempt_at = stamp
        if failure:
            record.last_error = failure
            report.failures.append(f"{source.id}: {failure}")
            report.sites.append(SiteSummary(source.id, 0, 0, outcome.seconds if outcome else 0.0, False, failure))
            continue
        changes, records = compare_site(outcome, state.pages_of(source.id), store, stamp)
        state.pages = {k: v for k, v in state.pages.items() if v.source != source.id} | records
        record.last_ok_at, record.last_error = stamp, ""
        report.changes += changes
        report.sites.append(SiteSummary(source.id, len(outcome.fetched), len(outcome.missed), outcome.seconds,
                                        outcome.complete))


def _aliases(record: PageRecord) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a for a in (record.final_url, *record.cited) if a and a != record.url))


def state_events(state: RefreshState) -> list[SourceEvent]:
    """What the coverage report needs to know: pages changed since first seen, gone, unreachable."""
    events = []
    for record in state.pages.values():
        if record.status in AWAY:
            events.append(SourceEvent(record.url, record.status, record.status_since[:10], record.detail,
                                      _aliases(record)))
        elif record.status == "ok" and record.changed_at > record.first_seen:
            events.append(SourceEvent(record.url, "changed", record.changed_at[:10], "", _aliases(record)))
    return events


def _flagged(curated: list[Document], changes: list[PageChange], state: RefreshState,
             now: datetime) -> list[FlaggedPage]:
    """Corpus pages citing a source that changed, went or stopped answering in this refresh."""
    events = [SourceEvent(c.url, c.change, now.date().isoformat(), c.detail,
                          _aliases(state.pages[c.url]) if c.url in state.pages else ())
              for c in changes if c.change in ("changed", *AWAY)]
    by_id = {d.id: d for d in curated}
    return [FlaggedPage(f.doc_id, f.title, f.as_of, by_id[f.doc_id].path,
                        [{"url": e.url, "change": e.change, "since": e.since} for e in f.events])
            for f in flag_citing_pages(curated, events)]


def _still_away(state: RefreshState, changes: list[PageChange]) -> list[dict]:
    reported = {c.url for c in changes}
    return [{"url": p.url, "status": p.status, "since": p.status_since, "detail": p.detail}
            for p in sorted(state.pages.values(), key=lambda p: p.url) if p.status in AWAY and p.url not in reported]


def crawled_documents(sources: list[Source], state: RefreshState, store: RefreshStore) -> list[Document]:
    """The pages of sites with `index: true`, as documents (the last good copy of an unreachable page;
    never a gone one). Ids are `<site id>-<URL key>`, so they cannot collide with corpus pages."""
    indexed = {s.id: s for s in sources if s.index}
    docs = []
    for record in sorted(state.pages.values(), key=lambda p: p.url):
        source = indexed.get(record.source)
        if source is None or record.status not in ("ok", "unreachable") or not record.html_sha256:
            continue
        try:
            docs.append(load_html(store.html(record.html_sha256), url=record.final_url or record.url,
                                  doc_id=f"{source.id}-{page_key(record.url)}", where=f"{source.id}: {record.url}",
                                  defaults={"source_type": source.source_type, "as_of": record.changed_at[:10]}))
        except LoaderError:
            continue  # nothing left after cleaning: nothing to index
    return docs


def _rebuild(options: RefreshOptions, settings: Settings, encoders, curated: list[Document], sources: list[Source],
             state: RefreshState, store: RefreshStore, report: RefreshReport) -> IndexSummary:
    from indexer.building import build_documents
    from kb import BuildError

    before = IndexLayout(Path(options.index_dir)).current_build_id()
    if report.failures and not options.keep_going:
        return IndexSummary(before, before, built=False, kept=True,
                            note=f"index kept at {before or '(none)'}: not rebuilt because a crawl failed "
                                 f"({len(report.failures)} site(s)); the failed sites stay due")
    try:
        built = build_documents(curated + crawled_documents(sources, state, store), options.index_dir, settings,
                                encoders=encoders, quiet=options.quiet,
                                answerability=options.answerability)
    except BuildError as exc:
        report.failures.append(f"build: {exc}")
        return IndexSummary(before, before, built=False, kept=True, note=f"index kept at {before or '(none)'}: {exc}")
    return IndexSummary(
        before, built.build_id, built=not built.unchanged, kept=False, note=built.summary(),
        documents=built.documents, chunks=built.chunks, added_documents=built.added_documents,
        changed_documents=built.changed_documents, removed_documents=built.removed_documents,
        encoded_by=dict(built.encoded_by), reused_by=dict(built.reused_by))

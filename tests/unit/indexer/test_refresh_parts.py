"""The refresh's parts without a network: comparing by cleaned text, the state folder, due dates,
and Markdown that untrusted text cannot escape from."""
import os
import threading
from datetime import datetime, timezone

import pytest
from markdown_it import MarkdownIt

from indexer.refresh.compare import cleaned_text, compare_site
from indexer.refresh.fetch import Fetched, SiteOutcome, classify
from indexer.refresh.report import md_text
from indexer.refresh.run import due_date, state_events
from indexer.refresh.sources import Source
from indexer.refresh.state import PageRecord, RefreshState, RefreshStateError, RefreshStore, SourceRecord

SITE = Source("site", ("https://example.org/", "https://example.org/cited"), ("example.org",), 1, 7, index=True,
              source_type="agency")
CHROME = """<html><head><title>Page</title></head><body>
<header class="site-header"><nav><a href="/">Home</a></nav></header>
<div id="cookie-banner" class="cookie-banner"><p>{banner}</p><button>Accept all cookies</button></div>
<main><h1>Page</h1><p>{text}</p></main>
<footer class="site-footer"><p>Last updated {stamp}</p></footer></body></html>"""


def page(text="The registry holds 5 million records.", banner="We use cookies.", stamp="1 May 2026") -> bytes:
    return CHROME.format(text=text, banner=banner, stamp=stamp).encode()


def test_only_the_content_counts_as_a_change():
    base = cleaned_text(page(), "https://example.org/")
    assert base == "The registry holds 5 million records."
    assert cleaned_text(page(banner="New cookie text, 2026!", stamp="2 June 2026"), "https://example.org/") == base
    assert cleaned_text(page(text="The registry holds 6 million records."), "https://example.org/") != base
    assert cleaned_text(b"<html><body><nav>only a menu</nav></body></html>", "https://example.org/") == ""


@pytest.mark.parametrize(("reason", "kind"), [
    ("http-404", "gone"), ("http-410", "gone"), ("http-503", "unreachable"), ("http-403", "unreachable"),
    ("timeout", "unreachable"), ("robots", "unreachable"), ("error: ConnectionError", "unreachable"),
    ("redirect-off-domain", "unreachable"), ("not-html", "unchecked"), ("too-large", "unchecked"),
    ("max-pages", None), ("max-seconds", None), ("off-domain", None), ("duplicate-url", None),
])
def test_skip_reasons_mean(reason, kind):
    assert classify(reason) == kind


def _outcome(fetched=(), missed=None, complete=True):
    return SiteOutcome(SITE, {f.url: f for f in fetched}, dict(missed or {}), complete)


def _run(store, outcome, known, now):
    changes, records = compare_site(outcome, known, store, now)
    return {c.url: c.change for c in changes}, records


def test_each_outcome_of_a_second_crawl(tmp_path):
    store = RefreshStore(tmp_path)
    t0, t1 = "2026-11-01T00:00:00+00:00", "2026-11-08T00:00:00+00:00"
    first = [Fetched(u, u, page(f"Text of {u}.")) for u in (
        "https://example.org/", "https://example.org/cited", "https://example.org/a", "https://example.org/b",
        "https://example.org/c", "https://example.org/d")]
    changes, known = _run(store, _outcome(first), {}, t0)
    assert set(changes.values()) == {"new"} and len(known) == 6
    second = _outcome(
        [Fetched("https://example.org/", "https://example.org/", page("Text of https://example.org/.", banner="x")),
         Fetched("https://example.org/cited", "https://example.org/cited", page("A new text.")),
         Fetched("https://example.org/e", "https://example.org/e", page("Brand new."))],
        {"https://example.org/a": ("gone", "http-404"), "https://example.org/b": ("unreachable", "http-503"),
         "https://example.org/c": ("unchecked", "not-html: application/pdf")})
    changes, records = _run(store, second, known, t1)
    assert changes == {"https://example.org/cited": "changed", "https://example.org/a": "gone",
                       "https://example.org/b": "unreachable", "https://example.org/c": "unchecked",
                       "https://example.org/d": "gone", "https://example.org/e": "new"}
    assert records["https://example.org/d"].detail == "no longer linked from the site"
    assert records["https://example.org/b"].text_sha256 == known["https://example.org/b"].text_sha256  # last good kept
    assert records["https://example.org/cited"].changed_at == t1 and records["https://example.org/"].changed_at == t0
    assert records["https://example.org/cited"].cited == ("https://example.org/cited",)
    # b answers again with its old text: back, not changed; a stays gone: nothing new to say
    third = _outcome([Fetched(u, u, page(f"Text of {u}.")) for u in ("https://example.org/b",)],
                     {"https://example.org/a": ("gone", "http-404")}, complete=False)
    changes, _ = _run(store, third, records, "2026-11-15T00:00:00+00:00")
    assert changes == {"https://example.org/b": "back"}


def test_a_start_url_sources_yaml_no_longer_lists_is_forgotten(tmp_path):
    store = RefreshStore(tmp_path)
    old = Source("site", ("https://example.org/old",), ("example.org",), 0, 7)
    _, known = compare_site(SiteOutcome(old, {"https://example.org/old": Fetched(
        "https://example.org/old", "https://example.org/old", page())}), {}, store, "2026-11-01T00:00:00+00:00")
    now = Source("site", ("https://example.org/",), ("example.org",), 0, 7)
    changes, records = compare_site(SiteOutcome(now, {"https://example.org/": Fetched(
        "https://example.org/", "https://example.org/", page())}), known, store, "2026-11-02T00:00:00+00:00")
    assert [c.change for c in changes] == ["new"] and list(records) == ["https://example.org/"]


def test_events_for_the_coverage_report():
    state = RefreshState(pages={
        "https://x/a": PageRecord("https://x/a", "s", "ok", "https://x/a", "h", first_seen="2026-01-01T00:00:00",
                                  changed_at="2026-02-01T00:00:00", cited=("https://x/a/",)),
        "https://x/b": PageRecord("https://x/b", "s", "ok", first_seen="2026-01-01T00:00:00", changed_at="2026-01-01T00:00:00"),
        "https://x/c": PageRecord("https://x/c", "s", "gone", status_since="2026-03-01T00:00:00", detail="http-404"),
        "https://x/d": PageRecord("https://x/d", "s", "unchecked")})
    events = {e.url: (e.change, e.since, e.aliases) for e in state_events(state)}
    assert events == {"https://x/a": ("changed", "2026-02-01", ("https://x/a/",)), "https://x/c": ("gone", "2026-03-01", ())}


def test_due_dates():
    state = RefreshState(sources={"site": SourceRecord(last_ok_at="2026-11-01T00:00:00+00:00", last_error="")})
    assert due_date(SITE, state) == datetime(2026, 11, 8, tzinfo=timezone.utc)
    assert due_date(SITE, RefreshState()) is None  # never crawled: due now
    failed = RefreshState(sources={"site": SourceRecord(last_attempt_at="2026-11-30T00:00:00+00:00", last_error="x")})
    assert due_date(SITE, failed) is None  # a failed crawl does not count: still due


def test_the_state_is_written_whole_and_unreferenced_blobs_go(tmp_path):
    store = RefreshStore(tmp_path)
    keep, drop = store.put_text("kept text"), store.put_text("old text")
    html = store.put_html(b"<p>kept</p>")
    state = RefreshState({"s": SourceRecord("2026-11-01T00:00:00+00:00")},
                         {"https://x/": PageRecord("https://x/", "s", "ok", text_sha256=keep, html_sha256=html)})
    store.save(state)
    assert store.load() == state
    assert store.text(keep) == "kept text" and store.text(drop) is None and store.html(html) == b"<p>kept</p>"
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    store.state_file.write_text('{"format": 1, "pages": {"u": {"status": "weird"}}, "sources": {}}')
    with pytest.raises(RefreshStateError, match="state.json is damaged .* move it away"):
        store.load()


def test_one_refresh_at_a_time(tmp_path):
    store = RefreshStore(tmp_path)
    entered, release = threading.Event(), threading.Event()

    def hold():
        with store.lock():
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(10)
    try:
        with pytest.raises(RefreshStateError, match="another refresh is running"):
            with RefreshStore(tmp_path).lock():
                pass
    finally:
        release.set()
        holder.join(10)
    with store.lock():  # free again
        assert os.path.exists(tmp_path / ".lock")


HOSTILE = [
    "<script>alert(1)</script>", "[click](javascript:alert(1))", "![img](http://evil.example/x.png)",
    "<https://evil.example/>", "# Heading", "- list item", "1. ordered", "| a | b |", "**bold** _it_ `code`",
    "line one\nline two\n\n# heading after a blank line", "&lt;script&gt;", "a\\", "---", "> quote", "~~strike~~",
    "[ref]: https://evil.example/", "<img src=x onerror=alert(1)>", "\x1b[31mred\x1b[0m", "text\u2028# split",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_untrusted_text_stays_text_in_the_markdown(text):
    for wrap in ("- {}", "| {} | x |\n|---|---|\n| {} | y |", "**Result:** {}"):
        rendered = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(wrap.format(md_text(text), md_text(text)))
        for tag in ("<script", "<a ", "<img", "<h1", "<h2", "<strong", "<em", "<code", "<ol", "<blockquote", "<hr", "<s>",
                    "<del"):
            if tag == "<strong" and wrap.startswith("**"):
                assert rendered.count("<strong") == 1
                continue
            assert tag not in rendered, (text, wrap, rendered)
        assert rendered.count("<li>") <= 1 and rendered.count("<tr>") <= 2

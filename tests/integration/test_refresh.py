"""`indexer refresh` against the corpus rendered as a web site on 127.0.0.1 (indexer/render_site.py).

The scenario: a first refresh records every page; then, on the site, one page's content changes, one
page only changes its page chrome (cookie banner, footer date), one page is removed, one stops
answering (503), and a new page is linked from the start page. The second refresh must name each
of these, re-encode only the chunks whose text changed (checked against the vector keys of the two
index versions, not against the refresh's own counts), and flag exactly the curated pages that cite
what changed, went or stopped answering. Then: nothing due changes nothing, a crawl that fails
keeps the index (exit status 1), and the Markdown report escapes what the pages say.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from indexer.crawl import CrawlSettings
from indexer.refresh import RefreshOptions, run_refresh
from indexer.render_site import page_name, render_corpus_site
from kb.index.layout import IndexLayout
from kb.index.store import ChunkStore
from kb.insight import read_source_events, staleness_report
from tests.fixtures.crawl_site import CrawlSite, Route

ROOT = Path(__file__).resolve().parents[2]
SITE_DOCS = ("digital-healthcare-denmark", "medcom", "sundhed-dk", "cancer-registry", "patobank-national-pathology-registry")
CHANGED, GONE, AWAY, CHROME, ADDED = "medcom", "cancer-registry", "sundhed-dk", "patobank-national-pathology-registry", "telehealth-copd"
NEW_SENTENCE = "MedCom moved its head office to Aarhus in 2026, according to this refreshed test page."
HOSTILE = '<script>alert(1)</script> [click](javascript:alert(1)) ![x](http://evil.example/x.png) | cell | # heading'
AS_OF = (datetime.now(timezone.utc) - timedelta(days=30)).date().isoformat()


def _curated_page(folder: Path, doc_id: str, cites: list[str], url: str = "https://example.org/") -> None:
    sources = "".join(f"  - {u}\n" for u in cites)
    (folder / f"{doc_id}.md").write_text(
        f"---\ntitle: Curated {doc_id}\nurl: {url}\nsource_type: agency\nas_of: {AS_OF}\nsources:\n{sources}---\n\n"
        f"## About {doc_id}\n\nA page the content team wrote about {doc_id}, from its sources.\n", encoding="utf-8")


def _sources_yaml(path: Path, site: CrawlSite) -> None:
    urls = [site.url("/")] + [site.url("/" + page_name(d)) for d in SITE_DOCS[1:]]
    path.write_text("sources:\n  - id: site\n    urls:\n" + "".join(f"      - {u}\n" for u in urls) +
                    "    allow_domains: [127.0.0.1]\n    depth: 1\n    refresh_days: 7\n"
                    "    index: true\n    source_type: portal\n", encoding="utf-8")


def _edit_site(site_dir: Path, site: CrawlSite, corpus_docs) -> None:
    changed = site_dir / page_name(CHANGED)
    changed.write_text(changed.read_text(encoding="utf-8").replace("</article>", f"<p>{NEW_SENTENCE}</p>\n</article>"),
                       encoding="utf-8")
    chrome = site_dir / page_name(CHROME)
    html = chrome.read_text(encoding="utf-8")
    chrome.write_text(html.replace("We use cookies to remember your choices.", "New cookie text, updated 1 Dec.")
                      .replace("information as of", "page last rendered 2026-12-01, information as of"), encoding="utf-8")
    (site_dir / page_name(GONE)).unlink()
    site[f"/{page_name(AWAY)}"] = Route(503, {"Content-Type": "text/plain"}, b"down for maintenance")
    added = next(d for d in corpus_docs if d.id == ADDED)
    extra = site_dir / "extra"
    render_corpus_site([added], extra, start_page_id=ADDED)
    (site_dir / page_name(ADDED)).write_text((extra / "index.html").read_text(encoding="utf-8"), encoding="utf-8")
    start = site_dir / "index.html"
    start.write_text(start.read_text(encoding="utf-8").replace(
        "</ul>\n</nav>", f'<li><a href="{page_name(ADDED)}">New page</a></li>\n</ul>\n</nav>', 1), encoding="utf-8")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, corpus_docs, embedder, settings):
    """Both refreshes, with everything the tests look at."""
    tmp = tmp_path_factory.mktemp("refresh")
    site_dir, corpus = tmp / "site", tmp / "corpus"
    corpus.mkdir()
    render_corpus_site([d for d in corpus_docs if d.id in SITE_DOCS], site_dir)
    with CrawlSite(directory=site_dir) as site:
        cite = {name: site.url("/" + page_name(doc)) for name, doc in
                (("alpha", CHANGED), ("beta", GONE), ("gamma", AWAY), ("delta", CHROME))}
        for name, url in cite.items():
            _curated_page(corpus, name, [url])
        _curated_page(corpus, "epsilon", [], url=cite["alpha"])  # its url only: the organisation's address
        _sources_yaml(tmp / "sources.yaml", site)
        options = RefreshOptions(tmp / "sources.yaml", [corpus], tmp / "index", tmp / "state",
                                 CrawlSettings(delay=0, timeout=5, max_seconds=60, allow_private=True,
                                               allow_ports=(site.port,)), quiet=True)
        first = run_refresh(options, settings, encoders=embedder)
        _edit_site(site_dir, site, corpus_docs)
        second = run_refresh(replace(options, all=True), settings, encoders=embedder)
        state_after = (tmp / "state" / "state.json").read_bytes()
        reports = tmp / "state" / "reports"
        second_json, second_md = json.loads((reports / "latest.json").read_text()), (reports / "latest.md").read_text()
        nothing_due = run_refresh(options, settings, encoders=embedder)
        state_then = (tmp / "state" / "state.json").read_bytes()
        current_then = IndexLayout(tmp / "index").current_build_id()
        again = run_refresh(replace(options, all=True), settings, encoders=embedder)
        yield {"tmp": tmp, "site": site, "options": options, "first": first, "second": second,
               "state_after": state_after, "second_json": second_json, "second_md": second_md,
               "nothing_due": nothing_due, "state_then": state_then, "current_then": current_then, "again": again}


def _changes(report) -> dict[str, str]:
    return {c.url.rsplit("/", 1)[-1]: c.change for c in report.changes}


def test_the_first_refresh_records_every_page_and_builds(scenario):
    first = scenario["first"]
    assert first.ok and set(_changes(first).values()) == {"new"}
    assert set(_changes(first)) == {""} | {page_name(d) for d in SITE_DOCS[1:]}
    assert first.flagged == []  # a first sighting is a baseline, not a change
    assert first.index.built and first.index.documents == len(SITE_DOCS) + 5


def test_the_report_names_the_changed_gone_unreachable_and_new_pages(scenario):
    second = scenario["second"]
    assert second.ok, second.failures
    assert _changes(second) == {page_name(CHANGED): "changed", page_name(GONE): "gone",
                                page_name(AWAY): "unreachable", page_name(ADDED): "new"}
    changed = next(c for c in second.changes if c.change == "changed")
    assert NEW_SENTENCE in changed.added and changed.removed == ()
    gone = next(c for c in second.changes if c.change == "gone")
    assert "http-404" in gone.detail
    away = next(c for c in second.changes if c.change == "unreachable")
    assert "http-503" in away.detail
    report, markdown = scenario["second_json"], scenario["second_md"]
    assert report["ok"] is True and {c["change"] for c in report["changes"]} == {"changed", "gone", "unreachable", "new"}
    for doc_id in (CHANGED, GONE, AWAY, ADDED):
        assert page_name(doc_id) in markdown


def test_a_change_in_the_page_chrome_is_not_a_change(scenario):
    assert page_name(CHROME) not in _changes(scenario["second"])


def test_the_rebuild_encodes_only_the_chunks_whose_text_changed(scenario):
    index = scenario["second"].index
    assert index.built and index.before == scenario["first"].index.after
    layout = IndexLayout(scenario["tmp"] / "index")
    old = ChunkStore(layout.version_dir(index.before) / "kb.sqlite")
    new = ChunkStore(layout.version_dir(index.after) / "kb.sqlite")
    try:
        before = {key for _, key in old.vector_keys("dense")}
        fresh_rows = [row for row, key in new.vector_keys("dense") if key not in before]
        fresh_docs = {c.doc_id for c in new.chunks_at(fresh_rows).values()}
        docs = {d.id: d for d in new.documents()}
    finally:
        old.close()
        new.close()
    assert index.encoded_by == {"dense": len(fresh_rows)} and 0 < len(fresh_rows) < index.chunks
    assert index.reused_by == {"dense": index.chunks - len(fresh_rows)}
    changed = next(d for d in docs.values() if NEW_SENTENCE in d.text)
    added = next(d for d in docs.values() if d.title.startswith("Telehealth for COPD"))
    assert fresh_docs == {changed.id, added.id}
    assert index.added_documents == 1 and index.changed_documents == 1 and index.removed_documents == 1
    assert not any("Cancer Registry" in d.title for d in docs.values())  # gone: out of the index
    assert any("sundhed.dk" in d.title for d in docs.values())  # unreachable: its last good copy stays


def test_the_curated_pages_citing_what_changed_are_flagged(scenario):
    flagged = {f.doc_id: {s["change"] for s in f.sources} for f in scenario["second"].flagged}
    assert flagged == {"alpha": {"changed"}, "beta": {"gone"}, "gamma": {"unreachable"}}
    markdown = scenario["second_md"]
    assert "Curated alpha" in markdown and "Curated delta" not in markdown


def test_the_coverage_report_flags_them_from_the_refresh_state(scenario, settings):
    from indexer.loaders import load_corpus

    curated = load_corpus(scenario["options"].corpus)
    events = read_source_events(scenario["tmp"] / "state")
    stale = staleness_report(curated, events, datetime.now(timezone.utc).date(), stale_after_days=365, fact_after_years=3)
    assert {f.doc_id for f in stale.flagged} == {"alpha", "beta", "gamma"}
    assert stale.refreshed_at


def test_nothing_due_changes_nothing(scenario):
    assert scenario["nothing_due"] is None
    assert scenario["state_then"] == scenario["state_after"]
    assert scenario["current_then"] == scenario["second"].index.after
    again = scenario["again"]  # crawled again (--all), nothing changed on the site since
    assert again.ok and again.changes == [] and again.flagged == []
    assert not again.index.built and again.index.after == scenario["second"].index.after
    assert [a["url"].rsplit("/", 1)[-1] for a in again.still_away] == [page_name(GONE), page_name(AWAY)]


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "KB_MULTILINGUAL": "0", "KB_QUERY_LOG_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "indexer", "refresh", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _cli_args(scenario, *extra: str) -> list[str]:
    o, site = scenario["options"], scenario["site"]
    return ["--sources", str(o.sources_file), "--corpus", str(o.corpus[0]), "--index", str(o.index_dir),
            "--state", str(o.state_dir), "--delay", "0", "--timeout", "2", "--allow-private",
            "--allow-port", str(site.port), "--quiet", "--answerability", "none", *extra]


def test_the_command_with_nothing_due_exits_0(scenario):
    result = _cli(_cli_args(scenario))
    assert result.returncode == 0, result.stderr
    assert "nothing due" in result.stdout


def test_a_failed_crawl_keeps_the_index_and_says_why(scenario):
    current = IndexLayout(scenario["options"].index_dir).current_build_id()
    state_before = (scenario["options"].state_dir / "state.json").read_bytes()
    args = _cli_args(scenario, "--all")
    scenario["site"].stop()  # the site is down: nothing answers, not even robots.txt
    result = _cli(args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed: site:" in result.stderr and "robots.txt" in result.stderr
    assert IndexLayout(scenario["options"].index_dir).current_build_id() == current
    report = json.loads((scenario["options"].state_dir / "reports" / "latest.json").read_text())
    assert report["ok"] is False and report["index"]["kept"] is True and report["index"]["after"] == current
    assert "not rebuilt because a crawl failed" in report["index"]["note"]
    state = json.loads((scenario["options"].state_dir / "state.json").read_text())
    assert state["pages"] == json.loads(state_before)["pages"]  # the failed site keeps its pages
    assert state["sources"]["site"]["last_error"].startswith("robots.txt keeps the crawler off the site")


def test_the_markdown_report_escapes_what_pages_say(tmp_path, settings, embedder, corpus_docs):
    """A page whose text is markup: the rendered report shows it as text, with no link, image or HTML."""
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    page = site_dir / "page.html"
    page.write_text("<html><head><title>T</title></head><body><main><p>First text.</p></main></body></html>")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with CrawlSite(directory=site_dir) as site:
        _curated_page(corpus, "alpha", [site.url("/page.html")])
        (tmp_path / "sources.yaml").write_text(
            f"sources:\n  - id: s\n    urls: [{site.url('/page.html')}]\n    allow_domains: [127.0.0.1]\n"
            "    depth: 0\n    refresh_days: 1\n")
        options = RefreshOptions(tmp_path / "sources.yaml", [corpus], tmp_path / "index", tmp_path / "state",
                                 CrawlSettings(delay=0, timeout=5, allow_private=True, allow_ports=(site.port,)),
                                 all=True, build=False)
        run_refresh(options, settings, encoders=embedder)
        from html import escape

        page.write_text(f"<html><head><title>T</title></head><body><main><p>{escape(HOSTILE)}</p></main></body></html>")
        report = run_refresh(options, settings, encoders=embedder)
    assert report.changes[0].added == (HOSTILE,)
    rendered = MarkdownIt("commonmark").enable("table").render((tmp_path / "state" / "reports" / "latest.md").read_text())
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered
    assert "<h1>" not in rendered.split("</h1>", 1)[1] and rendered.count("<tr>") == rendered.count("<tr>\n")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; [click](javascript:alert(1))" in rendered

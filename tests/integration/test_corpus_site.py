"""The corpus as a web site: render it, crawl it on 127.0.0.1, and get the same knowledge base back.

This is the end-to-end check of the crawl path. `indexer.render_site` writes the corpus as HTML pages
(with real-world furniture around the text); the crawler fetches them; `indexer.loaders` cleans them.
If any stage drops, adds or reshapes text, the crawled documents differ from the corpus documents and
an index built from the crawl answers questions differently — both are asserted here, on the real
corpus and the real model.

The test also plants, on the start page, the awkward links every real site has: a page robots.txt
forbids, a redirect, a dead link, a PDF, an oversized page. The whole site is a link loop (every
page links back home), so each page must be fetched exactly once.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup

import kb
from indexer.crawl import CrawlSettings, crawl
from indexer.loaders import DOC_ID, PagePolicy, load_corpus, load_html
from indexer.render_site import render_corpus_site

try:
    from crawl_site import CrawlSite, Route, html_page
except ImportError:  # tests/ is a package
    from tests.fixtures.crawl_site import CrawlSite, Route, html_page

ROOT = Path(__file__).resolve().parents[2]
# The pages are our own renderer's, and this test is the caller that may vouch for them.
OWN_SITE = PagePolicy(trust_site_meta=True)
QUESTIONS = [json.loads(line) for line in (ROOT / "tests" / "eval" / "questions.jsonl").read_text().splitlines() if line.strip()]
START_ID = "digital-healthcare-denmark"
MAX_BYTES = 100_000  # every rendered corpus page is far below this; /huge.html is above it
REDIRECTED_ID = "medcom"  # reached first through /old/medcom, then again directly (a duplicate)

# Links added to the start page's header navigation (the loader drops <header>, so the start page's
# text is unchanged); the header comes before the page list, so these are crawled first.
AWKWARD_LINKS = {
    "/old/medcom": "redirected",  # 301 -> /medcom.html: followed and saved under its final URL
    "/private/notes.html": "robots",
    "/gone.html": "http-404",
    "/report.pdf": "not-html",
    "/huge.html": "too-large",
}


def _awkward_routes() -> dict:
    return {
        "/robots.txt": Route(200, {"Content-Type": "text/plain"}, "User-agent: *\nDisallow: /private/\n"),
        "/old/medcom": Route(301, {"Location": f"/{REDIRECTED_ID}.html"}, b""),
        "/private/notes.html": html_page("Private notes", [], "<p>Robots.txt forbids this page.</p>"),
        "/report.pdf": Route(200, {"Content-Type": "application/pdf"}, b"%PDF-1.4\n" + b"%fake\n" * 200),
        "/huge.html": html_page("Huge page", [], "<p>" + "word " * (MAX_BYTES // 4) + "</p>"),
    }


def _plant_awkward_links(start_page: Path) -> None:
    soup = BeautifulSoup(start_page.read_text(encoding="utf-8"), "html.parser")
    nav_list = soup.select_one("header nav ul")
    assert nav_list is not None, "the rendered start page has a header navigation list"
    for href in AWKWARD_LINKS:
        item = soup.new_tag("li")
        link = soup.new_tag("a", href=href)
        link.string = href
        item.append(link)
        nav_list.append(item)
    start_page.write_text(str(soup), encoding="utf-8")


@pytest.fixture(scope="module")
def site_crawl(tmp_path_factory, corpus_docs):
    """Render the corpus, serve it, crawl it; yields (report, request paths, base URL, crawl dir)."""
    site_dir = tmp_path_factory.mktemp("corpus-site")
    start = render_corpus_site(corpus_docs, site_dir, start_page_id=START_ID)
    _plant_awkward_links(start)
    crawl_dir = tmp_path_factory.mktemp("corpus-crawl") / "pages"
    with CrawlSite(_awkward_routes(), directory=site_dir) as site:
        settings = CrawlSettings(allow_private=True, allow_ports=(site.port,), delay=0, depth=2,
                                 max_bytes=MAX_BYTES, timeout=5, max_seconds=60)
        report = crawl(site.url("/"), crawl_dir, settings)
        assert site.wait_idle()
        assert site.errors == []
        yield report, site.paths(), site.base_url, crawl_dir


@pytest.fixture(scope="module")
def crawled_docs(site_crawl):
    return load_corpus(site_crawl[3], OWN_SITE)


def _path(url: str, base: str) -> str:
    return url[len(base):] if url.startswith(base) else url


# --------------------------------------------------------------------------------------------
# The renderer on its own


def test_rendered_page_round_trips_lines_markup_and_a_title_heading(tmp_path):
    """A document the corpus does not have yet: list lines, characters HTML escapes, a first heading
    that repeats the title (as the promotional page's does), deeper heading levels."""
    builder = kb.BlockBuilder()
    builder.heading("Tags & <angle> brackets", 1)
    builder.paragraph('Intro with "quotes", 5 < 6 & a link-like [x](y).')
    builder.heading("Deeper", 3)
    builder.paragraph("first item\nsecond item\nthird & last")
    doc = kb.Document(
        id="example", title="Tags & <angle> brackets", url="https://example.org/a?b=1&c=2", source_type="agency",
        text=builder.text, blocks=tuple(builder.blocks), organisation="Example & Co", as_of="2025-01-01",
        sources=("https://example.org/s1", "https://example.org/s2?x=1&y=2"),
    )
    start = render_corpus_site([doc], tmp_path, start_page_id="example")
    loaded = load_html(start.read_bytes(), url="http://127.0.0.1:1/", where=str(start), policy=OWN_SITE)
    assert loaded.text == doc.text
    assert loaded.blocks == doc.blocks
    assert loaded.content_hash() == doc.content_hash()
    page = start.read_text(encoding="utf-8")
    assert "<angle>" not in page  # text is escaped
    soup = BeautifulSoup(page, "html.parser")
    scripts = soup.find_all("script")
    assert scripts and all(s.get("src") and not s.string for s in scripts)  # no inline script (strict CSP)
    assert not soup.find_all("style") and not soup.find_all(style=True)
    assert soup.find("link", rel="canonical")["href"] == doc.url


def test_renderer_refuses_what_it_cannot_carry(tmp_path, corpus_docs):
    with pytest.raises(ValueError, match="start page"):
        render_corpus_site(corpus_docs, tmp_path, start_page_id="no-such-page")
    with pytest.raises(ValueError, match="share the id"):
        render_corpus_site(corpus_docs + corpus_docs[:1], tmp_path)


# --------------------------------------------------------------------------------------------
# The crawl


def test_crawl_reaches_every_corpus_page_exactly_once(site_crawl, crawled_docs, corpus_docs):
    report, paths, base, _ = site_crawl
    assert sorted(d.id for d in crawled_docs) == sorted(d.id for d in corpus_docs)
    assert len(report.saved) == len(corpus_docs)
    # every page links back home and the start page links to every page: a loop, fetched once each
    repeated = {p: n for p, n in Counter(paths).items() if n > 1}
    assert repeated == {}
    assert paths.count("/") == 1
    assert all(p.depth <= 1 for p in report.saved)


def test_awkward_links_are_skipped_with_their_reason(site_crawl):
    report, paths, base, _ = site_crawl
    reasons = {_path(s.url, base): s.reason for s in report.skipped if s.url.startswith(base)}
    expected = {href: reason for href, reason in AWKWARD_LINKS.items() if reason != "redirected"}
    assert {href: reasons.get(href) for href in expected} == expected
    assert "/private/notes.html" not in paths  # robots.txt was asked first and obeyed
    assert paths[0] == "/robots.txt"
    # what is left: the redirect target, linked again from the page list, is a duplicate
    others = {href: reason for href, reason in reasons.items() if href not in expected}
    assert others == {f"/{REDIRECTED_ID}.html": "duplicate-url"}
    # links to the pages' sources are off-domain and never fetched
    off_domain = [s for s in report.skipped if not s.url.startswith(base)]
    assert off_domain and {s.reason for s in off_domain} == {"off-domain"}


def test_redirect_is_followed_and_saved_under_its_final_url(site_crawl, crawled_docs):
    report, _, base, _ = site_crawl
    by_final = {_path(p.final_url, base): p for p in report.saved}
    page = by_final[f"/{REDIRECTED_ID}.html"]
    assert _path(page.url, base) == "/old/medcom"
    sidecar = json.loads(page.path.with_suffix(".json").read_text(encoding="utf-8"))
    assert _path(sidecar["final_url"], base) == f"/{REDIRECTED_ID}.html"
    assert REDIRECTED_ID in {d.id for d in crawled_docs}


def test_crawled_pages_load_as_the_corpus_documents(crawled_docs, corpus_docs):
    """Same text, same blocks, same metadata: furniture gone, nothing else lost or added."""
    corpus = {d.id: d for d in corpus_docs}
    for doc in crawled_docs:
        want = corpus[doc.id]
        assert doc.text == want.text, doc.id
        assert doc.blocks == want.blocks, doc.id
        got_meta = (doc.title, doc.url, doc.source_type, doc.organisation, doc.as_of, doc.sources)
        want_meta = (want.title, want.url, want.source_type, want.organisation, want.as_of, want.sources)
        assert got_meta == want_meta, doc.id
        assert doc.content_hash() == want.content_hash(), doc.id
        assert urlsplit(doc.url).hostname != "127.0.0.1"  # the official URL, not where we fetched it


def test_without_the_callers_trust_the_rendered_pages_choose_nothing(site_crawl):
    """`indexer build` never vouches for a page: the same crawl then keeps the addresses it was
    fetched from, ids made from them and the operator's source type, whatever the kb:* tags say."""
    _, _, base, crawl_dir = site_crawl
    docs = load_corpus(crawl_dir, PagePolicy(overrides={"source_type": "agency"}))
    assert docs and all(d.url.startswith(base) for d in docs)
    assert {(d.source_type, d.organisation, d.sources) for d in docs} == {("agency", "", ())}
    assert all(DOC_ID.fullmatch(d.id) and d.id.startswith("127-0-0-1-") for d in docs)


# --------------------------------------------------------------------------------------------
# The index built from the crawl


@pytest.mark.slow
def test_index_from_the_crawl_answers_like_the_corpus_index(
    crawled_docs, corpus_docs, embedder, settings, tmp_path_factory
):
    """Built from scratch in its own folder (every chunk encoded again, nothing reused), then asked
    every question of the evaluation set: the top document, and the top three, must not change.
    Both indexes hold the English model only: what is compared is what the crawl feeds the index."""
    reference_dir = tmp_path_factory.mktemp("corpus-index-en")
    kb.build_index(corpus_docs, reference_dir, embedder, settings)
    corpus_index = kb.Index.open(reference_dir, embedder, settings)
    index_dir = tmp_path_factory.mktemp("crawl-index")
    report = kb.build_index(crawled_docs, index_dir, embedder, settings)
    assert report.encoded == report.chunks == corpus_index.manifest["counts"]["chunks"]
    crawl_index = kb.Index.open(index_dir, embedder, settings)
    try:
        top1_differs, top3_differs, expected_lost = [], [], []
        for q in QUESTIONS:
            want = [h.citation.doc_id for h in corpus_index.search(q["question"], k=3).hits]
            got = [h.citation.doc_id for h in crawl_index.search(q["question"], k=3).hits]
            if want[:1] != got[:1]:
                top1_differs.append((q["id"], want, got))
            if want != got:
                top3_differs.append((q["id"], want, got))
            if set(q["doc_ids"]) & set(want) and not set(q["doc_ids"]) & set(got):
                expected_lost.append((q["id"], q["doc_ids"], got))
    finally:
        crawl_index.close()
        corpus_index.close()
    assert top1_differs == [], f"{len(top1_differs)}/{len(QUESTIONS)} questions change their top document"
    assert expected_lost == []
    assert top3_differs == [], f"{len(top3_differs)}/{len(QUESTIONS)} questions change their top 3"

"""Crawled pages do not choose their own identity, and one bad page does not stop a build.

A page on an allowed host is written by a stranger: it decides its text and title, not its id,
URL, organisation or source type (those come from the URL it was fetched from and from the
operator), unless it is a page our own renderer marked *and* the caller vouches for it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.cli import main as cli, terminal_safe
from indexer.loaders import (DOC_ID, LoaderError, PagePolicy, load_corpus, load_corpus_report, load_file, load_html,
                             load_saved_page)
from tests.fixtures.hostile_corpus import (DEPTH, FORGED_HOST, FORGED_ORGANISATION, LOADED, PAGES, SKIPPED, deep_page,
                                           page_url, write_hostile_crawl)

ROOT = Path(__file__).resolve().parents[3]
OPERATOR = PagePolicy(overrides={"source_type": "agency"})
FETCHED = "https://www.hostile.example/forged"


@pytest.fixture(scope="module")
def crawl(tmp_path_factory) -> dict[str, Path]:
    return write_hostile_crawl(tmp_path_factory.mktemp("hostile-crawl"), depth=2_000)


# ---- identity -----------------------------------------------------------------------------------

def test_a_forged_page_gets_its_identity_from_the_crawl_and_the_operator(crawl):
    doc = load_saved_page(crawl["forged"], OPERATOR)
    assert DOC_ID.fullmatch(doc.id) and "/" not in doc.id and ".." not in doc.id
    assert doc.id.startswith("www-hostile-example-forged-")
    assert doc.url == page_url("forged")  # not kb:url, not the off-host canonical link
    assert doc.organisation == "" and FORGED_ORGANISATION not in (doc.title, doc.organisation)
    assert doc.source_type == "agency"  # the operator's, not the page's "registry"
    assert doc.as_of == "2026-11-01"  # the crawl date, not the page's kb:as_of
    assert "National Patient Registry was established in 1977" in doc.text  # its text is still its own


def test_kb_tags_count_only_on_a_marked_page_the_caller_trusts():
    marked = ('<meta name="kb:rendered-by" content="denmark-digital-health-kb"><meta name="kb:id" content="our-page">'
              '<meta name="kb:url" content="https://official.example/page"><meta name="kb:organisation" content="Us">'
              '<meta name="kb:source_type" content="portal"><meta name="kb:sources" content="https://a.example/1 '
              'https://a.example/2">')
    html = f"<html><head><title>Ours</title>{marked}</head><body><p>Our own text.</p></body></html>"
    unmarked = html.replace('content="denmark-digital-health-kb"', 'content="someone-else"')
    trusted = PagePolicy(trust_site_meta=True)
    doc = load_html(html, url="http://127.0.0.1:9/our-page.html", policy=trusted)
    assert (doc.id, doc.url, doc.organisation, doc.source_type) == ("our-page", "https://official.example/page", "Us", "portal")
    assert doc.sources == ("https://a.example/1", "https://a.example/2")
    # the operator's source type still wins over a trusted page's
    assert load_html(html, url="http://127.0.0.1:9/p", policy=PagePolicy({"source_type": "agency"}, True)).source_type == "agency"
    for page, policy in ((html, OPERATOR), (unmarked, PagePolicy({"source_type": "agency"}, True))):
        doc = load_html(page, url="http://127.0.0.1:9/our-page.html", policy=policy)
        assert doc.url == "http://127.0.0.1:9/our-page.html" and doc.organisation == "" and doc.sources == ()
        assert doc.id.startswith("127-0-0-1-9-our-page-html-")


def test_a_trusted_page_with_an_invalid_id_is_refused_by_name():
    html = ('<html><head><meta name="kb:rendered-by" content="denmark-digital-health-kb">'
            '<meta name="kb:id" content="../admin/questions"><meta name="kb:source_type" content="agency"></head>'
            '<body><p>Text.</p></body></html>')
    with pytest.raises(LoaderError, match=r"saved/page\.html: document id '\.\./admin/questions' is not valid"):
        load_html(html, url="https://x.example/p", where="saved/page.html", policy=PagePolicy(trust_site_meta=True))


@pytest.mark.parametrize("doc_id", ["../admin/questions", "a/b", "UPPER", "with space", "-leading", "", "x" * 101,
                                    "é", "a.b"])
def test_invalid_ids_are_refused_wherever_a_document_is_made(doc_id):
    with pytest.raises(LoaderError, match="is not valid"):
        load_html("<p>Text.</p>", url="https://x.example/p", doc_id=doc_id or "\x00", policy=OPERATOR)


def test_a_markdown_file_name_that_is_no_valid_id_names_the_file(tmp_path):
    page = tmp_path / "Bad Name.md"
    page.write_text("---\ntitle: T\nurl: https://x.org\nsource_type: agency\n---\n\nText.\n", encoding="utf-8")
    with pytest.raises(LoaderError, match=r"Bad Name\.md: document id 'Bad Name' is not valid.*rename the file"):
        load_file(page)
    assert load_file(ROOT / "corpus" / "medcom.md").id == "medcom"


def test_every_corpus_file_name_is_a_valid_id(corpus_docs):
    assert all(DOC_ID.fullmatch(d.id) for d in corpus_docs)


@pytest.mark.parametrize("canonical, policy, want", [
    ("https://www.hostile.example/forged-clean", OPERATOR, "https://www.hostile.example/forged-clean"),
    ("/relative/path", OPERATOR, "https://www.hostile.example/relative/path"),
    (f"https://{FORGED_HOST}/da/registre", OPERATOR, FETCHED),
    ("https://hostile.example/forged", OPERATOR, FETCHED),  # another host, even a parent domain
    ("javascript:alert(1)", OPERATOR, FETCHED),
    ("http://[::1/", OPERATOR, FETCHED),  # unparsable
    (f"https://{FORGED_HOST}/da/registre", PagePolicy({"source_type": "agency"}, canonical_hosts=frozenset({FORGED_HOST.upper()})),
     f"https://{FORGED_HOST}/da/registre"),
])
def test_canonical_links_count_only_on_the_fetched_host_or_an_allowed_one(canonical, policy, want):
    html = f'<html><head><link rel="canonical" href="{canonical}"></head><body><p>Text.</p></body></html>'
    assert load_html(html, url=FETCHED, policy=policy).url == want


def test_a_page_without_a_fetched_url_keeps_its_canonical_link():
    """A file someone saved by hand has no crawl behind it: its canonical link is the only URL there is."""
    html = '<html><head><link rel="canonical" href="https://elsewhere.example/a"></head><body><p>Text.</p></body></html>'
    assert load_html(html, policy=OPERATOR).url == "https://elsewhere.example/a"


def test_an_unknown_operator_source_type_is_refused_at_once():
    with pytest.raises(ValueError, match="'blog' for crawled pages is not one of"):
        PagePolicy(overrides={"source_type": "blog"})


# ---- structure ------------------------------------------------------------------------------------

def test_deep_nesting_loads_without_recursion():
    doc = load_html(deep_page(DEPTH), url="https://x.example/deep", policy=OPERATOR)
    assert DEPTH == 100_000
    assert doc.text == "Axolotl survey\n\nThe axolotl nesting survey counts nests in the lake every year."
    assert [doc.text[b.start:b.end] for b in doc.blocks if b.kind == "heading"] == ["Axolotl survey"]


def test_deep_nesting_of_every_kind_of_element_keeps_reading_order():
    n = 3_000
    html = ("<body>" + "<div><section>" * n + "<p>First.</p>" + "</section></div>" * n + "<ul>" + "<li>" * n + "Deep item."
            + "</li>" * n + "</ul>" + "<span>" * n + "Inline tail." + "</span>" * n + "</body>")
    doc = load_html(html, url="https://x.example/deep", policy=OPERATOR)
    assert doc.text == "First.\n\nDeep item.\n\nInline tail."


# ---- a folder of crawled pages --------------------------------------------------------------------

def test_bad_crawled_pages_are_skipped_with_their_reason(crawl):
    result = load_corpus_report([crawl["forged"].parent], OPERATOR)
    loaded = {Path(d.path).name for d in result.documents}
    assert loaded == {PAGES[name][0] + ".html" for name in LOADED}
    reasons = {p.path.name: p.reason for p in result.skipped}
    assert set(reasons) == {PAGES[name][0] + ".html" for name in SKIPPED}
    assert "no text left after cleaning" in reasons["script-only.html"]
    assert "not valid JSON" in reasons["bad-sidecar.html"]
    assert "'javascript:alert(1)' is not an http(s) URL" in reasons["js-sidecar.html"]
    assert all(DOC_ID.fullmatch(d.id) for d in result.documents)


def test_a_trusted_load_skips_the_page_with_an_unknown_source_type_and_the_forged_id(crawl):
    result = load_corpus_report([crawl["forged"].parent], PagePolicy(trust_site_meta=True))
    reasons = {p.path.name: p.reason for p in result.skipped}
    assert "source_type 'blog' is not one of" in reasons["unknown-type.html"]
    assert "document id '../admin/questions' is not valid" in reasons["forged.html"]


def test_the_strict_loader_still_stops_at_a_bad_page(crawl):
    with pytest.raises(LoaderError, match="bad-sidecar.json: not valid JSON"):  # the first bad page, sorted
        load_corpus([crawl["forged"].parent], OPERATOR)


def test_curated_files_still_stop_the_load_and_keep_their_ids(tmp_path, crawl):
    curated = tmp_path / "curated"
    curated.mkdir()
    (curated / "broken.md").write_text("---\ntitle: T\nsource_type: agency\n---\n\nText.\n", encoding="utf-8")
    with pytest.raises(LoaderError, match="broken.md: missing front matter url"):
        load_corpus_report([curated, crawl["forged"].parent], OPERATOR)
    (curated / "broken.md").unlink()
    (curated / "page.html").write_text("<p>No sidecar: put here by hand, without a source type.</p>", encoding="utf-8")
    with pytest.raises(LoaderError, match="page.html: missing front matter"):
        load_corpus_report([curated], OPERATOR)


def test_a_crawled_page_cannot_take_an_id_already_in_use(tmp_path):
    folder = tmp_path / "crawl"
    folder.mkdir()
    medcom = tmp_path / "corpus"
    medcom.mkdir()
    (medcom / "medcom.md").write_text((ROOT / "corpus" / "medcom.md").read_text(encoding="utf-8"), encoding="utf-8")
    for stem in ("a", "b"):  # the same URL twice (two crawls of one site) gives the same id
        (folder / f"{stem}.html").write_text(f"<title>{stem}</title><p>Page {stem}.</p>", encoding="utf-8")
        (folder / f"{stem}.json").write_text(json.dumps({"final_url": "https://x.example/same"}), encoding="utf-8")
    mark = '<meta name="kb:rendered-by" content="denmark-digital-health-kb"><meta name="kb:id" content="medcom">'
    (folder / "c.html").write_text(f"<head>{mark}</head><p>I am medcom.</p>", encoding="utf-8")
    (folder / "c.json").write_text(json.dumps({"final_url": "https://x.example/c"}), encoding="utf-8")
    result = load_corpus_report([folder, medcom], PagePolicy({"source_type": "agency"}, trust_site_meta=True))
    assert sorted(Path(d.path).name for d in result.documents) == ["a.html", "medcom.md"]
    reasons = {p.path.name: p.reason for p in result.skipped}
    assert set(reasons) == {"b.html", "c.html"}
    assert "is already taken by" in reasons["b.html"] and reasons["c.html"].endswith("medcom.md")


# ---- the build command ----------------------------------------------------------------------------

def test_terminal_safe_escapes_control_and_bidi_characters():
    assert terminal_safe("a\x1b[2Jb\r\u202ec\nd") == "a\\x1b[2Jb\\r\\u202ec\\nd"
    assert terminal_safe("Sundhedsvæsenet: ok") == "Sundhedsvæsenet: ok"


def test_build_lists_skipped_pages_after_the_summary_and_succeeds(tmp_path, crawl, capsys, monkeypatch):
    monkeypatch.setenv("KB_MULTILINGUAL", "0")  # about loading, not about the models
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "medcom.md").write_text((ROOT / "corpus" / "medcom.md").read_text(encoding="utf-8"), encoding="utf-8")
    argv = ["build", "--corpus", str(corpus), "--corpus", str(crawl["forged"].parent), "--source-type", "agency",
            "--index", str(tmp_path / "index"), "--quiet", "--answerability", str(tmp_path / "none.jsonl")]
    assert cli(argv) == 0
    out = capsys.readouterr().out.splitlines()
    summary = next(i for i, line in enumerate(out) if line.startswith("built "))
    assert f"{1 + len(LOADED)} documents" in out[summary]
    assert out[summary + 1] == f"skipped {len(SKIPPED)} crawled pages (not indexed):"
    listed = out[summary + 2:]
    assert len(listed) == len(SKIPPED) and all(line.startswith("  ") for line in listed)
    assert any("script-only.html: no text left after cleaning" in line for line in listed)
    assert any("escape\\x1b[2Jname.html" in line for line in listed)
    assert not any("\x1b" in line for line in out)


def test_build_with_nothing_loadable_fails_and_says_why(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KB_MULTILINGUAL", "0")
    folder = tmp_path / "crawl"
    write_hostile_crawl(folder, depth=10)
    for name in LOADED:
        (folder / f"{PAGES[name][0]}.html").unlink()
    argv = ["build", "--corpus", str(folder), "--source-type", "agency", "--index", str(tmp_path / "index"), "--quiet",
            "--answerability", str(tmp_path / "none.jsonl")]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert f"skipped {len(SKIPPED)} crawled pages" in err and "No documents to index" in err

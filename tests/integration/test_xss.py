"""Markup in a query or in a corpus page renders as text on every page and in every API body."""
from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from markupsafe import escape

from tests.fixtures.xss_probe import IMG, JS_URL, PROBE_QUERY, PROBE_SENTENCE, SCRIPT, build_probe_index, probe_document


@pytest.fixture(scope="module")
def probe_client(tmp_path_factory, corpus_index_dir, corpus_docs, encoders, settings):
    from kb.search.live import LiveIndex
    from search_app import create_app

    root = build_probe_index(corpus_index_dir, tmp_path_factory.mktemp("probe") / "index", corpus_docs, encoders, settings)
    app = create_app({"TESTING": True, "SETTINGS": settings, "INDEX_DIR": str(root),
                      "LIVE_INDEX": LiveIndex(root, settings, encoders)})
    return app.test_client()


def _assert_inert(html: str) -> None:
    """Parsed as a browser would: the only script is ours, no probe element or handler exists."""
    soup = BeautifulSoup(html, "html.parser")
    assert [s.get("src") for s in soup.find_all("script")] == ["/static/app.js"]
    assert all(not s.string for s in soup.find_all("script"))  # no inline code
    assert soup.find_all("img") == []
    for tag in soup.find_all(True):
        assert not [a for a in tag.attrs if a.lower().startswith("on")], tag.name
        for attr in ("href", "src", "action"):
            assert not str(tag.get(attr, "")).strip().lower().startswith(("javascript:", "data:")), tag


def _probe_pages(client):
    doc = probe_document()
    start = doc.text.index(PROBE_SENTENCE)
    return {
        "search": client.get("/", query_string={"q": PROBE_QUERY}),
        "search-no-match": client.get("/", query_string={"q": f"{SCRIPT}{IMG}"}),
        "document": client.get("/doc/xss-probe"),
        "document-cited": client.get(f"/doc/xss-probe?start={start}&end={start + len(PROBE_SENTENCE)}"),
        "talking-points": client.get("/talking-points", query_string={"topic": PROBE_QUERY}),
        "talking-points-no-match": client.get("/talking-points", query_string={"topic": f"{SCRIPT}{IMG}"}),
        "error": client.get("/", query_string={"q": PROBE_QUERY, "source_type": f"{SCRIPT}{IMG}"}),
    }


def test_every_page_renders_the_probes_as_text(probe_client):
    for name, r in _probe_pages(probe_client).items():
        html = r.get_data(as_text=True)
        assert r.status_code in (200, 400), name
        _assert_inert(html)
        assert str(escape(SCRIPT)) in html or str(escape(IMG)) in html, name


def test_the_probe_page_is_found_highlighted_and_quoted(probe_client):
    pages = _probe_pages(probe_client)
    search = pages["search"].get_data(as_text=True)
    assert "Zebra migration probe" in search and str(escape(f"probe{IMG}")) in search  # facet and tag, escaped
    points = pages["talking-points"].get_data(as_text=True)
    assert str(escape(PROBE_SENTENCE)) in points  # in the list and, escaped, in the Markdown textarea
    cited = pages["document-cited"].get_data(as_text=True)
    assert f'<mark id="cited" class="cited">{escape(PROBE_SENTENCE)}</mark>' in cited
    # Non-web source URLs are listed as text, not linked (_assert_inert checks no such href exists).
    sources = BeautifulSoup(cited, "html.parser").select("ul.sources li")
    assert [li.get_text() for li in sources][1] == JS_URL and sources[1].find("a") is None
    assert sources[0].find("a")["href"].startswith("https://example.org/source?")


def test_api_bodies_carry_the_probe_as_plain_json_strings(probe_client):
    body = probe_client.get("/api/talking-points", query_string={"topic": PROBE_QUERY}).get_json()
    assert any(p["text"] == PROBE_SENTENCE for p in body["points"])
    assert body["topic"] == PROBE_QUERY

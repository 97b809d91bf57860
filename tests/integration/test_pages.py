"""Server-rendered pages: search results with citations, the document view, escaping."""
import re


def test_search_page_shows_numbered_cited_passages(client):
    r = client.get("/", query_string={"q": "When was the National Patient Registry established?"})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<ol class="results">' in html and "1977" in html
    assert 'href="/doc/national-patient-registry?chunk=' in html
    assert "as of" in html


def test_empty_search_page_has_a_query_box(client):
    html = client.get("/").get_data(as_text=True)
    assert '<input id="q" name="q"' in html and "<ol" not in html


def test_queries_are_escaped(client):
    probe = '"><img src=x onerror=alert(1)><script>alert(1)</script>'
    html = client.get("/", query_string={"q": probe}).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_document_view_marks_the_cited_chunk(client, corpus_index):
    hit = corpus_index.search("National Patient Registry 1977", k=1).hits[0]
    html = client.get(f"/doc/{hit.chunk.doc_id}?chunk={hit.chunk.id}").get_data(as_text=True)
    marked = re.search(r'<mark id="cited" class="cited">(.*?)</mark>', html, re.S)
    from markupsafe import escape

    assert marked and marked.group(1) == str(escape(hit.chunk.text))


def test_unknown_document_page_is_404(client):
    assert client.get("/doc/nope").status_code == 404


def test_bad_k_on_the_page_is_a_readable_400(client):
    r = client.get("/?q=registry&k=999")
    assert r.status_code == 400 and "must be a whole number" in r.get_data(as_text=True)

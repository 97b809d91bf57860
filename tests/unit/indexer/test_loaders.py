"""Loaders turn files into clean documents: furniture gone, structure and metadata kept."""
from pathlib import Path

import pytest

from indexer.loaders import LoaderError, PagePolicy, load_corpus, load_file, load_html, markdown_blocks, text_blocks

ROOT = Path(__file__).resolve().parents[3]
PROMO = ROOT / "corpus" / "digital-healthcare-denmark.txt"

FURNITURE = ["Skip to content", "Play video", "quote ikon", "COntact How can we help you?"]


def test_promo_page_loses_its_web_furniture():
    doc = load_file(PROMO)
    for junk in FURNITURE:
        assert junk.lower() not in doc.text.lower()
    assert doc.source_type == "promo"
    assert "since 1968" in doc.text
    assert doc.title == "Denmark sets the agenda for digital healthcare"


def test_promo_page_headings_become_sections():
    doc = load_file(PROMO)
    headings = [doc.text[b.start:b.end] for b in doc.blocks if b.kind == "heading"]
    assert "A successful Danish digitalization of healthcare" in headings
    assert "Unique health data and biobanks" in headings
    # the quote's attribution is not a heading: it is followed by a heading, not prose
    assert "Kevin Lyman CEO of Enlitic" not in headings


def test_promo_body_is_the_seed_text_minus_furniture():
    """The promotional page is indexed as published: every kept word is in the original."""
    doc = load_file(PROMO)
    original = " ".join(PROMO.read_text(encoding="utf-8").split())
    for block in doc.blocks:
        words = " ".join(doc.text[block.start:block.end].split())
        assert words in original


def test_blocks_are_exact_spans_of_the_text(corpus_docs):
    for doc in corpus_docs:
        for block in doc.blocks:
            piece = doc.text[block.start:block.end]
            assert piece and piece == piece.strip(), (doc.id, block)


def test_markdown_front_matter_and_structure(tmp_path):
    page = tmp_path / "example.md"
    page.write_text(
        "---\ntitle: Example page\nurl: https://example.org/x\nsource_type: agency\norganisation: Example\n"
        "as_of: 2025-01-01\nsources:\n  - https://example.org/a\n---\n\n"
        "## First section\n\nA paragraph with a [link](https://example.org) and **bold** text.\n\n"
        "- item one\n- item two\n\n### Deeper\n\nMore text here.\n",
        encoding="utf-8",
    )
    doc = load_file(page)
    assert doc.id == "example" and doc.title == "Example page" and doc.organisation == "Example"
    assert doc.sources == ("https://example.org/a",)
    assert "A paragraph with a link and bold text." in doc.text
    assert "](" not in doc.text and "**" not in doc.text
    kinds = [(b.kind, b.level) for b in doc.blocks]
    assert kinds == [("heading", 2), ("paragraph", 0), ("paragraph", 0), ("heading", 3), ("paragraph", 0)]
    assert "item one\nitem two" in doc.text


def test_missing_front_matter_is_a_readable_error(tmp_path):
    page = tmp_path / "bad.md"
    page.write_text("---\ntitle: No url\nsource_type: agency\n---\n\nText.\n", encoding="utf-8")
    with pytest.raises(LoaderError, match="bad.md: missing front matter url"):
        load_file(page)
    page.write_text("---\ntitle: T\nurl: https://x.org\nsource_type: blog\n---\n\nText.\n", encoding="utf-8")
    with pytest.raises(LoaderError, match="source_type 'blog' is not one of"):
        load_file(page)


HTML = """<!doctype html><html><head><title>Agency page | Example</title>
<link rel="canonical" href="https://example.org/agency">
<meta name="kb:source_type" content="agency"><script>var tracking = 1;</script><style>p{}</style></head>
<body><a class="skip-link" href="#main">Skip to content</a>
<header><nav><a href="/">Home</a><a href="/about">About us</a></nav></header>
<div id="cookie-banner">We use cookies. <button>Accept all cookies</button></div>
<main id="main"><h1>Agency page | Example</h1><h2>What we do</h2>
<p>The agency runs the <b>national</b> registries.</p><ul><li>First duty.</li><li>Second duty.</li></ul>
<div>Loose text in a div.</div><form><input name="q"><label>Search the site</label></form></main>
<footer>Copyright 2025 · Privacy policy</footer></body></html>"""


def test_html_loader_strips_furniture_and_keeps_structure():
    doc = load_html(HTML, url="https://example.org/agency?utm=1", policy=PagePolicy(overrides={"source_type": "portal"}))
    assert doc.url == "https://example.org/agency"  # a canonical link on the same host wins over the fetched URL
    assert doc.title == "Agency page | Example"
    assert doc.source_type == "portal"  # the operator's, not the page's kb:source_type
    for junk in ("Skip to content", "Home", "cookies", "tracking", "Copyright", "Search the site", "p{}"):
        assert junk not in doc.text
    assert "The agency runs the national registries." in doc.text
    assert "First duty." in doc.text and "Loose text in a div." in doc.text
    headings = [doc.text[b.start:b.end] for b in doc.blocks if b.kind == "heading"]
    assert headings == ["What we do"]  # the h1 repeating the title is not a section


def test_html_without_source_type_needs_a_default():
    html = "<html><head><title>T</title></head><body><p>Some text.</p></body></html>"
    with pytest.raises(LoaderError, match="source_type"):
        load_html(html, url="https://example.org/t")
    doc = load_html(html, url="https://example.org/t", defaults={"source_type": "portal"})
    assert doc.source_type == "portal" and doc.id.startswith("example-org-t")


def test_plain_text_bullets_and_headings():
    b = text_blocks("Title line here\n\nA first paragraph that is long enough to be prose.\n\n  • bullet one\n  • bullet two\n")
    assert b.text.startswith("Title line here\n\nA first paragraph")
    assert "bullet one" in b.text and "•" not in b.text
    assert b.blocks[0].kind == "heading" and b.blocks[0].level == 1


def test_markdown_code_and_lists_are_kept_as_text():
    b = markdown_blocks("Intro.\n\n1. one\n2. two\n")
    assert b.text == "Intro.\n\none\ntwo"


def test_corpus_ids_are_unique_and_stable(corpus_docs):
    ids = [d.id for d in corpus_docs]
    assert len(ids) == len(set(ids))
    again = load_corpus(ROOT / "corpus")
    assert [d.content_hash() for d in again] == [d.content_hash() for d in corpus_docs]

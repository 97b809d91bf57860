"""The corpus itself: enough pages, complete and well-formed front matter, a promotional page kept as
published. These are the facts every answer cites (title, URL, organisation, date, sources), so a
page that lacks one would produce a citation a reader cannot check.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from indexer.loaders import CORPUS_SUFFIXES, iter_corpus_files, load_file, split_front_matter

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "corpus"
NON_DOCUMENTS = {"topics.yaml", "sources.yaml"}  # coverage topics, the sites the refresh crawls; not indexed

# The source types a page may declare (the search filters offer exactly these).
SOURCE_TYPES = {"promo", "cluster", "agency", "portal", "registry", "biobank", "programme", "research-access"}
REQUIRED_KEYS = ("title", "url", "source_type", "organisation", "as_of", "sources")

PROMO = CORPUS / "digital-healthcare-denmark.txt"
# Widget labels left over from the published web page; they stay in the file (the page is indexed as
# published) and the loader drops them (see test_loaders.py).
PROMO_FURNITURE = ("Skip to content", "quote ikon", "Play video", "COntact How can we help you?")

DOCUMENT_FILES = list(iter_corpus_files(CORPUS))


def _front_matter(path: Path) -> tuple[dict, str]:
    return split_front_matter(path.read_text(encoding="utf-8"), str(path))


def _is_web_url(value: object) -> bool:
    if not isinstance(value, str) or value != value.strip():
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and bool(parts.hostname)


def _as_date(value: object) -> date:
    """YAML reads an unquoted 2026-01-31 as a date; a quoted one stays a string and must be ISO."""
    if isinstance(value, datetime):
        raise AssertionError(f"as_of should be a date, not a date and time: {value!r}")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return date.fromisoformat(value)
    raise AssertionError(f"as_of is not an ISO date (YYYY-MM-DD): {value!r}")


def test_corpus_has_at_least_25_documents_and_nothing_unexpected():
    entries = [p for p in CORPUS.iterdir() if not p.name.startswith(".")]
    strays = [p.name for p in entries if p.name not in NON_DOCUMENTS and p.suffix.lower() not in CORPUS_SUFFIXES]
    assert strays == [], f"files the loader would silently ignore: {strays}"
    assert len(DOCUMENT_FILES) >= 25
    stems = [p.stem for p in DOCUMENT_FILES]
    assert len(stems) == len(set(stems)), "two files give the same document id"


@pytest.mark.parametrize("path", DOCUMENT_FILES, ids=lambda p: p.name)
def test_front_matter_is_complete(path: Path):
    meta, body = _front_matter(path)
    missing = [k for k in REQUIRED_KEYS if k not in meta or meta[k] in (None, "", [])]
    assert missing == [], f"{path.name}: missing front matter {missing}"
    for key in ("title", "organisation"):
        assert isinstance(meta[key], str) and meta[key].strip(), f"{path.name}: {key} must be text"
    assert meta["source_type"] in SOURCE_TYPES, f"{path.name}: source_type {meta['source_type']!r}"
    assert _is_web_url(meta["url"]), f"{path.name}: url {meta['url']!r} is not an http(s) URL"
    sources = meta["sources"]
    assert isinstance(sources, list) and sources, f"{path.name}: sources must be a non-empty list"
    bad = [s for s in sources if not _is_web_url(s)]
    assert bad == [], f"{path.name}: sources that are not http(s) URLs: {bad}"
    assert len(sources) == len(set(sources)), f"{path.name}: a source is listed twice"
    assert body.strip(), f"{path.name}: no text after the front matter"


@pytest.mark.parametrize("path", DOCUMENT_FILES, ids=lambda p: p.name)
def test_as_of_is_a_date_not_in_the_future(path: Path):
    meta, _ = _front_matter(path)
    as_of = _as_date(meta.get("as_of"))
    assert date(2000, 1, 1) <= as_of <= date.today(), f"{path.name}: as_of {as_of} is implausible"
    # what the index stores (and citations show) is the same date, in ISO form
    assert load_file(path).as_of == as_of.isoformat()


@pytest.mark.parametrize("path", [p for p in DOCUMENT_FILES if p.suffix == ".md"], ids=lambda p: p.name)
def test_markdown_pages_have_sections(path: Path):
    """Sections are what a citation points into; a page with fewer than two is one undivided blob."""
    _, body = _front_matter(path)
    headings = [line for line in body.splitlines() if line.startswith("## ")]
    assert len(headings) >= 2, f"{path.name}: {len(headings)} '## ' headings"


def test_promo_page_is_kept_as_published():
    meta, body = _front_matter(PROMO)
    assert meta["source_type"] == "promo"
    lines = {line.strip() for line in body.splitlines()}
    for furniture in PROMO_FURNITURE:
        assert furniture in lines, f"promo page no longer carries its published line {furniture!r}"
    promos = [p.name for p in DOCUMENT_FILES if _front_matter(p)[0].get("source_type") == "promo"]
    assert promos == [PROMO.name], "exactly one promotional page, the one the coverage report starts from"


def test_every_source_type_has_pages():
    """Each filter value in the search UI must be able to return something."""
    used = {_front_matter(p)[0].get("source_type") for p in DOCUMENT_FILES}
    assert used == SOURCE_TYPES

"""corpus/sources.yaml: derived from the pages, complete, and validated with errors naming file and entry."""
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.refresh.sources import (Source, SourcesFileError, cited_urls, dump_sources, generate_sources, load_sources,
                                     missing_urls)

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ROOT / "corpus" / "sources.yaml"
GOOD = """sources:
  - id: medcom-dk
    urls: [https://www.medcom.dk/, https://www.medcom.dk/medcom-in-english/about-medcom]
    allow_domains: [medcom.dk]
    depth: 0
    refresh_days: 7
"""


def test_the_shipped_file_lists_every_url_the_pages_cite(corpus_docs):
    sources = load_sources(SOURCES)
    assert missing_urls(sources, corpus_docs) == {}
    cited = cited_urls(corpus_docs)
    assert len(cited) > 100 and all(u in {x for s in sources for x in s.urls} for u in cited)


def test_the_shipped_file_is_what_the_generator_writes(corpus_docs):
    """Edited settings survive regeneration; a URL a page stops citing leaves the file."""
    text = SOURCES.read_text(encoding="utf-8")
    assert dump_sources(generate_sources(corpus_docs, load_sources(SOURCES))) == text, \
        "corpus/sources.yaml is out of date: run `python -m indexer sources --write`"


def test_generation_keeps_settings_and_follows_the_citations(corpus_docs):
    first = generate_sources(corpus_docs)
    medcom = next(s for s in first if s.id == "medcom-dk")
    tuned = [Source(**{**vars(s), "depth": 1, "refresh_days": 30}) if s.id == "medcom-dk" else s for s in first]
    pages = [d for d in corpus_docs if d.id != "medcom"]  # the only page citing medcom.dk
    again = generate_sources(corpus_docs, tuned)
    assert next(s for s in again if s.id == "medcom-dk").refresh_days == 30
    assert all(s.id != "medcom-dk" for s in generate_sources(pages, tuned))
    assert generate_sources(corpus_docs, first) == first  # idempotent
    # en.digst.dk keeps its own entry although digst.dk would allow it too
    assert {s.id for s in first} >= {"digst-dk", "en-digst-dk"} and medcom.allow_domains == ("medcom.dk",)


def test_sources_check_command(tmp_path, corpus_docs):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "medcom.md").write_text((ROOT / "corpus" / "medcom.md").read_text(encoding="utf-8"), encoding="utf-8")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "indexer", "sources", "--corpus", str(corpus), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert run("--check").returncode == 1  # no file yet
    assert run("--write").returncode == 0 and (corpus / "sources.yaml").is_file()
    assert run("--check").returncode == 0
    (corpus / "sources.yaml").write_text(GOOD, encoding="utf-8")
    result = run("--check")
    assert result.returncode == 1 and "no source lists https://docslib.org/" in result.stderr


def _load(tmp_path, text):
    path = tmp_path / "sources.yaml"
    path.write_text(text, encoding="utf-8")
    return load_sources(path)


def test_a_valid_file_loads(tmp_path):
    [source] = _load(tmp_path, GOOD)
    assert source == Source("medcom-dk", ("https://www.medcom.dk/", "https://www.medcom.dk/medcom-in-english/about-medcom"),
                            ("medcom.dk",), 0, 7)


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("depth: 0", "depth: -1", "depth must be a whole number from 0 to 5, not -1"),
    ("refresh_days: 7", "refresh_days: weekly", "refresh_days must be a whole number from 1 to 366, not 'weekly'"),
    ("depth: 0", "depth: 0\n    refresh_day: 3", "unknown field 'refresh_day'"),
    ("    depth: 0\n", "", "missing field 'depth'"),
    ("allow_domains: [medcom.dk]", "allow_domains: [example.org]", "is outside allow_domains ['example.org']"),
    ("https://www.medcom.dk/,", "ftp://www.medcom.dk/,", "urls: 'ftp://www.medcom.dk/' is not an http"),
    ("id: medcom-dk", "id: MedCom DK", "id must be 1-63 characters"),
    ("depth: 0", "depth: 0\n    index: true", "index: true needs a source_type"),
    ("depth: 0", "depth: 0\n    source_type: blog", "source_type 'blog' is not one of"),
    ("depth: 0", "depth: 0\n    enabled: no-thanks", "enabled must be true or false"),
])
def test_each_problem_names_the_file_and_the_entry(tmp_path, old, new, expected):
    assert old in GOOD
    second = GOOD.split("\n", 1)[1].replace("medcom-dk", "other").replace("www.medcom.dk", "www.other.dk") \
        .replace("[medcom.dk]", "[other.dk]")
    with pytest.raises(SourcesFileError) as info:
        _load(tmp_path, GOOD.replace(old, new, 1) + second)
    message = str(info.value)
    assert f"{tmp_path / 'sources.yaml'}: sources[0]" in message and expected in message
    assert "sources[1]" not in message  # the good entry is not blamed


@pytest.mark.parametrize(("text", "expected"), [
    ("- just a list\n", "must be a mapping with one key, `sources`"),
    ("sources: [1, 2]\n", "sources[0]: must be a mapping of fields"),
    ("sources:\n  - {id: a\n", "cannot be read as YAML"),
    (GOOD + GOOD.split("\n", 1)[1], "id 'medcom-dk' is used by two entries"),
])
def test_file_level_problems(tmp_path, text, expected):
    with pytest.raises(SourcesFileError, match=expected.replace("[", "\\[").replace("(", "\\(")):
        _load(tmp_path, text)


def test_a_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(SourcesFileError, match="indexer sources --write"):
        load_sources(tmp_path / "nope.yaml")


def test_every_problem_is_reported_at_once(tmp_path):
    bad = GOOD.replace("depth: 0", "depth: 9").replace("refresh_days: 7", "refresh_days: 0")
    with pytest.raises(SourcesFileError) as info:
        _load(tmp_path, bad)
    assert "depth must be" in str(info.value) and "refresh_days must be" in str(info.value)

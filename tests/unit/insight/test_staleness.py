"""Stale content: old pages, pages whose sources changed after their date, dated "as of" facts."""
import json
from dataclasses import replace
from datetime import date

import pytest

import kb
from kb.insight.staleness import (EVENTS_FILE, SourceEvent, SourceEvents, dated_facts, flag_citing_pages, old_pages,
                                  parse_as_of, read_source_events, staleness_report, write_source_events)

TODAY = date(2026, 12, 1)


def doc(doc_id, as_of="2026-06-01", text="Plain text.", sources=()):
    builder = kb.BlockBuilder()
    builder.paragraph(text)
    return kb.Document(id=doc_id, title=f"Title {doc_id}", url=f"https://example.org/{doc_id}", source_type="agency",
                       text=builder.text, blocks=tuple(builder.blocks), as_of=as_of, sources=tuple(sources))


def test_a_page_is_old_past_the_threshold_and_a_page_without_a_date_always():
    docs = [doc("fresh", "2026-01-31"), doc("edge", "2025-12-01"), doc("old", "2025-11-30"), doc("none", ""),
            doc("garbled", "last spring"), doc("year", "2024")]
    listed = old_pages(docs, TODAY, 365)
    assert [p.doc_id for p in listed] == ["garbled", "none", "year", "old"]  # undated first, then oldest first
    assert listed[-1].age_days == 366 and listed[0].age_days is None
    assert [p.doc_id for p in old_pages(docs, TODAY, 300)][-1] == "fresh"


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-01-31", date(2026, 1, 31)), ("2026-01", date(2026, 1, 1)), ("2026", date(2026, 1, 1)),
    ("", None), ("2026-13-01", None), ("20260131", None), ("soon", None),
])
def test_as_of_dates(value, expected):
    assert parse_as_of(value) == expected


def test_a_page_is_flagged_when_a_source_changed_after_its_date():
    url = "https://example.org/source"
    events = SourceEvents((SourceEvent("https://example.org/source", "changed", "2026-11-30"),
                           SourceEvent("https://example.org/dead", "gone", "2026-03-01", "http-404",
                                       aliases=("https://example.org/dead-as-cited",))), "2026-11-30T10:00:00+00:00")
    docs = [doc("before", "2026-06-01", sources=[url]), doc("after", "2026-11-30", sources=[url]),
            doc("alias", "2026-01-01", sources=["https://example.org/dead-as-cited"]),
            doc("url-only", "2026-01-01"), doc("undated", "", sources=[url])]
    docs[3] = replace(docs[3], url=url)  # its own address changed: not evidence
    flagged = {f.doc_id: [e.change for e in f.events] for f in flag_citing_pages(docs, events)}
    assert flagged == {"before": ["changed"], "alias": ["gone"], "undated": ["changed"]}


def test_dated_facts_quote_their_sentence():
    text = ("The registry had 5 million entries (as of 2012). It grew later. Membership was 300 as of March 2019, "
            "said the report. Visits were 2 million (as of 2024). Staff numbers rose (as of the end of 2018). "
            "See the page as of today.")
    facts = dated_facts([doc("d", text=text)], TODAY, 3)
    assert [(f.year, f.sentence) for f in facts] == [
        (2012, "The registry had 5 million entries (as of 2012)."),
        (2018, "Staff numbers rose (as of the end of 2018)."),
        (2019, "Membership was 300 as of March 2019, said the report."),
    ]
    assert all(text[f.start:f.end] == f.sentence for f in facts)
    assert [f.year for f in dated_facts([doc("d", text=text)], TODAY, 1)] == [2012, 2018, 2019, 2024]


def test_the_events_file_round_trips_and_a_damaged_one_is_a_message(tmp_path):
    assert read_source_events(tmp_path) == SourceEvents()  # no refresh yet
    events = [SourceEvent("https://b.example/", "unreachable", "2026-11-01", "http-503", ("https://b.example",)),
              SourceEvent("https://a.example/", "changed", "2026-11-02")]
    write_source_events(tmp_path, events, "2026-11-02T00:00:00+00:00")
    loaded = read_source_events(tmp_path)
    assert loaded.events == tuple(sorted(events, key=lambda e: e.url)) and loaded.written_at.startswith("2026-11-02")
    assert not list(tmp_path.glob(".*.tmp"))  # written whole, renamed into place
    for damage in ("{not json", json.dumps({"format": 99, "sources": []}), json.dumps({"format": 1, "sources": [{}]})):
        (tmp_path / EVENTS_FILE).write_text(damage)
        problem = read_source_events(tmp_path).problem
        assert EVENTS_FILE in problem and "indexer refresh" in problem
    with pytest.raises(ValueError, match="unknown source change"):
        write_source_events(tmp_path, [SourceEvent("https://a.example/", "renamed", "2026-11-02")], "now")


def test_the_report_on_the_real_corpus(corpus_docs):
    report = staleness_report(corpus_docs, SourceEvents(), TODAY, stale_after_days=365, fact_after_years=3)
    assert [p.doc_id for p in report.old_pages] == ["digital-healthcare-denmark"]  # as_of 2021-01-01
    assert report.flagged == [] and report.refreshed_at is None
    years = [f.year for f in report.dated_facts]
    assert years == sorted(years) and min(years) == 2012 and max(years) == 2022
    assert any(f.doc_id == "national-patient-registry" and "8,085,603" in f.sentence for f in report.dated_facts)
    assert "1 pages older than 365 days" in report.summary()
    assert json.dumps(report.as_dict())  # the JSON the coverage page and command print

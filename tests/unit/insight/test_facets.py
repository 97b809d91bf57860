"""Facet counts over the unfiltered relevant candidates, and facets that filter when clicked."""
from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

from kb.answer.signal import answer
from kb.insight.facets import FACET_DEPTH, facet_counts

QUERY = "registry data for research"


def _relevant_docs(index, query, cut):
    hits = index.search(query, k=FACET_DEPTH, mode="hybrid").hits
    return {h.chunk.doc_id for h in hits if h.dense_score >= cut}


def test_counts_are_documents_per_value_above_the_passage_cut(corpus_index):
    facets = facet_counts(corpus_index, QUERY)
    docs = _relevant_docs(corpus_index, QUERY, answer(corpus_index, QUERY).passage_cut)
    assert facets.documents == len(docs) >= 3
    expected_types: dict[str, int] = {}
    for d in docs:
        t = corpus_index.documents[d].source_type
        expected_types[t] = expected_types.get(t, 0) + 1
    assert {v.value: v.count for v in facets.source_type} == expected_types
    assert facets.source_type[0].value == "registry"  # the registry pages dominate this query
    counts = [v.count for v in facets.source_type]
    assert counts == sorted(counts, reverse=True) and sum(counts) == facets.documents
    assert sum(v.count for v in facets.organisation) == sum(1 for d in docs if corpus_index.documents[d].organisation)


def test_the_thin_cut_sits_below_the_answer_cut_and_the_cut_matters(corpus_index):
    assert answer(corpus_index, QUERY).thin_cut <= answer(corpus_index, QUERY).cut
    everything = facet_counts(corpus_index, QUERY, cut=-1.0)
    assert everything.documents > facet_counts(corpus_index, QUERY).documents
    assert not facet_counts(corpus_index, QUERY, cut=1.01)
    as_dict = facet_counts(corpus_index, QUERY).as_dict()
    assert set(as_dict) == {"documents", "source_type", "organisation"}
    assert as_dict["source_type"][0]["value"] == "registry" and as_dict["source_type"][0]["count"] >= 2


def _facet_links(html):
    return [
        (m.group(2), m.group(3), unescape(m.group(1)), bool(m.group(4)))
        for m in re.finditer(
            r'<a href="([^"]+)" class="facet-link[^"]*" data-field="([^"]+)" data-value="([^"]+)"\s*(aria-current="true")?', html
        )
    ]


def test_facets_on_the_page_link_to_filtered_results_and_stay_unfiltered(client, corpus_index):
    html = client.get("/", query_string={"q": QUERY}).get_data(as_text=True)
    links = _facet_links(html)
    facets = facet_counts(corpus_index, QUERY)
    assert [(f, v) for f, v, _, _ in links] == [("source_type", v.value) for v in facets.source_type] + [
        ("organisation", v.value) for v in facets.organisation
    ]
    field, value, url, active = next(link for link in links if link[1] == "registry")
    assert not active and parse_qs(urlsplit(url).query) == {"q": [QUERY], "refine": ["1"], "source_type": ["registry"]}

    filtered = client.get(url).get_data(as_text=True)
    tags = re.findall(r'<span class="tag">([^<]+)</span>', filtered)
    assert tags and set(tags) == {"registry"}
    after = _facet_links(filtered)
    assert [(f, v) for f, v, _, _ in after] == [(f, v) for f, v, _, _ in links]  # counts from the unfiltered set
    _, _, back, active = next(link for link in after if link[1] == "registry")
    assert active and parse_qs(urlsplit(back).query) == {"q": [QUERY], "refine": ["1"]}  # clicking again removes the filter
    assert "Clear filters" in filtered


def test_an_unknown_facet_value_is_a_400(client):
    assert client.get("/", query_string={"q": QUERY, "organisation": "Nobody"}).status_code == 400

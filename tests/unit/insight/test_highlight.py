"""The best sentence of each hit: from vectors stored at build time, of the model that served the
query, escaped on the page."""
from __future__ import annotations

import re

import numpy as np
from markupsafe import escape

from kb.ingest.sentences import sentence_spans
from kb.insight.highlight import best_sentences
from tests.fixtures.fake_embedder import CountingEmbedder

CPR_QUESTION = "When was the Danish personal identification number introduced?"
CPR_DANISH = "Hvornår blev det danske personnummer indført?"


def _highlights(index, query):
    response = index.search(query, k=5)
    return response, best_sentences(index, query, response.hits, retriever=response.dense_retriever,
                                    query_vector=response.query_vector)


def test_highlight_is_a_sentence_of_the_chunk_and_answers_the_question(corpus_index):
    response, highlights = _highlights(corpus_index, CPR_QUESTION)
    assert len(highlights) == len(response.hits)
    for hit, hl in zip(response.hits, highlights):
        assert (hl.start, hl.end) in sentence_spans(hit.chunk.text)
        before, best, after = hl.parts(hit.chunk.text)
        assert before + best + after == hit.chunk.text and best
    assert "1968" in highlights[0].parts(response.hits[0].chunk.text)[1]


def test_highlight_is_the_sentence_closest_to_the_query_with_the_serving_model(corpus_index, encoders):
    for query in ("Since when has Digital Post been compulsory?", "Siden hvornår har Digital Post været obligatorisk?"):
        response = corpus_index.search(query, k=1)
        hit = response.hits[0]
        [hl] = best_sentences(corpus_index, query, [hit], retriever=response.dense_retriever)
        model = encoders[response.dense_retriever]
        spans = sentence_spans(hit.chunk.text)
        scores = model.encode([hit.chunk.text[s:e] for s, e in spans]) @ model.encode_query(query)
        assert spans[int(scores.argmax())] == (hl.start, hl.end), query
        assert abs(hl.score - float(scores.max())) < 1e-3
        assert "2014" in hit.chunk.text[hl.start:hl.end]


def test_a_danish_query_is_highlighted_with_the_multilingual_model(corpus_index):
    response, highlights = _highlights(corpus_index, CPR_DANISH)
    assert response.language == "da" and response.dense_retriever == "multilingual"
    assert "1968" in highlights[0].parts(response.hits[0].chunk.text)[1]


def test_highlighting_runs_no_model(corpus_index, encoders):
    """Sentence vectors come from the index version; only the (cached) query vector is needed."""
    response = corpus_index.search("telehealth for heart failure", k=10)
    counting = {name: CountingEmbedder(enc) for name, enc in encoders.items()}
    dense = corpus_index.dense(response.dense_retriever)
    real = dense.encoder
    dense.encoder = counting[response.dense_retriever]
    try:
        best_sentences(corpus_index, response.query, response.hits, retriever=response.dense_retriever,
                       query_vector=response.query_vector)
    finally:
        dense.encoder = real
    assert counting[response.dense_retriever].encoded == 0


def test_no_hits_no_highlights(corpus_index):
    assert best_sentences(corpus_index, "anything", []) == []


def test_search_page_marks_the_best_sentence_escaped(client, corpus_index):
    for query in (CPR_QUESTION, CPR_DANISH):
        html = client.get("/", query_string={"q": query}).get_data(as_text=True)
        marks = re.findall(r'<p class="passage">(.*?)</p>', html, re.S)
        response = corpus_index.search(query, k=10)
        assert len(marks) == len(response.hits) == 10
        highlights = best_sentences(corpus_index, query, response.hits, retriever=response.dense_retriever)
        for passage, hit, hl in zip(marks, response.hits, highlights):
            before, best, after = hl.parts(hit.chunk.text)
            assert passage == f'{escape(before)}<mark class="best">{escape(best)}</mark>{escape(after)}'
        assert np.isfinite([hl.score for hl in highlights]).all()

"""The best sentence of each hit: on the real model, in one batched call, escaped on the page."""
from __future__ import annotations

import re

from markupsafe import escape

from kb.core.records import Chunk
from kb.insight.highlight import best_sentences
from kb.insight.sentence_vectors import SentenceVectorCache
from kb.ingest.sentences import sentence_spans
from tests.unit.insight.test_talking_points import CountingEmbedder

CPR_QUESTION = "When was the Danish personal identification number introduced?"


def test_highlight_is_a_sentence_of_the_chunk_and_answers_the_question(corpus_index, embedder):
    hits = corpus_index.search(CPR_QUESTION, k=5).hits
    highlights = best_sentences(embedder, CPR_QUESTION, [h.chunk for h in hits], cache=SentenceVectorCache())
    assert len(highlights) == len(hits)
    for hit, hl in zip(hits, highlights):
        assert (hl.start, hl.end) in sentence_spans(hit.chunk.text)
        before, best, after = hl.parts(hit.chunk.text)
        assert before + best + after == hit.chunk.text and best
    assert "1968" in highlights[0].parts(hits[0].chunk.text)[1]


def test_highlight_is_the_sentence_closest_to_the_query(corpus_index, embedder):
    hit = corpus_index.search("Since when has Digital Post been compulsory?", k=1).hits[0]
    [hl] = best_sentences(embedder, "Since when has Digital Post been compulsory?", [hit.chunk], cache=SentenceVectorCache())
    spans = sentence_spans(hit.chunk.text)
    q = embedder.encode_query("Since when has Digital Post been compulsory?")
    scores = embedder.encode([hit.chunk.text[s:e] for s, e in spans]) @ q
    assert spans[int(scores.argmax())] == (hl.start, hl.end)
    assert abs(hl.score - float(scores.max())) < 1e-4
    assert "2014" in hit.chunk.text[hl.start:hl.end]


def test_all_hits_are_encoded_in_one_call(corpus_index, embedder):
    counting = CountingEmbedder(embedder)
    hits = corpus_index.search("telehealth for heart failure", k=10).hits
    n_sentences = sum(len(sentence_spans(h.chunk.text)) for h in hits)
    cache = SentenceVectorCache()
    best_sentences(counting, "telehealth for heart failure", [h.chunk for h in hits], cache=cache)
    assert len(counting.encode_calls) == 1
    assert counting.encode_calls[0] == len({h.chunk.text[s:e] for h in hits for s, e in sentence_spans(h.chunk.text)})
    assert counting.encode_calls[0] <= n_sentences
    best_sentences(counting, "telehealth for heart failure", [h.chunk for h in hits], cache=cache)
    assert len(counting.encode_calls) == 1


def test_edge_cases(embedder):
    one = Chunk("c1", "d", "", 0, 24, "Only one sentence here.")
    empty = Chunk("c2", "d", "", 0, 0, "")
    assert best_sentences(embedder, "anything", []) == []
    hl_one, hl_empty = best_sentences(embedder, "anything", [one, empty])
    assert (hl_one.start, hl_one.end) == (0, len(one.text)) and hl_empty is None


def test_search_page_marks_the_best_sentence_escaped(client, corpus_index, embedder):
    html = client.get("/", query_string={"q": CPR_QUESTION}).get_data(as_text=True)
    marks = re.findall(r'<p class="passage">(.*?)</p>', html, re.S)
    hits = corpus_index.search(CPR_QUESTION, k=10).hits
    assert len(marks) == len(hits) == 10
    highlights = best_sentences(embedder, CPR_QUESTION, [h.chunk for h in hits])
    for passage, hit, hl in zip(marks, hits, highlights):
        before, best, after = hl.parts(hit.chunk.text)
        assert passage == f'{escape(before)}<mark class="best">{escape(best)}</mark>{escape(after)}'

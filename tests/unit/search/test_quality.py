"""Retrieval quality on our own corpus and question set: a regression test, not a benchmark.

tests/eval/questions.jsonl holds questions we wrote about corpus/, each with the documents that
answer it. These tests fail when a change to chunking, fusion or the model makes our own search
worse than the bar the project set (hybrid Recall@5 >= 0.95, MRR@10 >= 0.85), when hybrid stops
beating each of its signals alone, or when a page can no longer answer its questions near the top.
"""
import json
from pathlib import Path

import pytest

from kb.eval.metrics import evaluate_index, rank_documents

QUESTIONS = Path(__file__).resolve().parents[2] / "eval" / "questions.jsonl"
RECORDS = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
MEASURES = ("ndcg@10", "mrr@10", "recall@5")


@pytest.fixture(scope="module")
def question_set():
    from indexer.evaluate import load_questions

    return load_questions(QUESTIONS)


@pytest.fixture(scope="module")
def reports(corpus_index, question_set):
    queries, qrels = question_set
    return {mode: evaluate_index(corpus_index, queries, qrels, mode, measures=MEASURES)
            for mode in ("dense", "keyword", "hybrid")}


def test_the_question_set_is_big_enough_and_names_real_pages(question_set, corpus_index):
    queries, qrels = question_set
    assert len(queries) >= 40
    named = {d for docs in qrels.values() for d in docs}
    assert named <= set(corpus_index.documents)


def test_hybrid_meets_the_quality_bar(reports):
    hybrid = reports["hybrid"].metrics
    assert hybrid["recall@5"] >= 0.95, hybrid
    assert hybrid["mrr@10"] >= 0.85, hybrid


def test_hybrid_beats_each_signal_alone(reports):
    """The reason hybrid is the default: better than semantic or keyword search on their own."""
    for measure in ("ndcg@10", "mrr@10"):
        hybrid = reports["hybrid"].metrics[measure]
        assert hybrid > reports["dense"].metrics[measure], measure
        assert hybrid > reports["keyword"].metrics[measure], measure


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_question_finds_its_page_in_the_top_3(corpus_index, record):
    top = [d for d, _ in rank_documents(corpus_index, record["question"], 3, "hybrid")]
    assert set(top) & set(record["doc_ids"]), (record["question"], top)


PAGES = sorted({d for r in RECORDS for d in r["doc_ids"]})


@pytest.mark.parametrize("doc_id", PAGES)
def test_each_page_answers_one_of_its_questions_in_the_top_3_passages(corpus_index, doc_id):
    """For every page, some question about it is answered — the answer's words on screen — by a
    passage of that page among the first three results."""
    answered = []
    for record in (r for r in RECORDS if doc_id in r["doc_ids"]):
        for hit in corpus_index.search(record["question"], k=3, mode="hybrid").hits:
            shown = f"{hit.citation.title}\n{hit.chunk.text}".lower()
            if hit.chunk.doc_id == doc_id and record["answer"].lower() in shown:
                answered.append(record["id"])
    assert answered, f"no question about {doc_id} is answered by its own passage in the top 3"


def test_every_corpus_page_has_a_question(corpus_index):
    assert set(corpus_index.documents) <= set(PAGES)

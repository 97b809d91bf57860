"""The evaluation harness: BEIR loading, best-chunk collapse and metric arithmetic, checked by hand.

The sample collection is made here, small enough to reason about: keyword mode ranks documents by
BM25, which for documents of equal length orders them by how often they repeat the query term, so
the ranking is known before the search runs (and asserted, so a failure says which part broke).
The expected figures are computed by hand from that ranking with the standard definitions:
nDCG@10 with linear graded gains and log2(rank + 1) discounts, Recall@100, and MRR@10.
"""
import json
import math

import pytest

from indexer.cli import main
from indexer.evaluate import load_beir_corpus, load_beir_qrels, load_questions
from kb.eval.metrics import rank_documents, score_rankings


def _filler(i: int) -> str:
    return f"Record{i} lists plainword{i} together with extra{i} and more{i} items{i}."


def _long_okapi() -> str:
    # Two paragraphs' worth of sentences, each naming okapi: far over one chunk's budget.
    return " ".join(f"Sentence{i} notes okapi habits{i} near rivers{i} daily{i}." for i in range(60))


@pytest.fixture()
def beir_sample(tmp_path):
    """A BEIR folder: 30 documents, 5 queries, CRLF qrels with a header (as BEIR ships them)."""
    corpus = {
        # Same length (title 3 tokens + text 6 tokens); only the count of 'zebra' differs.
        "A": ("Animal note one", "zebra zebra zebra alpha beta gamma."),
        "B": ("Animal note two", "zebra zebra delta alpha beta gamma."),
        "C": ("Animal note three", "zebra epsilon delta alpha beta gamma."),
        "D": ("Animal note four", "striped horse of the african plains."),
        "E": ("Animal note five", "okapi seen once among the others here."),
        "F": ("Animal note six", "walrus walrus tusk alpha beta gamma."),
        "G": ("Animal note seven", "walrus eta tusk alpha beta gamma."),
        "L": ("Long okapi report", _long_okapi()),
    }
    corpus.update({f"N{i:02d}": (f"Filler title {i}", _filler(i)) for i in range(22)})
    (tmp_path / "qrels").mkdir()
    with (tmp_path / "corpus.jsonl").open("w") as fh:
        for doc_id, (title, text) in corpus.items():
            fh.write(json.dumps({"_id": doc_id, "title": title, "text": text, "metadata": {}}) + "\n")
    queries = {"q1": "zebra", "q2": "okapi", "q3": "quokka", "q4": "walrus", "q5": "zebra", "q9": "unjudged"}
    with (tmp_path / "queries.jsonl").open("w") as fh:
        for qid, text in queries.items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    rows = [("q1", "C", 2), ("q1", "D", 1), ("q1", "A", 0),  # A retrieved first but judged not relevant
            ("q2", "L", 1), ("q2", "E", 1),
            ("q3", "D", 1),  # nothing matches 'quokka': the query counts, with zeros
            ("q4", "F", 1), ("q4", "G", 1),
            ("q5", "B", 0)]  # no relevant document: not part of any mean
    (tmp_path / "qrels" / "test.tsv").write_bytes(
        ("query-id\tcorpus-id\tscore\r\n" + "".join(f"{q}\t{d}\t{s}\r\n" for q, d, s in rows)).encode()
    )
    return tmp_path


# Hand-computed from the rankings asserted below.
LOG2_3 = math.log2(3)
NDCG_Q1 = (2 / math.log2(4)) / (2 / 1 + 1 / LOG2_3)  # C (gain 2) at rank 3; ideal: C, then D
EXPECTED = {
    "ndcg@10": (NDCG_Q1 + 1.0 + 0.0 + 1.0) / 4,
    "recall@100": (1 / 2 + 1.0 + 0.0 + 1.0) / 4,
    "mrr@10": (1 / 3 + 1.0 + 0.0 + 1.0) / 4,
}


def test_beir_files_load_as_documents_and_graded_qrels(beir_sample):
    docs = {d.id: d for d in load_beir_corpus(beir_sample)}
    assert len(docs) == 30
    assert docs["A"].title == "Animal note one" and docs["A"].text == "zebra zebra zebra alpha beta gamma."
    assert docs["A"].organisation == beir_sample.name and docs["A"].blocks
    qrels = load_beir_qrels(beir_sample / "qrels" / "test.tsv")
    assert qrels["q1"] == {"C": 2, "D": 1, "A": 0}  # header skipped, CRLF gone, grades kept
    assert set(qrels) == {"q1", "q2", "q3", "q4", "q5"}


def test_keyword_rankings_collapse_chunks_to_documents(beir_sample, embedder, settings, tmp_path):
    import kb

    index_dir = tmp_path / "index"
    report = kb.build_index(load_beir_corpus(beir_sample), index_dir, embedder, settings)
    index = kb.Index.open(index_dir, embedder, settings)
    try:
        assert len(index.chunks_of("L")) >= 2  # the long report is several chunks ...
        okapi_chunks = index.search("okapi", k=20, mode="keyword").hits
        assert sum(h.chunk.doc_id == "L" for h in okapi_chunks) >= 2
        # ... but one document, at its best chunk's rank and score.
        ranking = rank_documents(index, "okapi", 100, "keyword")
        assert [d for d, _ in ranking] == ["L", "E"]
        assert ranking[0][1] == okapi_chunks[0].score
        assert [d for d, _ in rank_documents(index, "zebra", 100, "keyword")] == ["A", "B", "C"]
        assert [d for d, _ in rank_documents(index, "walrus", 100, "keyword")] == ["F", "G"]
        assert rank_documents(index, "quokka", 100, "keyword") == []
        assert len(rank_documents(index, "alpha zebra", 2, "keyword")) == 2  # stops at n_docs
    finally:
        index.close()
    assert report.documents == 30


def test_eval_command_prints_hand_computed_figures_as_one_json_object(beir_sample, embedder, tmp_path, capsys):
    argv = ["eval", "--beir", str(beir_sample), "--mode", "keyword", "--json", "--quiet",
            "--cache", str(tmp_path / "cache")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    result = json.loads(out)  # exactly one JSON object: anything else on stdout fails here
    assert result["queries"] == 4 and result["mode"] == "keyword" and result["split"] == "test"
    for key, value in EXPECTED.items():
        assert result[key] == pytest.approx(value, abs=1e-4), key
    # The second run reuses the cached index instead of building again.
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["ndcg@10"] == result["ndcg@10"]
    assert len(list((tmp_path / "cache" / "versions").iterdir())) == 1


def test_text_output_names_each_measure(beir_sample, embedder, tmp_path, capsys):
    assert main(["eval", "--beir", str(beir_sample), "--mode", "keyword", "--quiet",
                 "--cache", str(tmp_path / "cache")]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    assert f"nDCG@10 {EXPECTED['ndcg@10']:.4f}" in line and f"MRR@10 {EXPECTED['mrr@10']:.4f}" in line


def test_cutoffs_apply_before_scoring():
    """A relevant document at rank 11 counts for Recall@100 but not for MRR@10 or nDCG@10."""
    ranking = [f"x{i}" for i in range(10)] + ["rel"]
    means, per_query = score_rankings({"q": {"rel": 1}}, {"q": ranking})
    assert means == {"ndcg@10": 0.0, "recall@100": 1.0, "mrr@10": 0.0}
    means, _ = score_rankings({"q": {"rel": 1, "other": 1}}, {"q": ["x", "rel"]}, ["mrr@10", "recall@5", "ndcg@3"])
    assert means["mrr@10"] == 0.5 and means["recall@5"] == 0.5
    assert means["ndcg@3"] == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))


def test_our_rank_order_wins_over_document_ids():
    """trec_eval breaks score ties by document id; the harness must never leave ties to it."""
    means, _ = score_rankings({"q": {"a": 1}}, {"q": ["z", "a"]}, ["mrr@10"])
    assert means["mrr@10"] == 0.5


def test_question_file_errors_name_the_line(tmp_path):
    from indexer.evaluate import EvalDataError

    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "a", "question": "x", "doc_ids": ["d"]}\n{"id": "b", "question": "y"}\n')
    with pytest.raises(EvalDataError, match=r"q.jsonl:2"):
        load_questions(path)
    path.write_text('{"id": "a", "question": "x", "doc_ids": ["d", "e"]}\n')
    queries, qrels = load_questions(path)
    assert queries == {"a": "x"} and qrels == {"a": {"d": 1, "e": 1}}


def test_missing_benchmark_folder_is_a_readable_error(tmp_path, capsys):
    assert main(["eval", "--beir", str(tmp_path / "nope"), "--mode", "keyword", "--quiet"]) == 2
    assert "missing" in capsys.readouterr().err

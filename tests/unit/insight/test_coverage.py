"""The coverage report on a topic list that mixes covered topics with ones the corpus does not treat."""
import csv
import io
import json

import pytest

from indexer.cli import main as cli
from kb.answer import answer
from kb.insight.coverage import TopicsFileError, coverage_report, load_topics
from tests.conftest import CORPUS, EVAL

TOPICS = EVAL / "coverage_topics.yaml"


@pytest.fixture(scope="module")
def report(corpus_index):
    return coverage_report(corpus_index, load_topics(TOPICS))


def test_gaps_are_only_topics_the_corpus_does_not_cover(report):
    by_verdict = {v: [t.topic.topic for t in report.topics if t.verdict == v] for v in ("covered", "thin", "gap")}
    print(f"\n{report.summary()}\n" + "\n".join(
        f"  {t.verdict:<8} {t.answer_score:.3f} expected {t.topic.expected:<8} {t.topic.topic}" for t in report.topics))
    wrong_gaps = [t.topic.topic for t in report.topics if t.verdict == "gap" and t.topic.expected != "gap"]
    missed = [t.topic.topic for t in report.topics if t.topic.expected == "covered" and t.verdict == "gap"]
    assert not wrong_gaps and not missed
    expected_gaps = [t for t in report.topics if t.topic.expected == "gap"]
    found = [t for t in expected_gaps if t.verdict == "gap"]
    assert len(found) >= 0.7 * len(expected_gaps), f"only {len(found)} of {len(expected_gaps)} probes found as gaps"
    assert by_verdict["covered"], "no topic covered at all"


def test_each_topic_cites_its_best_passage_and_counts_supporting_documents(report, corpus_index):
    cut = report.thresholds.margin
    for t in report.topics:
        chunk = corpus_index.chunk(t.best.chunk_id)
        assert chunk.text == t.best.text and chunk.doc_id == t.best.doc_id
        assert t.best.url.startswith("http") and t.best.title == corpus_index.documents[chunk.doc_id].title
        signal = answer(corpus_index, t.topic.topic)  # the one answer signal, not a score of its own
        assert t.answer_score == pytest.approx(signal.answer_score) and t.verdict == signal.verdict
        assert t.best.chunk_id == signal.top_chunk_id and t.top_dense == pytest.approx(signal.top_dense)
        assert len(set(t.supporting_documents)) == len(t.supporting_documents)
        assert set(t.supporting_documents) <= set(corpus_index.documents)
        if t.verdict == "covered":  # the best passage itself clears the cut
            assert t.answer_score >= cut and t.best.doc_id in t.supporting_documents
        else:
            assert t.supporting_documents == ()
    scores = [t.answer_score for t in report.topics]
    assert scores == sorted(scores)  # weakest first


def test_cli_json_and_csv_parse(corpus_index_dir, capsys):
    assert cli(["coverage", "--index", str(corpus_index_dir), "--topics", str(TOPICS), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    topics = load_topics(TOPICS)
    assert len(data["topics"]) == len(topics) and sum(data["counts"].values()) == len(topics)
    assert {t["verdict"] for t in data["topics"]} <= {"covered", "thin", "gap"}
    assert data["thresholds"]["calibrated"] is True
    first = data["topics"][0]
    assert first["best_passage"]["doc_id"] and isinstance(first["supporting_documents"], int)

    assert cli(["coverage", "--index", str(corpus_index_dir), "--topics", str(TOPICS), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["topic"] for r in rows] == [t["topic"] for t in data["topics"]]
    assert all(r["verdict"] == t["verdict"] and int(r["supporting_documents"]) == t["supporting_documents"]
               for r, t in zip(rows, data["topics"]))
    assert float(rows[0]["answer_score"]) <= float(rows[-1]["answer_score"])

    assert cli(["coverage", "--index", str(corpus_index_dir), "--topics", str(TOPICS)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith(f"{len(topics)} topics: ")


def test_the_content_teams_topic_file_loads():
    topics = load_topics(CORPUS / "topics.yaml")
    assert len(topics) >= 40 and {"selling-point", "entity", "probe"} <= {t.kind for t in topics}


@pytest.mark.parametrize("text, message", [
    ("topics: []\n", "non-empty list"),
    ("topics:\n  - topic: A\n  - topic: a\n", "listed twice"),
    ("topics:\n  - topic: A\n    expected: maybe\n", "expected 'maybe'"),
    ("topics:\n  - kind: entity\n", "needs a non-empty `topic:`"),
    ("topics: [unclosed\n", "not valid YAML"),
])
def test_bad_topic_files_say_what_is_wrong(tmp_path, text, message, capsys, corpus_index_dir):
    path = tmp_path / "topics.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TopicsFileError, match=message):
        load_topics(path)
    assert cli(["coverage", "--index", str(corpus_index_dir), "--topics", str(path)]) == 2
    assert message.split("'")[0] in capsys.readouterr().err

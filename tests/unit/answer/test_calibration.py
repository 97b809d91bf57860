"""The calibrated "answered" threshold: chosen from data, stored in the manifest, refreshed when the
question files change. Measured on the real corpus with the real model."""
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from indexer.cli import main as cli
from kb import Index
from kb.answer.calibration import CalibrationError, best_threshold, leave_one_out_accuracy, load_questions, thin_threshold
from kb.answer.signal import answer, thresholds
from tests.conftest import CORPUS, EVAL


def _balanced_accuracy(answered, unanswered, cut):
    return ((np.array(answered) >= cut).mean() + (np.array(unanswered) < cut).mean()) / 2


def test_threshold_separates_our_questions_from_off_topic_ones(corpus_index):
    cal = corpus_index.manifest["answer_threshold"]
    questions = load_questions(EVAL / "questions.jsonl")
    offtopic = load_questions(EVAL / "offtopic.jsonl")
    # Recomputed here through the public signal, not read back from the module's own summary.
    answered = [answer(corpus_index, q).answer_score for q in questions]
    unanswered = [answer(corpus_index, q).answer_score for q in offtopic]
    accuracy = _balanced_accuracy(answered, unanswered, cal["margin"])
    loo = leave_one_out_accuracy(answered, unanswered)
    print(f"\nanswered cut {cal['margin']}: balanced accuracy {accuracy:.3f} (leave-one-out {loo:.3f}); "
          f"{sum(a >= cal['margin'] for a in answered)}/{len(answered)} questions answered, "
          f"{sum(u < cal['margin'] for u in unanswered)}/{len(unanswered)} off-topic rejected")
    assert accuracy >= 0.9
    assert loo >= 0.9  # the honest estimate: each question judged by a cut fitted without it
    assert cal["balanced_accuracy"]["margin"] == pytest.approx(accuracy, abs=1e-3)
    assert cal["answered"]["n"] == len(questions) and cal["unanswered"]["n"] == len(offtopic)
    assert cal["thin_margin"] <= cal["margin"]
    assert cal["unanswered"]["median"] < cal["margin"] < cal["answered"]["median"]


def test_the_answer_score_separates_better_than_the_raw_top_cosine(corpus_index):
    """Why the manifest's signal is `margin`, not the plain best cosine: measured, kept true by this test."""
    ba = corpus_index.manifest["answer_threshold"]["balanced_accuracy"]
    print(f"\nbalanced accuracy: answer score {ba['margin']} (LOO {ba['margin_leave_one_out']}), "
          f"raw top cosine {ba['dense']} (LOO {ba['dense_leave_one_out']})")
    assert ba["margin"] > ba["dense"] and ba["margin_leave_one_out"] > ba["dense_leave_one_out"]


def test_thresholds_read_back_from_the_manifest(corpus_index):
    cal = corpus_index.manifest["answer_threshold"]
    cuts = thresholds(corpus_index)
    assert cuts.calibrated and cuts.margin == cal["margin"] and cuts.thin_margin == cal["thin_margin"]
    assert cuts.verdict(answer_score=cal["margin"]) == "covered"
    assert cuts.verdict(answer_score=(cal["margin"] + cal["thin_margin"]) / 2) == "thin"
    assert cuts.verdict(answer_score=cal["thin_margin"] - 0.01) == "gap"
    assert cuts.verdict() is None


def test_an_uncalibrated_index_falls_back_to_the_documented_defaults(corpus_index):
    bare = SimpleNamespace(manifest={k: v for k, v in corpus_index.manifest.items() if k != "answer_threshold"})
    cuts = thresholds(bare)
    assert not cuts.calibrated and 0 < cuts.thin_margin < cuts.margin < 1


def test_best_threshold_maximises_balanced_accuracy_hand_computed():
    # Cuts 0.35 (between 0.2 and 0.5) and 0.575 (between 0.55 and 0.6) both reach (1 + 2/3) / 2;
    # 0.35 sits in the wider empty gap (0.3 against 0.05), so it wins.
    assert best_threshold([0.5, 0.6, 0.7], [0.1, 0.2, 0.55]) == pytest.approx(0.35)
    assert best_threshold([0.6, 0.7], [0.1, 0.2]) == pytest.approx(0.4)  # perfect separation: the midpoint
    assert thin_threshold([0.1, 0.2, 0.3, 0.4, 0.5], answered_cut=0.45) == pytest.approx(0.4)  # P75
    assert thin_threshold([0.1, 0.2, 0.3, 0.4, 0.5], answered_cut=0.35) == pytest.approx(0.35)  # capped
    with pytest.raises(CalibrationError):
        best_threshold([], [0.1])


def test_question_files_are_validated(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "fine"}\n{"question": ""}\n', encoding="utf-8")
    with pytest.raises(CalibrationError, match=r"q.jsonl:2"):
        load_questions(bad)
    bad.write_text('{"question": "fine"}\nnot json\n', encoding="utf-8")
    with pytest.raises(CalibrationError, match=r"q.jsonl:2: not valid JSON"):
        load_questions(bad)
    with pytest.raises(CalibrationError, match="No question file"):
        load_questions(tmp_path / "missing.jsonl")


def test_build_recalibrates_when_only_the_question_files_change(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("civil-registration-system.md", "medcom.md", "telehealth-copd.md"):
        shutil.copy(CORPUS / name, corpus / name)
    questions, offtopic = tmp_path / "questions.jsonl", tmp_path / "offtopic.jsonl"
    lines = (EVAL / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    wanted = {"civil-registration-system", "medcom", "telehealth-copd"}
    ours = [line for line in lines if set(json.loads(line)["doc_ids"]) & wanted][:12]
    questions.write_text("\n".join(ours) + "\n", encoding="utf-8")
    offtopic.write_text("\n".join((EVAL / "offtopic.jsonl").read_text(encoding="utf-8").splitlines()[:8]) + "\n",
                        encoding="utf-8")
    index = tmp_path / "index"
    argv = ["build", "--corpus", str(corpus), "--index", str(index), "--quiet",
            "--questions", str(questions), "--offtopic", str(offtopic)]

    assert cli(argv) == 0
    first = Index.open(index).manifest
    assert first["answer_threshold"]["answered"]["n"] == len(ours)
    assert "calibrated: answered at answer score >=" in capsys.readouterr().err

    assert cli(argv) == 0  # nothing changed: a no-op
    assert "is up to date" in capsys.readouterr().out

    questions.write_text("\n".join(ours[:-1]) + "\n", encoding="utf-8")  # one question fewer
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "0 encoded" in out and "up to date" not in out  # rebuilt, every vector reused
    second = Index.open(index).manifest
    assert second["build_id"] != first["build_id"]
    assert second["answer_threshold"]["answered"]["n"] == len(ours) - 1
    assert second["answer_threshold"]["questions_sha256"] != first["answer_threshold"]["questions_sha256"]

    offtopic.unlink()  # calibration skipped, with a note; the new version carries no stale numbers
    assert cli(argv) == 0
    captured = capsys.readouterr()
    assert "note: no calibration" in captured.err and str(offtopic) in captured.err
    assert "answer_threshold" not in Index.open(index).manifest

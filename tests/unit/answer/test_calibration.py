"""The answer signal: fitted at build time on inputs written outside the team, stored in the
manifest, refreshed when the calibration file changes, and measured on a split it never saw."""
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

from indexer.cli import main as cli
from kb import Index
from kb.answer.calibration import (CalibrationError, best_threshold, load_labelled, measure_inputs, recall_cut,
                                   thin_threshold)
from kb.answer.features import FEATURES
from kb.answer.model import fit
from kb.answer.signal import (DEFAULT_CUT, DEFAULT_CUT_ENGLISH_ONLY, DEFAULT_MODEL, DEFAULT_MODEL_ENGLISH_ONLY,
                              DEFAULT_THIN_CUT_ENGLISH_ONLY, answer, answer_model, thresholds)
from tests.conftest import CORPUS, EVAL

ANSWERABILITY = EVAL / "answerability.jsonl"
# What the signal reaches on the test split (docs/COVERAGE.md); a regression guard, not the goal:
# the issue asks 0.95 per kind, which this signal does not reach.
TEST_BALANCED_ACCURACY_FLOOR = 0.8
TEST_MISSED_CEILING = 0.1


def _balanced_accuracy(scores, labels, cut):
    scores, labels = np.asarray(scores), np.asarray(labels, dtype=bool)
    return ((scores[labels] >= cut).mean() + (scores[~labels] < cut).mean()) / 2


@pytest.fixture(scope="module")
def test_split_scores(corpus_index):
    items = load_labelled(ANSWERABILITY, "test")
    return items, [answer(corpus_index, item.text).score for item in items]


def test_the_dev_figures_in_the_manifest_are_what_the_public_signal_gives(corpus_index):
    cal = corpus_index.manifest["answer_signal"]
    items = load_labelled(ANSWERABILITY, "dev")
    scores = [answer(corpus_index, i.text).score for i in items]  # recomputed, not read back
    labels = [i.answerable for i in items]
    assert cal["dev"]["all"]["balanced_accuracy"] == pytest.approx(_balanced_accuracy(scores, labels, cal["cut"]),
                                                                   abs=1e-3)
    assert cal["dev"]["all"]["answerable_missed"] <= 0.05 + 1e-9  # the cut keeps 95 % of dev answers
    assert cal["thin_cut"] <= cal["cut"] and set(cal["passage_margins"]) == {"dense", "multilingual"}


def test_the_signal_separates_inputs_it_never_saw_by_kind(corpus_index, test_split_scores):
    items, scores = test_split_scores
    cut = thresholds(corpus_index).margin
    lines = []
    for kind in ("question", "topic", "danish"):
        picked = [(s, i.answerable) for s, i in zip(scores, items) if i.kind == kind]
        s, y = zip(*picked)
        ba = _balanced_accuracy(s, y, cut)
        missed = float(np.mean([v < cut for v, a in picked if a]))
        lines.append(f"{kind}: balanced accuracy {ba:.3f}, answerable missed {missed:.3f}")
        assert ba >= TEST_BALANCED_ACCURACY_FLOOR, lines[-1]
        assert missed <= TEST_MISSED_CEILING, lines[-1]
    print("\n" + "\n".join(lines))


@pytest.mark.parametrize("text", [
    "What does a COPD telehealth tablet kit cost per patient?",
    "What is the corporate tax rate in Denmark?",
    pytest.param("nurse salaries in Danish hospitals", marks=pytest.mark.xfail(strict=True, reason=(
        "known miss (docs/COVERAGE.md): the reform page states sums of money for hospitals, so the "
        "type check sees an amount; naming the attribute was tried and lowered dev accuracy"))),
    pytest.param("pris på privat sundhedsforsikring", marks=pytest.mark.xfail(strict=True, reason=(
        "known miss (docs/COVERAGE.md): a telehealth page states what its programme saves, an amount, "
        "and e5 puts 'sundhedsforsikring' near it"))),
])
def test_hard_negatives_that_share_the_corpus_words_are_not_answered(corpus_index, text):
    signal = answer(corpus_index, text)
    assert not signal.answered, (text, signal.score, signal.reason)


def test_the_readme_question_and_danish_and_topic_inputs_are_answered(corpus_index):
    for text in ("When was the Danish personal identification number introduced?",
                 "Hvornår blev CPR-nummeret indført?", "clinical trials in Denmark", "telehealth for COPD"):
        signal = answer(corpus_index, text)
        assert signal.answered and signal.verdict == "covered", (text, signal.score, signal.reason)


def test_thresholds_and_model_read_back_from_the_manifest(corpus_index):
    cal = corpus_index.manifest["answer_signal"]
    cuts = thresholds(corpus_index)
    assert cuts.calibrated and cuts.margin == cal["cut"] and cuts.thin_margin == cal["thin_cut"]
    assert cuts.verdict(cal["cut"]) == "covered"
    assert cuts.verdict((cal["cut"] + cal["thin_cut"]) / 2) in ("thin", "covered")
    assert cuts.verdict(cal["thin_cut"] - 1e-6) == "gap" and cuts.verdict(None) is None
    assert answer_model(corpus_index).features == FEATURES


def test_an_uncalibrated_index_falls_back_to_the_documented_defaults(corpus_index):
    manifest = {k: v for k, v in corpus_index.manifest.items() if k != "answer_signal"}
    bare = SimpleNamespace(manifest=manifest, retrievers=corpus_index.retrievers)
    cuts = thresholds(bare)
    assert not cuts.calibrated and cuts.margin == DEFAULT_CUT and 0 < cuts.thin_margin <= cuts.margin < 1
    assert answer_model(bare) == DEFAULT_MODEL
    english = SimpleNamespace(manifest=manifest, retrievers={"dense": corpus_index.retrievers["dense"]})
    assert thresholds(english).margin == DEFAULT_CUT_ENGLISH_ONLY and answer_model(english) == DEFAULT_MODEL_ENGLISH_ONLY


def _close(model, fitted: dict) -> bool:
    return all(np.allclose(getattr(model, k), fitted[k], atol=6e-4) for k in ("mean", "scale", "weights", "bias"))


def test_the_documented_defaults_are_what_calibration_fits_on_the_shipped_corpus(corpus_index, tmp_path,
                                                                                 embedder, corpus_docs):
    """Both default models: the two-model one against the session index, the English-only one by
    building the corpus with MiniLM alone (KB_MULTILINGUAL=0), as `make index` would there."""
    import kb
    from kb.answer.calibration import calibration_for_build
    from kb.core.settings import Settings

    cal = corpus_index.manifest["answer_signal"]
    assert _close(DEFAULT_MODEL, cal["model"]) and cal["cut"] == pytest.approx(DEFAULT_CUT, abs=6e-4)
    settings = Settings.from_env({"KB_MULTILINGUAL": "0", "KB_INDEX_DIR": str(tmp_path / "index")})
    fingerprint, calibrate = calibration_for_build(ANSWERABILITY)
    kb.build_index(corpus_docs, settings.index_dir, embedder, settings, post_build=calibrate,
                   extra_fingerprint=fingerprint)
    english = Index.open(settings.index_dir, embedder, settings).manifest["answer_signal"]
    assert _close(DEFAULT_MODEL_ENGLISH_ONLY, english["model"])
    assert english["cut"] == pytest.approx(DEFAULT_CUT_ENGLISH_ONLY, abs=6e-4)
    assert english["thin_cut"] == pytest.approx(DEFAULT_THIN_CUT_ENGLISH_ONLY, abs=6e-4)


def test_the_model_is_deterministic_and_rises_with_the_best_passage_cosine():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(80, len(FEATURES)))
    y = x[:, 0] + 0.3 * rng.normal(size=80) > 0
    a, b = fit(x, y, FEATURES), fit(x, y, FEATURES)
    assert a == b
    low, high = x[0].copy(), x[0].copy()
    low[0], high[0] = -2.0, 2.0
    assert a.probability(high) > a.probability(low)
    with pytest.raises(ValueError):
        fit(x, np.ones(80, dtype=bool), FEATURES)


def test_cut_choosers_hand_computed():
    # Cuts 0.35 (between 0.2 and 0.5) and 0.575 (between 0.55 and 0.6) both reach (1 + 2/3) / 2;
    # 0.35 sits in the wider empty gap (0.3 against 0.05), so it wins.
    assert best_threshold([0.5, 0.6, 0.7], [0.1, 0.2, 0.55]) == pytest.approx(0.35)
    assert best_threshold([0.6, 0.7], [0.1, 0.2]) == pytest.approx(0.4)
    assert recall_cut([0.1, 0.5, 0.6, 0.7, 0.8, 0.9, 0.91, 0.92, 0.93, 0.94], 0.9) == pytest.approx(0.5)
    assert recall_cut([0.3, 0.4], 0.95) == pytest.approx(0.3)
    assert thin_threshold([0.1, 0.2, 0.3, 0.4, 0.5], answered_cut=0.45) == pytest.approx(0.3)  # the median
    assert thin_threshold([0.1, 0.2, 0.3, 0.4, 0.5], answered_cut=0.25) == pytest.approx(0.25)  # capped
    with pytest.raises(CalibrationError):
        best_threshold([], [0.1])


def test_calibration_files_are_validated(tmp_path):
    bad = tmp_path / "a.jsonl"
    good = {"id": "x", "kind": "topic", "split": "dev", "input": "fine", "answerable": True}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "input": ""}) + "\n", encoding="utf-8")
    with pytest.raises(CalibrationError, match=r"a.jsonl:2"):
        load_labelled(bad)
    bad.write_text(json.dumps(good) + "\nnot json\n", encoding="utf-8")
    with pytest.raises(CalibrationError, match=r"a.jsonl:2: not valid JSON"):
        load_labelled(bad)
    bad.write_text(json.dumps({**good, "kind": "poem"}) + "\n", encoding="utf-8")
    with pytest.raises(CalibrationError, match="kind must be one of|kind one of"):
        load_labelled(bad)
    with pytest.raises(CalibrationError, match="No calibration file"):
        load_labelled(tmp_path / "missing.jsonl")


def test_build_recalibrates_when_only_the_calibration_file_changes(tmp_path, capsys, monkeypatch, embedder):
    monkeypatch.setenv("KB_MULTILINGUAL", "0")  # the English model alone: this test is about the hook
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("civil-registration-system.md", "medcom.md", "telehealth-copd.md"):
        shutil.copy(CORPUS / name, corpus / name)
    rows = [json.loads(line) for line in ANSWERABILITY.read_text(encoding="utf-8").splitlines()]
    dev = [r for r in rows if r["split"] == "dev"]
    picked = [r for r in dev if r["answerable"]][:30] + [r for r in dev if not r["answerable"]][:10]
    data = tmp_path / "answerability.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in picked), encoding="utf-8")
    index = tmp_path / "index"
    argv = ["build", "--corpus", str(corpus), "--index", str(index), "--quiet", "--answerability", str(data)]
    settings_env = {"KB_MULTILINGUAL": "0"}

    def manifest():
        from kb.core.settings import Settings

        return Index.open(index, embedder, Settings.from_env(settings_env)).manifest

    assert cli(argv) == 0
    first = manifest()["answer_signal"]
    assert first["dev"]["all"]["inputs"] == len(picked) and "multilingual" not in first["passage_margins"]
    assert "calibrated: answered at answer score >=" in capsys.readouterr().err

    assert cli(argv) == 0  # nothing changed: a no-op
    assert "is up to date" in capsys.readouterr().out

    data.write_text("".join(json.dumps(r) + "\n" for r in picked[:-1]), encoding="utf-8")  # one input fewer
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert "0 encoded" in out and "up to date" not in out  # rebuilt, every vector reused
    second = manifest()["answer_signal"]
    assert second["dev"]["all"]["inputs"] == len(picked) - 1 and second["data_sha256"] != first["data_sha256"]

    data.unlink()  # calibration skipped, with a note; the new version carries no stale numbers
    assert cli(argv) == 0
    captured = capsys.readouterr()
    assert "note: no calibration" in captured.err and str(data) in captured.err
    assert "answer_signal" not in manifest()


def test_every_feature_is_measured_for_every_input(corpus_index):
    items = load_labelled(ANSWERABILITY, "dev")[:10]
    x, measured = measure_inputs(corpus_index, items)
    assert x.shape == (10, len(FEATURES)) and np.isfinite(x).all()
    assert all(m.top_retriever == "multilingual" for m, _ in measured)

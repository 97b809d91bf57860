"""Calibrating "answered": which answer score says the corpus answers a question, measured, not guessed.

At build time (a `post_build` hook, so the numbers travel in the manifest of the version they
were measured on) we score our own questions (tests/eval/questions.jsonl, which the corpus
answers) and the off-topic set (tests/eval/offtopic.jsonl, which it does not) with the answer
signal (kb.answer.signal), and pick:

* `margin` — the answer score that maximises balanced accuracy (Youden's J); at or above it a
  question counts as answered (a topic as `covered`);
* `thin_margin` — the 75th percentile of the off-topic scores (capped at `margin`); below it a
  question scores like the questions we know the corpus does not answer (`gap`); in between the
  corpus touches the subject but does not clearly answer it (`thin`).

The same is done for the raw top cosine (`dense`, `thin`) for callers that only hold a cosine and
no query. On our question sets the answer score separates answered from off-topic questions with
a balanced accuracy of about 0.97 (0.94 leave-one-out), the raw top cosine only about 0.90 (0.84
leave-one-out): docs/COVERAGE.md has the numbers.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kb.answer.signal import MANIFEST_KEY, answer, background_vectors, warm_queries
from kb.core.jsonl import jsonl_records

if TYPE_CHECKING:
    from kb.search.index import Index

CALIBRATION_VERSION = 1
THIN_OFFTOPIC_PERCENTILE = 75.0


class CalibrationError(ValueError):
    """A question file is missing, empty or malformed; the message says which line."""


# ---- choosing thresholds ------------------------------------------------------------------

def balanced_accuracy(answered: np.ndarray, unanswered: np.ndarray, threshold: float) -> float:
    """Mean of the two recalls: answered at or above the cut, unanswered below it."""
    return float(((answered >= threshold).mean() + (unanswered < threshold).mean()) / 2.0)


def best_threshold(answered: Sequence[float], unanswered: Sequence[float]) -> float:
    """The cut that maximises balanced accuracy (Youden's J = sensitivity + specificity - 1).

    Candidates are midpoints between neighbouring observed scores. When several cuts tie, the one
    in the widest empty gap between observed scores wins (a max-margin rule), so the cut sits as
    far as the data allow from the edge cases of both sets.
    """
    a = np.asarray(answered, dtype=np.float64)
    u = np.asarray(unanswered, dtype=np.float64)
    if len(a) == 0 or len(u) == 0:
        raise CalibrationError("Calibration needs at least one answered and one unanswered question.")
    values = np.unique(np.concatenate([a, u]))
    candidates = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2.0, [values[-1] + 1e-6]])
    gaps = np.concatenate([[0.0], values[1:] - values[:-1], [0.0]])  # width of the empty gap each cut sits in
    # Vectorised: recall of each set at every candidate cut.
    tpr = (a[None, :] >= candidates[:, None]).mean(axis=1)
    tnr = (u[None, :] < candidates[:, None]).mean(axis=1)
    ba = (tpr + tnr) / 2.0
    tied = np.flatnonzero(np.isclose(ba, ba.max(), rtol=0.0, atol=1e-12))
    return float(candidates[tied[np.argmax(gaps[tied])]])


def leave_one_out_accuracy(answered: Sequence[float], unanswered: Sequence[float]) -> float:
    """Balanced accuracy when each question is judged by a cut fitted without it (an honest estimate)."""
    a = np.asarray(answered, dtype=np.float64)
    u = np.asarray(unanswered, dtype=np.float64)
    hits_a = [a[i] >= best_threshold(np.delete(a, i), u) for i in range(len(a))]
    hits_u = [u[i] < best_threshold(a, np.delete(u, i)) for i in range(len(u))]
    return float((np.mean(hits_a) + np.mean(hits_u)) / 2.0)


def thin_threshold(unanswered: Sequence[float], answered_cut: float) -> float:
    return float(min(np.percentile(np.asarray(unanswered, dtype=np.float64), THIN_OFFTOPIC_PERCENTILE), answered_cut))


def summary(scores: Sequence[float]) -> dict:
    """n, min, quartiles, max and mean, rounded for the manifest and the docs."""
    s = np.asarray(scores, dtype=np.float64)
    q = np.percentile(s, [0, 25, 50, 75, 100])
    return {"n": int(len(s)), "min": _r(q[0]), "q1": _r(q[1]), "median": _r(q[2]), "q3": _r(q[3]),
            "max": _r(q[4]), "mean": _r(s.mean())}


# ---- question files and the build hook ----------------------------------------------------

def load_questions(path: Path) -> list[str]:
    """The `question` field of each JSON line (blank lines ignored)."""
    questions = []
    for n, item in jsonl_records(Path(path), CalibrationError, missing=f"No question file at {path}."):
        question = item.get("question") if isinstance(item, dict) else None
        if not isinstance(question, str) or not question.strip():
            raise CalibrationError(f"{path}:{n}: every line needs a non-empty \"question\".")
        questions.append(question.strip())
    if not questions:
        raise CalibrationError(f"{path} holds no questions.")
    return questions


def questions_sha256(answered_path: Path, unanswered_path: Path) -> str:
    """One hash over both files (and the method version): a change to either means recalibrate."""
    digest = hashlib.sha256(f"calibration-v{CALIBRATION_VERSION}".encode())
    for label, path in (("answered", answered_path), ("unanswered", unanswered_path)):
        digest.update(f"\x00{label}\x00".encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def calibrate(index: "Index", answered: Sequence[str], unanswered: Sequence[str], *, questions_hash: str = "") -> dict:
    """Score both question sets on `index` with every dense retriever and return the manifest
    fields (`{"answer_threshold": {...primary's cuts, "by_retriever": {name: cuts}}}`): cosines of
    different models live on different scales, so each model gets cuts of its own."""
    by_retriever = {name: _calibrate_one(index, name, answered, unanswered)
                    for name, r in index.retrievers.items() if r.kind == "dense"}
    primary = dict(by_retriever["dense"])
    primary.update(questions_sha256=questions_hash, version=CALIBRATION_VERSION, by_retriever=by_retriever)
    return {MANIFEST_KEY: primary}


def _calibrate_one(index: "Index", retriever: str, answered: Sequence[str], unanswered: Sequence[str]) -> dict:
    warm_queries(index.dense(retriever).encoder, [*answered, *unanswered])
    sig_a = [answer(index, q, retriever=retriever) for q in answered]
    sig_u = [answer(index, q, retriever=retriever) for q in unanswered]
    m_a = [s.answer_score for s in sig_a]
    m_u = [s.answer_score for s in sig_u]
    d_a = [s.background if s.top_dense is None else s.top_dense for s in sig_a]
    d_u = [s.background if s.top_dense is None else s.top_dense for s in sig_u]
    margin = _r(best_threshold(m_a, m_u))
    dense = _r(best_threshold(d_a, d_u))
    return {
        "signal": "margin",
        "model": index.dense(retriever).encoder.name,
        "margin": margin,
        "thin_margin": _r(thin_threshold(m_u, margin)),
        "dense": dense,
        "thin": _r(thin_threshold(d_u, dense)),
        "method": (
            "answer score = top passage cosine - median passage cosine; cut = max balanced accuracy "
            f"(Youden's J) of our questions vs off-topic questions; thin = off-topic P{THIN_OFFTOPIC_PERCENTILE:g}"
        ),
        "background": {"statistic": "median", "sample": int(len(background_vectors(index, retriever)))},
        "answered": summary(m_a),
        "unanswered": summary(m_u),
        "dense_scores": {"answered": summary(d_a), "unanswered": summary(d_u)},
        "balanced_accuracy": {
            "margin": _r(balanced_accuracy(np.array(m_a), np.array(m_u), margin)),
            "margin_leave_one_out": _r(leave_one_out_accuracy(m_a, m_u)),
            "dense": _r(balanced_accuracy(np.array(d_a), np.array(d_u), dense)),
            "dense_leave_one_out": _r(leave_one_out_accuracy(d_a, d_u)),
        },
    }


def calibration_for_build(answered_path: Path, unanswered_path: Path) -> tuple[str, Callable[["Index"], dict]]:
    """(fingerprint, post_build hook) for `kb.build_index`: recalibrates when either file changes.

    Pass the fingerprint as `extra_fingerprint` so an otherwise unchanged corpus is rebuilt (with
    every vector reused) when only the questions changed.
    """
    answered = load_questions(answered_path)
    unanswered = load_questions(unanswered_path)
    digest = questions_sha256(answered_path, unanswered_path)

    def post_build(index: "Index") -> dict:
        return calibrate(index, answered, unanswered, questions_hash=digest)

    return digest, post_build


def _r(x: float) -> float:
    return round(float(x), 4)

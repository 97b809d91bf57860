"""Calibrating "answered" at build time: fit the answer model and choose its cuts, measured, not guessed.

The data: inputs written by people outside the team — prospects' questions, advisors' topic
phrases, Danish questions and topics, and off-topic inputs that share the corpus's words (prices,
visas, opening hours) — each labelled by an annotator who read every page
(tests/eval/answerability.jsonl). Only the `dev` split is used here; the `test` split is for
reporting (`python -m indexer eval --answerability ...`).

At build time (a `post_build` hook, so the numbers travel in the manifest of the version they
were measured on) every dev input is measured (kb.answer.features), the logistic regression is
fitted (kb.answer.model), and:

* `cut` — the highest answer score at which at least 95 % of the answerable dev inputs are still
  answered: "No good match" should mean there is none, so a missed answer costs more than a
  borderline one shown;
* `thin_cut` — the median of the unanswerable dev inputs' scores (capped at `cut`): below it an
  input scores like most of the inputs we know the corpus does not answer;
* per dense retriever, the passage margin: the cosine above the query's background that best
  separates (Youden's J) the answerable inputs' best passages from the unanswerable ones' —
  the per-passage "answers it" cut for facets and supporting documents.

Figures measured on the dev split (balanced accuracy per kind, leave-one-out too) go into the
manifest beside the model.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kb.answer.features import FEATURES, measure
from kb.answer.model import fit
from kb.answer.signal import MANIFEST_KEY, SIGNAL_PASSAGES, background_score, warm_queries
from kb.core.jsonl import jsonl_records

if TYPE_CHECKING:
    from kb.search.index import Index

CALIBRATION_VERSION = 2
ANSWERED_RECALL = 0.95
THIN_PERCENTILE = 50.0
KINDS = ("question", "topic", "danish")


class CalibrationError(ValueError):
    """A calibration file is missing, empty or malformed; the message says which line."""


@dataclass(frozen=True)
class LabelledInput:
    id: str
    kind: str
    split: str
    text: str
    answerable: bool


def load_labelled(path: Path, split: str | None = "dev") -> list[LabelledInput]:
    """The inputs of one split (all with None) of an answerability file."""
    out = []
    for n, rec in jsonl_records(Path(path), CalibrationError, missing=f"No calibration file at {path}."):
        try:
            item = LabelledInput(str(rec["id"]), str(rec["kind"]), str(rec["split"]), str(rec["input"]).strip(),
                                 bool(rec["answerable"]))
        except (KeyError, TypeError) as exc:
            raise CalibrationError(f"{path}:{n}: needs id, kind, split, input and answerable ({exc}).") from exc
        if not item.text or item.kind not in KINDS or item.split not in ("dev", "test"):
            raise CalibrationError(f"{path}:{n}: needs a non-empty input, kind one of {KINDS}, split dev or test.")
        if split is None or item.split == split:
            out.append(item)
    if not out:
        raise CalibrationError(f"{path} holds no {split or ''} inputs.")
    return out


# ---- choosing cuts --------------------------------------------------------------------------

def balanced_accuracy(answered: np.ndarray, unanswered: np.ndarray, threshold: float) -> float:
    """Mean of the two recalls: answered at or above the cut, unanswered below it."""
    return float(((answered >= threshold).mean() + (unanswered < threshold).mean()) / 2.0)


def best_threshold(answered: Sequence[float], unanswered: Sequence[float]) -> float:
    """The cut that maximises balanced accuracy (Youden's J = sensitivity + specificity - 1).

    Candidates are midpoints between neighbouring observed scores. When several cuts tie, the one
    in the widest empty gap between observed scores wins (a max-margin rule).
    """
    a = np.asarray(answered, dtype=np.float64)
    u = np.asarray(unanswered, dtype=np.float64)
    if len(a) == 0 or len(u) == 0:
        raise CalibrationError("Calibration needs at least one answered and one unanswered input.")
    values = np.unique(np.concatenate([a, u]))
    candidates = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2.0, [values[-1] + 1e-6]])
    gaps = np.concatenate([[0.0], values[1:] - values[:-1], [0.0]])
    tpr = (a[None, :] >= candidates[:, None]).mean(axis=1)
    tnr = (u[None, :] < candidates[:, None]).mean(axis=1)
    ba = (tpr + tnr) / 2.0
    tied = np.flatnonzero(np.isclose(ba, ba.max(), rtol=0.0, atol=1e-12))
    return float(candidates[tied[np.argmax(gaps[tied])]])


def recall_cut(answered: Sequence[float], recall: float = ANSWERED_RECALL) -> float:
    """The highest cut that keeps at least `recall` of the answered scores at or above it."""
    a = np.sort(np.asarray(answered, dtype=np.float64))
    keep = int(np.ceil(recall * len(a)))
    return float(a[len(a) - keep]) if keep else float(a[-1])


def thin_threshold(unanswered: Sequence[float], answered_cut: float) -> float:
    return float(min(np.percentile(np.asarray(unanswered, dtype=np.float64), THIN_PERCENTILE), answered_cut))


def summary(scores: Sequence[float]) -> dict:
    """n, min, quartiles, max and mean, rounded for the manifest and the docs."""
    s = np.asarray(scores, dtype=np.float64)
    q = np.percentile(s, [0, 25, 50, 75, 100])
    return {"n": int(len(s)), "min": _r(q[0]), "q1": _r(q[1]), "median": _r(q[2]), "q3": _r(q[3]),
            "max": _r(q[4]), "mean": _r(s.mean())}


# ---- the build hook ---------------------------------------------------------------------------

def measure_inputs(index: "Index", items: Sequence[LabelledInput]) -> tuple[np.ndarray, list]:
    """Features of every input (one hybrid search each), and the measurements behind them."""
    warm_queries((index.dense(n).encoder for n, r in index.retrievers.items() if r.kind == "dense"),
                 [i.text for i in items])
    measured = []
    for item in items:
        response = index.search(item.text, k=SIGNAL_PASSAGES, mode="hybrid")
        measured.append((measure(index, item.text, response), response))
    return np.array([m.features.vector(FEATURES) for m, _ in measured]), measured


def calibrate(index: "Index", items: Sequence[LabelledInput], *, data_hash: str = "") -> dict:
    """Fit the answer model on `items` (the dev split) and return the manifest fields."""
    x, measured = measure_inputs(index, items)
    y = np.array([i.answerable for i in items])
    model = fit(x, y, FEATURES)
    p = model.probability(x)
    cut = _r(recall_cut(p[y]))
    thin = _r(thin_threshold(p[~y], cut))
    return {MANIFEST_KEY: {
        "model": model.as_dict(),
        "cut": cut,
        "thin_cut": thin,
        "passage_margins": _passage_margins(index, measured, y),
        "method": ("logistic regression over kb.answer.features, class-balanced, fitted on the dev split; "
                   f"cut = highest score keeping {ANSWERED_RECALL:.0%} of answerable dev inputs answered; "
                   f"thin = unanswerable P{THIN_PERCENTILE:g}"),
        "dev": _figures(items, y, p, cut, x),
        "data_sha256": data_hash,
        "version": CALIBRATION_VERSION,
    }}


def _passage_margins(index: "Index", measured: list, y: np.ndarray) -> dict[str, float]:
    """Per dense retriever: the margin over the query's background that separates best passages."""
    margins = {}
    for name, retriever in index.retrievers.items():
        if retriever.kind != "dense":
            continue
        scores = []
        for _, response in measured:
            qvec = response.vectors.get(name)
            qvec = retriever.encoder.encode_query(response.query) if qvec is None else qvec
            top = retriever.nearest(qvec, 1)
            scores.append((top[0][1] if top else 0.0) - background_score(index, qvec, name))
        s = np.array(scores)
        margins[name] = _r(best_threshold(s[y], s[~y]))
    return margins


def _figures(items: Sequence[LabelledInput], y: np.ndarray, p: np.ndarray, cut: float, x: np.ndarray) -> dict:
    """Dev figures per kind: in-sample at the chosen cut, and leave-one-out (each input judged by a
    model fitted without it, at that model's own cut)."""
    loo = np.zeros(len(y), dtype=bool)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        m = fit(x[keep], y[keep], FEATURES)
        loo[i] = m.probability(x[i]) >= recall_cut(m.probability(x[keep])[y[keep]])
    out = {}
    for kind in KINDS + ("all",):
        idx = np.array([kind in ("all", it.kind) for it in items])
        if idx.any() and y[idx].any() and (~y[idx]).any():
            out[kind] = {"inputs": int(idx.sum()),
                         "balanced_accuracy": _r(balanced_accuracy(p[idx & y], p[idx & ~y], cut)),
                         "answerable_missed": _r(float((p[idx & y] < cut).mean())),
                         "balanced_accuracy_leave_one_out": _r((loo[idx & y].mean() + (~loo[idx & ~y]).mean()) / 2)}
    out["scores"] = {"answerable": summary(p[y]), "unanswerable": summary(p[~y])}
    return out


def data_sha256(path: Path) -> str:
    """A hash of the calibration file and the method version: a change to either means recalibrate."""
    digest = hashlib.sha256(f"calibration-v{CALIBRATION_VERSION}\x00".encode())
    digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def calibration_for_build(path: Path) -> tuple[str, Callable[["Index"], dict]]:
    """(fingerprint, post_build hook) for `kb.build_index`: recalibrates when the file changes.

    Pass the fingerprint as `extra_fingerprint` so an otherwise unchanged corpus is rebuilt (with
    every vector reused) when only the calibration data changed.
    """
    items = load_labelled(path, "dev")
    digest = data_sha256(path)

    def post_build(index: "Index") -> dict:
        return calibrate(index, items, data_hash=digest)

    return digest, post_build


def _r(x: float) -> float:
    return round(float(x), 4)

"""How well the answer signal tells answerable inputs from unanswerable ones, per kind of input.

The inputs (tests/eval/answerability.jsonl) were written outside the team and labelled by an
annotator; the signal was fitted on the dev split (kb.answer.calibration), so figures on the test
split are the honest ones. Per kind (question, topic, Danish): balanced accuracy at the index's
calibrated cut, the share of answerable inputs called unanswered, and the share of unanswerable
inputs called answered.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kb.answer.calibration import KINDS, LabelledInput
from kb.answer.signal import answer, thresholds
from kb.search.index import Index


def evaluate_answerability(index: Index, items: Sequence[LabelledInput]) -> dict:
    cut = thresholds(index).margin
    scores = np.array([answer(index, item.text).score for item in items])
    labels = np.array([item.answerable for item in items])
    kinds = np.array([item.kind for item in items])
    out: dict = {"cut": cut, "inputs": len(items), "by_kind": {}}
    for kind in KINDS + ("all",):
        m = kinds == kind if kind != "all" else np.ones(len(items), dtype=bool)
        pos, neg = scores[m & labels], scores[m & ~labels]
        if len(pos) and len(neg):
            recall, specificity = float((pos >= cut).mean()), float((neg < cut).mean())
            out["by_kind"][kind] = {"answerable": int(len(pos)), "unanswerable": int(len(neg)),
                                    "balanced_accuracy": round((recall + specificity) / 2, 4),
                                    "answerable_missed": round(1 - recall, 4),
                                    "unanswerable_answered": round(1 - specificity, 4)}
    out["misjudged"] = [{"id": i.id, "kind": i.kind, "input": i.text,
                         "answerable": i.answerable, "score": round(float(s), 4)}
                        for i, s in zip(items, scores) if (s >= cut) != i.answerable]
    return out

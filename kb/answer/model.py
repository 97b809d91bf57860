"""From features to a decision: a small logistic regression, fitted at build time, stored in the manifest.

Why a learned combination: no single measurement separates answerable from unanswerable inputs
well across questions, topic phrases and Danish (kb.answer.features). Logistic regression is the
least that weighs several of them: five weights and a bias, standardised inputs, fitted by Newton's
method with an L2 penalty and class-balanced weights (the calibration sets hold about three
answerable inputs for each unanswerable one), deterministic, and readable in the manifest. numpy is
all it needs.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

L2 = 1.0
NEWTON_STEPS = 30


@dataclass(frozen=True)
class AnswerModel:
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        """P(answerable) for each row of `x` (or one vector)."""
        z = (np.atleast_2d(x) - np.array(self.mean)) / np.array(self.scale)
        p = 1.0 / (1.0 + np.exp(-(z @ np.array(self.weights) + self.bias)))
        return p if np.ndim(x) == 2 else p[0]

    def as_dict(self) -> dict:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "weights": list(self.weights), "bias": self.bias}

    @classmethod
    def from_dict(cls, value: dict) -> "AnswerModel":
        return cls(tuple(value["features"]), tuple(map(float, value["mean"])), tuple(map(float, value["scale"])),
                   tuple(map(float, value["weights"])), float(value["bias"]))


def fit(x: np.ndarray, y: Sequence[bool], features: Sequence[str], l2: float = L2) -> AnswerModel:
    """Class-balanced, L2-penalised logistic regression (Newton's method)."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    if t.min() == t.max():
        raise ValueError("fitting the answer model needs answerable and unanswerable examples")
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    class_weight = np.where(t > 0.5, 0.5 / t.mean(), 0.5 / (1.0 - t.mean()))
    penalty = l2 * np.diag(np.r_[np.ones(z.shape[1] - 1), 0.0]) / len(t)
    w = np.zeros(z.shape[1])
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        grad = z.T @ (class_weight * (p - t)) / len(t) + penalty @ w
        hess = (z.T * (class_weight * p * (1.0 - p))) @ z / len(t) + penalty
        w -= np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
    return AnswerModel(tuple(features), tuple(mean.tolist()), tuple(scale.tolist()), tuple(w[:-1].tolist()),
                       float(w[-1]))

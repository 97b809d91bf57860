"""Fusing N ranked lists into one: a normalised weighted blend, or reciprocal rank fusion.

Every candidate carries each retriever's score (kb.search.retriever), so fusion is a function
of those per-retriever score maps only:

* **blend** (default): each retriever's scores brought to [0, 1] over the candidates, weighted
  and summed. Cosines are min-max normalised (their floor depends on the query); BM25 is divided
  by the best candidate's BM25, since its natural floor is 0 (no query term matched) whereas the
  lowest BM25 among the keyword candidates is an accident of the candidate depth. Measured on
  NFCorpus dev: docs/RETRIEVAL.md.
* **rrf**: Σ weight / (k + rank) over the lists in which a candidate has a score.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from kb.core.settings import FUSIONS


def fuse(method: str, union: Sequence[int], scores: Sequence[Mapping[int, float]], weights: Sequence[float],
         normalisers: Sequence[str], rrf_k: int) -> dict[int, float]:
    """The fused score of every row of `union`; `scores[i]` holds list i's score per row."""
    if method == "rrf":
        return rrf(union, scores, weights, rrf_k)
    if method == "blend":
        return blend(union, scores, weights, normalisers)
    raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}; got {method!r}")


def blend(union: Sequence[int], scores: Sequence[Mapping[int, float]], weights: Sequence[float],
          normalisers: Sequence[str]) -> dict[int, float]:
    fused = {r: 0.0 for r in union}
    for values, weight, normaliser in zip(scores, weights, normalisers):
        if normaliser == "minmax":
            norm = _minmax({r: values[r] for r in union if r in values})
            for r in union:
                fused[r] += weight * norm.get(r, 0.0)
        elif normaliser == "max":
            top = max(values.values(), default=0.0)
            if top > 0.0:
                for r in union:
                    fused[r] += weight * values.get(r, 0.0) / top
        else:
            raise ValueError(f"unknown normaliser {normaliser!r}")
    return fused


def rrf(union: Sequence[int], scores: Sequence[Mapping[int, float]], weights: Sequence[float], k: int) -> dict[int, float]:
    """Ranks within each list follow its scores; ties keep the list's own order."""
    fused = {r: 0.0 for r in union}
    for values, weight in zip(scores, weights):
        for rank, r in enumerate(sorted(values, key=lambda x: -values[x]), start=1):
            if r in fused:
                fused[r] += weight / (k + rank)
    return fused


def _minmax(scores: Mapping[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if math.isclose(hi, lo):
        return {r: 1.0 for r in scores}
    return {r: (s - lo) / (hi - lo) for r, s in scores.items()}

"""The retriever interface: a ranked list of chunk rows for a query, and scores for given rows.

A hybrid search asks each retriever of its route for its best `depth` rows (`search`), takes
the union, and asks each retriever to score every row of the union (`score`) so that fusion
compares like with like: a candidate only one retriever found still gets the other's score.
A retriever that returned every row it can score (`Ranked.complete`) is not asked again: the
rows it left out score nothing with it. Rows are the vector ids shared by every retriever of an
index version (`kb.index.store`). One implementation per file: `dense.py`, `keyword.py`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from kb.search.query import Query


@dataclass(frozen=True)
class Ranked:
    """One retriever's answer: (row, score) best first."""

    retriever: str
    hits: list[tuple[int, float]]
    complete: bool = False  # True: every row this retriever can score is in `hits`


class Retriever(Protocol):
    name: str
    kind: str  # "dense" or "keyword"
    # How fusion brings this retriever's scores to [0, 1] over the candidates: "minmax" for
    # cosines (their floor depends on the query), "max" for BM25 (its floor is 0: no term matched).
    normaliser: str

    def search(self, query: Query, depth: int, allowed: np.ndarray | None) -> Ranked: ...

    def score(self, query: Query, rows: Sequence[int]) -> dict[int, float]: ...

    def files(self) -> list[str]: ...

    def close(self) -> None: ...

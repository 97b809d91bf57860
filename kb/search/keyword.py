"""Keyword retrieval: SQLite FTS5 BM25 over the chunk store, and the safe query it runs.

User input never reaches FTS5's query language: we keep only word tokens and quote each one, so
quotes, `*`, `NEAR`, `-`, `:` and parentheses are plain text, and a query can never raise a syntax
error. Terms are OR-ed and ranked by BM25, which is what a keyword search box is expected to do.
Choices (FTS5 over bm25s, column weights) were measured on NFCorpus dev: docs/RETRIEVAL.md.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from kb.index.store import ChunkStore
from kb.search.query import Query
from kb.search.retriever import Ranked

_TOKEN = re.compile(r"\w+", re.UNICODE)

# Function words carry no signal for BM25 but make an OR query match every row.
STOPWORDS = frozenset(
    """
    a an and are as at be been being but by can could did do does for from had has have how i if in
    into is it its me my of on or our should so than that the their them then there these they this
    those to was we were what when where which who whom why will with would you your about
    """.split()
)
# BM25 column weights for (title, section, body): a term in a title or heading says more about
# the passage than the same term in passing.
BM25_WEIGHTS = (2.0, 1.5, 1.0)


def query_terms(text: str, max_terms: int = 64) -> list[str]:
    """Lower-cased word tokens of a query, function words dropped unless nothing else is left."""
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    content = [t for t in tokens if t not in STOPWORDS]
    terms = content or tokens
    seen: dict[str, None] = {}
    for t in terms:
        seen.setdefault(t, None)
    return list(seen)[:max_terms]


def fts_match_expression(text: str) -> str | None:
    """An FTS5 MATCH expression for the query, or None when it has no searchable word."""
    terms = query_terms(text)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


class KeywordRetriever:
    """BM25 over the FTS5 table of an index version (title, section and body columns)."""

    kind = "keyword"
    normaliser = "max"

    def __init__(self, store: ChunkStore, name: str = "keyword", weights: Sequence[float] = BM25_WEIGHTS) -> None:
        self.name = name
        self.store = store
        self.weights = tuple(weights)  # benchmark scripts vary it; see docs/RETRIEVAL.md

    def files(self) -> list[str]:
        return []  # the FTS5 table lives in the chunk store's database

    def close(self) -> None:
        pass

    def search(self, query: Query, depth: int, allowed: np.ndarray | None) -> Ranked:
        """The best `depth` matching rows; `complete` when fewer matched (then no other row scores)."""
        match = fts_match_expression(query.text)
        if match is None:
            return Ranked(self.name, [], complete=True)
        rows = allowed.tolist() if allowed is not None else None
        hits = self.store.bm25(match, self.weights, depth, rows)
        return Ranked(self.name, hits, complete=len(hits) < depth)

    def score(self, query: Query, rows: Sequence[int]) -> dict[int, float]:
        """BM25 of those of `rows` that match a query term (the others have none)."""
        match = fts_match_expression(query.text)
        if match is None or not rows:
            return {}
        return dict(self.store.bm25(match, self.weights, len(rows), list(rows)))

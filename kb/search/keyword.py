"""Turning free text into a safe FTS5 query.

User input never reaches FTS5's query language: we keep only word tokens and quote each one, so
quotes, `*`, `NEAR`, `-`, `:` and parentheses are plain text, and a query can never raise a syntax
error. Terms are OR-ed and ranked by BM25, which is what a keyword search box is expected to do.
"""
from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+", re.UNICODE)

# Function words carry no signal for BM25 but make an OR query match every row.
STOPWORDS = frozenset(
    """
    a an and are as at be been being but by can could did do does for from had has have how i if in
    into is it its me my of on or our should so than that the their them then there these they this
    those to was we were what when where which who whom why will with would you your about
    """.split()
)


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

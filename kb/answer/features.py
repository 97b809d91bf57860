"""What the answer signal looks at: a handful of measurements of one query against the index.

Chosen on the dev split of tests/eval/answerability.jsonl (docs/COVERAGE.md has the figures): each
alone separates answerable from unanswerable inputs with a balanced accuracy of 0.7–0.88; together
(kb.answer.model) they do better than any one of them, on questions, topic phrases and Danish.

* `top` — the best cosine of the query with any passage, by multilingual-e5-small when the index
  has it (whatever the query's language: it separated even English inputs better than MiniLM's
  cosine, 0.85 against 0.82 for questions, 0.85 against 0.74 for topic phrases), else by MiniLM.
* `sentence` — the best cosine of the query with a single sentence of the five best passages, by
  the model that served the query (sentence vectors stored at build): an answer is usually one
  sentence, and a passage that merely shares the subject rarely has one that close.
* `coverage` — the share of the query's content words (stemmed) found in the best passage, its
  title or section: "nurse salaries in Danish hospitals" finds hospitals, not salaries.
* `type_miss` — 1 when the query asks for an amount (cost, price, fee, salary, tax, rent) or a
  duration (how long, waiting time, opening hours) and none of the three best passages states one:
  the commonest hard negatives ask for an attribute of a subject the corpus covers.
* `non_english` — the query's route is not the English one.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from kb.search.keyword import query_terms

if TYPE_CHECKING:
    from kb.search.index import Index
    from kb.search.query import Filters, SearchResponse

FEATURES = ("top", "sentence", "coverage", "type_miss", "non_english")
SENTENCE_PASSAGES = 5
TYPE_PASSAGES = 3

_ASKS_AMOUNT = re.compile(
    r"\b(?:cost|costs|price|prices|priced|fee|fees|salary|salaries|wage|wages|rent|rents|premium|premiums|tax|taxes|"
    r"vat|how much|koster|pris|priser|løn|lønnen|tjener|skat|selskabsskat|moms|husleje|gebyr|gebyrer)\b", re.I)
_ASKS_DURATION = re.compile(
    r"\b(?:how long|how quickly|how fast|waiting time|waiting list|opening hours|visiting hours|ventetid|"
    r"hvor lang tid|hvor hurtigt|åbningstider|besøgstider|besogstider)\b", re.I)
_AMOUNT = re.compile(r"(?:\bDKK\b|\bEUR\b|€|\$|\bkr\.?(?!\w)|\beuros?\b|\bkroner\b|\bbillion\b|\bmillion\b|"
                     r"\d[\d,.]*\s*(?:bn|m)\b)", re.I)
_DURATION = re.compile(r"\b\d+\s*(?:days?|weeks?|months?|years?|hours?|dage|uger|måneder|timer)\b", re.I)
_WORD = re.compile(r"\w+", re.UNICODE)
_SUFFIX = re.compile(r"(?:ing|ed|es|s|er|en|et|ene|erne|ens)$")


@dataclass(frozen=True)
class AnswerFeatures:
    top: float
    sentence: float
    coverage: float
    type_miss: float
    non_english: float

    def vector(self, names: tuple[str, ...] = FEATURES) -> np.ndarray:
        values = asdict(self)
        return np.array([values[n] for n in names], dtype=np.float64)


@dataclass(frozen=True)
class Measured:
    """The features of one query and what they were measured on."""

    features: AnswerFeatures
    top_retriever: str  # the dense retriever whose cosine is `top`
    top_row: int | None  # the passage closest to the query by that retriever
    best_row: int | None  # the first passage of the search (the one people read first)
    asks: str  # "amount", "duration" or ""


def measure(index: "Index", query: str, response: "SearchResponse", filters: "Filters | None" = None) -> Measured:
    """Measure `query` on `index`, reusing a hybrid `response` for it (its hits and vectors)."""
    top_name = "multilingual" if "multilingual" in index.retrievers else "dense"
    dense = index.dense(top_name)
    qvec = response.vectors.get(top_name)
    qvec = dense.encoder.encode_query(query) if qvec is None else qvec
    allowed = index.allowed_rows(filters) if filters else None
    nearest = dense.nearest(qvec, 1, allowed)
    hits = response.hits
    asks = "amount" if _ASKS_AMOUNT.search(query) else "duration" if _ASKS_DURATION.search(query) else ""
    shown = " ".join(h.chunk.text for h in hits[:TYPE_PASSAGES])
    stated = (_AMOUNT if asks == "amount" else _DURATION).search(shown) if asks else True
    features = AnswerFeatures(
        top=float(nearest[0][1]) if nearest else 0.0,
        sentence=_best_sentence(index, query, response),
        coverage=_coverage(index, query, hits[0]) if hits else 0.0,
        type_miss=float(bool(asks) and not stated),
        non_english=float(response.language != "en"),
    )
    return Measured(features, top_name, nearest[0][0] if nearest else None, hits[0].row if hits else None, asks)


def _best_sentence(index: "Index", query: str, response: "SearchResponse") -> float:
    rows = [h.row for h in response.hits[:SENTENCE_PASSAGES]]
    spans = index.store.spans_in(rows, sentences=True)
    if not spans:
        return 0.0
    dense = index.dense(response.dense_retriever)
    qvec = response.query_vector if response.query_vector is not None else dense.encoder.encode_query(query)
    return float((dense.span_vectors_at([s.id for s in spans]) @ qvec).max())


def stem(word: str) -> str:
    """A light suffix strip, English and Danish: enough to match "registries" with "registry"."""
    word = word.lower()
    return _SUFFIX.sub("", word) if len(word) > 4 else word


def _coverage(index: "Index", query: str, hit) -> float:
    terms = {stem(t) for t in query_terms(query)}
    if not terms:
        return 0.0
    c = hit.citation
    found = {stem(w) for w in _WORD.findall(f"{c.title} {c.section} {hit.chunk.text}")}
    return len(terms & found) / len(terms)

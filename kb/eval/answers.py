"""Passage-level evaluation on question sets written the way users write (tests/eval/outside_queries.jsonl).

Each query names the documents that answer it (an annotator read all 28 and listed every one
holding an answering passage) and, per document, a string copied verbatim from it. Two scorings
of the ranked passages:

* `doc` — the first passage that comes from an answering document;
* `answer` — the first passage that also contains that document's verbatim string, a check a
  person can repeat with a text search (stricter: a passage beside the quoted one, or one that
  words the same fact differently, does not count).

For each, per kind of query (paraphrase, Danish, keyword): hit@5 (share of queries with such a
passage among the first five results), MRR@10 (mean of 1 / its rank within ten, 0 when none) and
hit@1.

Rankings come from the product's own `Index.search`, so a figure here is what users get.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kb.core.jsonl import jsonl_records
from kb.search.index import Index
from kb.search.routing import Route

KINDS = ("paraphrase", "danish", "keyword")
SPLITS = ("dev", "test")


class AnswerSetError(ValueError):
    """A question file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class AnswerQuery:
    id: str
    kind: str
    split: str
    query: str
    answers: dict[str, str]  # document id -> verbatim string from that document


@dataclass(frozen=True)
class QueryOutcome:
    query: AnswerQuery
    rank: int | None  # of the first passage holding the verbatim answer, within the depth searched
    doc_rank: int | None  # of the first passage from an answering document
    language: str
    retrievers: tuple[str, ...]


@dataclass
class AnswerReport:
    outcomes: list[QueryOutcome]
    by_kind: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # kind -> doc|answer -> figures

    def as_dict(self) -> dict:
        return {"by_kind": self.by_kind, "queries": len(self.outcomes),
                "misses": [{"id": o.query.id, "kind": o.query.kind, "query": o.query.query, "doc_rank": o.doc_rank,
                            "answer_rank": o.rank, "language": o.language}
                           for o in self.outcomes if o.doc_rank is None or o.doc_rank > 5]}


def load_answer_queries(path: Path, split: str | None = None) -> list[AnswerQuery]:
    out: list[AnswerQuery] = []
    for n, rec in jsonl_records(Path(path), AnswerSetError):
        try:
            q = AnswerQuery(str(rec["id"]), str(rec["kind"]), str(rec["split"]), str(rec["query"]),
                            {str(d): str(a) for d, a in rec["answers"].items()})
        except (KeyError, TypeError, AttributeError) as exc:
            raise AnswerSetError(f"{path}:{n}: needs id, kind, split, query and answers ({exc}).") from exc
        if q.kind not in KINDS or q.split not in SPLITS or not q.answers:
            raise AnswerSetError(f"{path}:{n}: kind must be one of {KINDS}, split one of {SPLITS}, answers non-empty.")
        if split is None or q.split == split:
            out.append(q)
    return out


def is_answer_set(path: Path) -> bool:
    """True for a file in this format (its first record has `answers` and `kind`)."""
    for _, rec in jsonl_records(Path(path), AnswerSetError):
        return isinstance(rec, dict) and "answers" in rec and "kind" in rec
    return False


def first_answer_rank(hits: Sequence, answers: dict[str, str]) -> int | None:
    for hit in hits:
        needle = answers.get(hit.chunk.doc_id)
        if needle is not None and needle in hit.chunk.text:
            return hit.rank
    return None


def first_document_rank(hits: Sequence, answers: dict[str, str]) -> int | None:
    return next((hit.rank for hit in hits if hit.chunk.doc_id in answers), None)


def evaluate_answers(index: Index, queries: Iterable[AnswerQuery], *, k: int = 10,
                     route_for: Callable[[str], Route] | None = None, **search) -> AnswerReport:
    """Search every query and score it. `search` passes mode, fusion... on to `Index.search`;
    `route_for` overrides the product's routing per query (tuning scripts)."""
    outcomes = []
    for q in queries:
        route = route_for(q.query) if route_for is not None else None
        response = index.search(q.query, k=k, route=route, **search)
        outcomes.append(QueryOutcome(q, first_answer_rank(response.hits, q.answers),
                                     first_document_rank(response.hits, q.answers), response.language,
                                     response.retrievers))
    report = AnswerReport(outcomes)
    for kind in KINDS + ("all",):
        members = [o for o in outcomes if kind in ("all", o.query.kind)]
        if members:
            report.by_kind[kind] = {"doc": summarise([o.doc_rank for o in members]),
                                    "answer": summarise([o.rank for o in members])}
    return report


def summarise(ranks: Sequence[int | None]) -> dict[str, float]:
    n = len(ranks)
    return {"queries": n,
            "hit@1": round(sum(1 for r in ranks if r == 1) / n, 4),
            "hit@5": round(sum(1 for r in ranks if r is not None and r <= 5) / n, 4),
            "mrr@10": round(sum(1.0 / r for r in ranks if r is not None and r <= 10) / n, 4)}

"""Retrieval quality in numbers: rank documents through `Index.search`, score them with trec_eval.

Why this shape:
- The rankings come from the product's own `Index.search` (same chunks, same fusion, same
  settings), so a benchmark figure is a statement about what users get, not about a side path.
- Relevance is judged per document, the search returns chunks: a document ranks where its best
  chunk ranks and scores what its best chunk scores.
- A measure with cutoff c (nDCG@10, Recall@100, ...) is computed on the ranking the search
  gives when asked for c documents. Asking for 100 documents widens the candidate pools of a
  hybrid search, so the @10 figures are not taken from that deeper run but from the one a
  ten-result page would see.
- The arithmetic is trec_eval's (`pytrec-eval-terrier`), the implementation BEIR and MTEB use:
  graded gains, log2 discounts, and ties broken by our rank, never by document id.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pytrec_eval

from kb.search.index import Filters, Index

Qrels = Mapping[str, Mapping[str, int]]  # query id -> document id -> graded relevance (0 = not relevant)
Ranking = list[tuple[str, float]]  # (document id, best chunk score), best first

DEFAULT_MEASURES = ("ndcg@10", "recall@100", "mrr@10")

# Our measure names -> trec_eval's. MRR@c is trec_eval's reciprocal rank on a ranking cut at c.
_TREC_NAMES = {"ndcg": "ndcg_cut", "recall": "recall", "precision": "P", "mrr": "recip_rank"}
_MEASURE = re.compile(r"^(ndcg|recall|precision|mrr)@([1-9][0-9]*)$")


@dataclass(frozen=True)
class Measure:
    kind: str  # ndcg | recall | precision | mrr
    cutoff: int

    @classmethod
    def parse(cls, name: str) -> "Measure":
        m = _MEASURE.match(name)
        if not m:
            raise ValueError(f"Unknown measure {name!r}: use ndcg@N, recall@N, precision@N or mrr@N.")
        return cls(m.group(1), int(m.group(2)))

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.cutoff}"

    @property
    def trec_request(self) -> str:
        return "recip_rank" if self.kind == "mrr" else f"{_TREC_NAMES[self.kind]}.{self.cutoff}"

    @property
    def trec_result(self) -> str:
        return "recip_rank" if self.kind == "mrr" else f"{_TREC_NAMES[self.kind]}_{self.cutoff}"


@dataclass
class EvalReport:
    """Mean of each measure over the judged queries, and the per-query values behind it."""

    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    queries: int
    mode: str
    fusion: str
    depth: int
    extras: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {**{k: round(v, 4) for k, v in self.metrics.items()}, "queries": self.queries, "mode": self.mode,
                "fusion": self.fusion, "depth": self.depth, **self.extras}


def judged_queries(qrels: Qrels) -> list[str]:
    """Queries with at least one relevant document: the ones a mean is taken over."""
    return sorted(q for q, docs in qrels.items() if any(rel > 0 for rel in docs.values()))


def score_rankings(
    qrels: Qrels, rankings: Mapping[str, Sequence[str]], measures: Sequence[str] = DEFAULT_MEASURES
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query values of `measures` for ranked document-id lists.

    Every judged query counts: one missing from `rankings`, or with an empty ranking, scores 0
    (BEIR silently drops such queries from the mean, which flatters a system that returns nothing).
    Each ranking is cut at the measure's cutoff before scoring, which is what makes trec_eval's
    reciprocal rank an MRR@c.
    """
    parsed = [Measure.parse(m) for m in measures]
    queries = judged_queries(qrels)
    per_query: dict[str, dict[str, float]] = {q: {} for q in queries}
    trec_qrels = {q: {d: int(rel) for d, rel in qrels[q].items()} for q in queries}
    for cutoff in sorted({m.cutoff for m in parsed}):
        group = [m for m in parsed if m.cutoff == cutoff]
        evaluator = pytrec_eval.RelevanceEvaluator(trec_qrels, {m.trec_request for m in group})
        run = {}
        for q in queries:
            docs = list(dict.fromkeys(rankings.get(q, ())))[:cutoff]
            # Strictly decreasing scores: trec_eval sorts by score and breaks ties by document id.
            run[q] = {d: float(len(docs) - i) for i, d in enumerate(docs)}
        results = evaluator.evaluate(run)
        for q in queries:
            for m in group:
                per_query[q][m.name] = float(results.get(q, {}).get(m.trec_result, 0.0))
    means = {m.name: (sum(per_query[q][m.name] for q in queries) / len(queries) if queries else 0.0) for m in parsed}
    return means, per_query


def rank_documents(
    index: Index,
    query: str,
    n_docs: int,
    mode: str | None = None,
    *,
    depth: int | None = None,
    fusion: str | None = None,
    filters: Filters | None = None,
) -> Ranking:
    """The first `n_docs` distinct documents of a search, each at its best chunk.

    Chunks are requested in growing batches until `n_docs` distinct documents are in or the
    index has no more, because a document may hold several of the top chunks.
    """
    k = min(max(2 * n_docs, 10), max(index.chunk_count, 1))
    while True:
        response = index.search(query, k=k, mode=mode, filters=filters, depth=depth, fusion=fusion)
        best: dict[str, float] = {}
        for hit in response.hits:
            best.setdefault(hit.chunk.doc_id, hit.score)
        if len(best) >= n_docs or len(response.hits) < k or k >= index.chunk_count:
            return list(best.items())[:n_docs]
        k = min(2 * k, index.chunk_count)


def evaluate_index(
    index: Index,
    queries: Mapping[str, str],
    qrels: Qrels,
    mode: str | None = None,
    *,
    measures: Sequence[str] = DEFAULT_MEASURES,
    depth: int | None = None,
    fusion: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Run every judged query through `index.search` and score the document rankings."""
    mode = mode or index.settings.default_mode
    fusion = fusion or index.settings.fusion
    judged = [q for q in judged_queries(qrels) if q in queries]
    missing = [q for q in judged_queries(qrels) if q not in queries]
    if missing:
        raise ValueError(f"{len(missing)} judged queries have no text (first: {missing[0]!r}).")
    cutoffs = sorted({Measure.parse(m).cutoff for m in measures})
    rankings_by_cutoff: dict[int, dict[str, list[str]]] = {c: {} for c in cutoffs}
    for i, q in enumerate(judged, start=1):
        for c in cutoffs:
            ranking = rank_documents(index, queries[q], c, mode, depth=depth, fusion=fusion)
            rankings_by_cutoff[c][q] = [d for d, _ in ranking]
        if progress:
            progress(i, len(judged))
    metrics: dict[str, float] = {}
    per_query: dict[str, dict[str, float]] = {q: {} for q in judged}
    for c in cutoffs:
        names = [m for m in measures if Measure.parse(m).cutoff == c]
        means, values = score_rankings({q: qrels[q] for q in judged}, rankings_by_cutoff[c], names)
        metrics.update(means)
        for q, v in values.items():
            per_query[q].update(v)
    ordered = {m: metrics[m] for m in measures}
    return EvalReport(ordered, per_query, len(judged), mode, fusion, depth or index.settings.candidate_depth)


def qrels_from_pairs(pairs: Iterable[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    """(query id, document id, relevance) triples to the nested mapping trec_eval reads."""
    qrels: dict[str, dict[str, int]] = {}
    for q, d, rel in pairs:
        qrels.setdefault(q, {})[d] = int(rel)
    return qrels

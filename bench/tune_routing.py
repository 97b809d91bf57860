"""Choose the language routing and its blend weights on the DEV split of tests/eval/outside_queries.jsonl.

    .venv/bin/python bench/tune_routing.py --index var/index [--split dev] [--out var/bench/routing.json]

The index must have both dense retrievers (KB_MULTILINGUAL=1, the default). For every query the
three retrievers (MiniLM dense, multilingual-e5 dense, BM25) are asked once for their candidates,
every candidate is scored by all three (as `Index.search` does), and the lists are then fused
offline with the product's own `kb.search.fusion.fuse` for every weight triple on a 0.1 grid —
the same arithmetic a search with that route performs. Scoring is passage-level (kb.eval.answers):
`answer` counts a passage holding the verbatim answer, `doc` a passage of an answering document.

Printed: language detection accuracy (rule vs lingua) on the paraphrase (English) and Danish
queries, then, per detector, the best triple for the queries it calls English and for the rest
(ranked by mean MRR@10 of the two scorings), with hit@5 / MRR@10 per kind. Choose here, then report
on the test split with `python -m indexer eval --questions tests/eval/outside_queries.jsonl --split test`.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from common import ROOT, emit, machine

import kb
from kb.eval.answers import KINDS, load_answer_queries, summarise
from kb.search.fusion import fuse
from kb.search.language import ENGLISH, rule_language
from kb.search.query import Query

_lingua = None


def lingua_language(text: str) -> str:
    """lingua-language-detector over the languages our users plausibly type (ISO 639-1 code).
    Only this comparison uses it (`pip install lingua-language-detector==2.1.1`); the product
    uses the rule (docs/RETRIEVAL.md says why)."""
    global _lingua
    if _lingua is None:
        from lingua import Language, LanguageDetectorBuilder

        _lingua = LanguageDetectorBuilder.from_languages(
            Language.ENGLISH, Language.DANISH, Language.SWEDISH, Language.BOKMAL, Language.NYNORSK,
            Language.GERMAN, Language.DUTCH, Language.FRENCH, Language.SPANISH,
        ).build()
    found = _lingua.detect_language_of(text)
    return ENGLISH if found is None else found.iso_code_639_1.name.lower()


RETRIEVERS = ("dense", "multilingual", "keyword")
GRID = [t for t in itertools.product([i / 10 for i in range(11)], repeat=3) if abs(sum(t) - 1.0) < 1e-9]


def candidate_scores(index: kb.Index, text: str, depth: int) -> tuple[list[list[int]], list[dict[int, float]]]:
    """Each retriever's candidate rows, and every retriever's score of every candidate of any list."""
    q = Query(text)
    lists = [index.retrievers[name].search(q, depth, None) for name in RETRIEVERS]
    union = list(dict.fromkeys(row for ranked in lists for row, _ in ranked.hits))
    scores = [dict(r.hits) if r.complete else index.retrievers[r.retriever].score(q, union) for r in lists]
    return [[row for row, _ in r.hits] for r in lists], scores


def ranks(index: kb.Index, query, lists, scores, weights) -> tuple[int | None, int | None]:
    """(first passage holding the answer, first passage of an answering document), 1-based, within 10.
    The candidates are the union of the lists of the retrievers with a weight, as in a search."""
    used = [i for i, w in enumerate(weights) if w > 0]
    pool = list(dict.fromkeys(r for i in used for r in lists[i]))
    fused = fuse("blend", pool, [scores[i] for i in used], [weights[i] for i in used],
                 [index.retrievers[RETRIEVERS[i]].normaliser for i in used], index.settings.rrf_k)
    top = sorted(pool, key=lambda r: (-fused[r], r))[:10]
    chunks = index.store.chunks_at(top)
    answer = next((i for i, r in enumerate(top, 1) if query.answers.get(chunks[r].doc_id, "\0") in chunks[r].text), None)
    doc = next((i for i, r in enumerate(top, 1) if chunks[r].doc_id in query.answers), None)
    return answer, doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", type=Path, default=ROOT / "var" / "index")
    ap.add_argument("--questions", type=Path, default=ROOT / "tests" / "eval" / "outside_queries.jsonl")
    ap.add_argument("--split", default="dev", choices=("dev", "test"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    index = kb.Index.open(args.index)
    queries = load_answer_queries(args.questions, args.split)
    result = machine() | {"split": args.split, "queries": len(queries), "depth": index.settings.candidate_depth}
    detectors = {"rule": rule_language, "lingua": lingua_language}
    labelled = [q for q in queries if q.kind != "keyword"]
    result["detection_accuracy"] = {name: round(sum((d(q.query) == ENGLISH) == (q.kind == "paraphrase")
                                                    for q in labelled) / len(labelled), 4) for name, d in detectors.items()}
    pooled = {q.id: candidate_scores(index, q.query, index.settings.candidate_depth) for q in queries}
    table = {w: {q.id: ranks(index, q, *pooled[q.id], w) for q in queries} for w in GRID}
    for name, detect in detectors.items():
        english = {q.id for q in queries if detect(q.query) == ENGLISH}
        best = {}
        for side, members in (("english", english), ("other", {q.id for q in queries} - english)):
            if members:
                best[side] = max(GRID, key=lambda w: _objective(table[w], members))
        per_query = {q.id: table[best["english" if q.id in english else "other"]][q.id] for q in queries}
        runners_up = {side: [(dict(zip(RETRIEVERS, w)), round(_objective(table[w], members), 4))
                             for w in sorted(GRID, key=lambda w: -_objective(table[w], members))[:6]]
                      for side, members in (("english", english), ("other", {q.id for q in queries} - english))}
        result[name] = {"best_weights": {side: dict(zip(RETRIEVERS, w)) for side, w in best.items()},
                        "top_six": runners_up,
                        "english_queries": len(english), "figures": _figures(queries, per_query)}
        print(name, result[name]["best_weights"], result[name]["figures"], flush=True)
    for label, w in (("english route for all (product before)", (0.6, 0.0, 0.4)),
                     ("multilingual + BM25 for all", (0.0, 0.6, 0.4))):
        result[label] = _figures(queries, table[w])
    emit(result, args.out)


def _objective(column: dict, members: set[str]) -> float:
    return sum(_rr(column[m][0]) + _rr(column[m][1]) for m in members) / (2 * len(members))


def _rr(rank: int | None) -> float:
    return 0.0 if rank is None else 1.0 / rank


def _figures(queries, per_query) -> dict:
    out = {}
    for kind in KINDS + ("all",):
        members = [q for q in queries if kind in ("all", q.kind)]
        out[kind] = {"answer": summarise([per_query[q.id][0] for q in members]),
                     "doc": summarise([per_query[q.id][1] for q in members])}
    return out


if __name__ == "__main__":
    main()

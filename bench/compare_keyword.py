"""Keyword backends side by side on a development split: SQLite FTS5 (what the product uses) vs bm25s.

Both are scored per document (best chunk) with `kb.eval.metrics`, on the chunks of an index built by
`kb.build_index`, so the only thing that differs is the keyword engine. Each is also run on whole
documents, to separate the engine from the effect of chunking on BM25.

    .venv/bin/python bench/compare_keyword.py --beir ../shared/benchmarks/nfcorpus --split dev

bm25s and PyStemmer are not runtime dependencies; this script needs them installed
(`pip install bm25s==0.3.16 PyStemmer==3.1.0`) and says so if they are missing.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import kb
from indexer.evaluate import build_beir_index, load_beir_corpus, load_beir_qrels, load_beir_queries
from kb.core.settings import Settings
from kb.eval.metrics import judged_queries, score_rankings
from kb.search.keyword import fts_match_expression
from kb.index.store import FTS_TOKENIZER
from kb.search.keyword import BM25_WEIGHTS

MEASURES = ("ndcg@10", "mrr@10", "recall@100")


def collapse(ranked_units: list[tuple[str, float]], n: int = 100) -> list[str]:
    seen: dict[str, None] = {}
    for doc_id, _ in ranked_units:
        seen.setdefault(doc_id, None)
        if len(seen) == n:
            break
    return list(seen)


def fts5_runs(units: list[tuple[str, str, str]], queries: dict[str, str], weights=(1.0, 1.0)) -> dict[str, list[str]]:
    """units: (doc_id, title, body). The product's tokenizer and query sanitiser."""
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(title, body, tokenize = '{FTS_TOKENIZER}')")
    conn.executemany("INSERT INTO t(rowid, title, body) VALUES (?,?,?)",
                     [(i, title, body) for i, (_, title, body) in enumerate(units)])
    runs = {}
    for qid, text in queries.items():
        match = fts_match_expression(text)
        rows = [] if match is None else conn.execute(
            f"SELECT rowid, -bm25(t, {weights[0]}, {weights[1]}) s FROM t WHERE t MATCH ? ORDER BY s DESC LIMIT 400",
            (match,)).fetchall()
        runs[qid] = collapse([(units[r][0], s) for r, s in rows])
    return runs


def bm25s_runs(units: list[tuple[str, str, str]], queries: dict[str, str], method: str = "lucene") -> dict[str, list[str]]:
    try:
        import bm25s
        import Stemmer
    except ModuleNotFoundError as exc:
        raise SystemExit(f"{exc.name} is not installed: pip install bm25s==0.3.16 PyStemmer==3.1.0") from exc
    stemmer = Stemmer.Stemmer("english")
    corpus_tokens = bm25s.tokenize([f"{t} {b}" for _, t, b in units], stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25(method=method)
    retriever.index(corpus_tokens, show_progress=False)
    q_tokens = bm25s.tokenize(list(queries.values()), stopwords="en", stemmer=stemmer, return_ids=False,
                              show_progress=False)
    k = min(400, len(units))
    runs = {}
    for qid, toks in zip(queries, q_tokens):
        toks = [t for t in toks if t in retriever.vocab_dict]
        if not toks:
            runs[qid] = []
            continue
        docs, scores = retriever.retrieve([toks], k=k, show_progress=False, n_threads=1)
        runs[qid] = collapse([(units[i][0], float(s)) for i, s in zip(docs[0], scores[0]) if s > 0])
    return runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beir", type=Path, required=True)
    ap.add_argument("--split", default="dev")
    args = ap.parse_args()
    settings = Settings.from_env()
    embedder = kb.load_embedder(settings.model_path, settings.query_cache_size, settings.encode_batch_size)
    index_dir, _ = build_beir_index(args.beir, settings, embedder, progress=True)
    index = kb.Index.open(index_dir, embedder, settings)
    chunk_units = [(c.doc_id, index.documents[c.doc_id].title, c.text) for c in index.store.chunks_in_row_order()]
    doc_units = [(d.id, d.title, d.text) for d in load_beir_corpus(args.beir)]
    queries = load_beir_queries(args.beir)
    qrels = load_beir_qrels(args.beir / "qrels" / f"{args.split}.tsv")
    queries = {q: queries[q] for q in judged_queries(qrels)}

    title_w = BM25_WEIGHTS[0]
    variants = {
        f"fts5 chunks, title weight {title_w}": lambda: fts5_runs(chunk_units, queries, (title_w, 1.0)),
        "fts5 chunks, title weight 1": lambda: fts5_runs(chunk_units, queries),
        "fts5 documents": lambda: fts5_runs(doc_units, queries),
        "bm25s chunks (lucene, snowball, en stopwords)": lambda: bm25s_runs(chunk_units, queries),
        "bm25s documents (lucene, snowball, en stopwords)": lambda: bm25s_runs(doc_units, queries),
    }
    for name, run in variants.items():
        means, _ = score_rankings(qrels, run(), MEASURES)
        print(json.dumps({"variant": name, **{k: round(v, 4) for k, v in means.items()}}), flush=True)
    index.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fusion variants compared offline on a development split, from the signals the product computes.

For every query the script takes, once, the exact cosine of every chunk and the BM25 of every
matching chunk (the same FTS5 query and column weights as `Index._keyword`), then replays
candidate selection (top `depth` of each signal, union) and several fusion rules in numpy. It is a
study tool for choosing what `kb.search.index` should do; the chosen rule is then measured end to end
with `python -m indexer eval` (which goes through `Index.search`).

    .venv/bin/python bench/fusion_study.py --beir ../shared/benchmarks/nfcorpus --split dev
"""
from __future__ import annotations

import argparse
import json
import sqlite3
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

import kb
from indexer.evaluate import build_beir_index, load_beir_qrels, load_beir_queries
from kb.core.settings import ChunkSettings, Settings
from kb.eval.metrics import judged_queries, score_rankings
from kb.search.keyword import fts_match_expression
from kb.index.store import FTS_TOKENIZER
from kb.search import Query
from kb.search.keyword import BM25_WEIGHTS

MEASURES = ("ndcg@10", "mrr@10")


def minmax(x: np.ndarray) -> np.ndarray:
    if x.size == 0:
        return x
    lo, hi = x.min(), x.max()
    return np.ones_like(x) if hi - lo < 1e-12 else (x - lo) / (hi - lo)


def zscore(x: np.ndarray) -> np.ndarray:
    if x.size < 2 or x.std() < 1e-12:
        return np.zeros_like(x)
    return (x - x.mean()) / x.std()


def ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(-x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    return r


class Signals:
    """Per query: cosine for all chunks, BM25 for matching chunks, and BM25 of whole documents
    (an in-memory FTS5 table with the product's tokenizer and title weight)."""

    def __init__(self, index: kb.Index, queries: dict[str, str]) -> None:
        self.index = index
        self.doc_of = np.array([c.doc_id for c in index.store.chunks_in_row_order()])
        vectors = index.dense().vectors_at(range(index.chunk_count))
        self.dense: dict[str, np.ndarray] = {}
        self.kw: dict[str, np.ndarray] = {}
        for qid, text in queries.items():
            q = index.embedder.encode_query(text)
            self.dense[qid] = vectors @ q
            bm = np.full(len(vectors), np.nan)
            for row, s in index.keyword.search(Query(text), len(vectors), None).hits:
                bm[row] = s
            self.kw[qid] = bm
        self.doc_kw = whole_document_bm25(index, queries)


def whole_document_bm25(index: kb.Index, queries: dict[str, str]) -> dict[str, dict[str, float]]:
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE VIRTUAL TABLE d USING fts5(doc_id UNINDEXED, title, body, tokenize = '{FTS_TOKENIZER}')")
    conn.executemany("INSERT INTO d(doc_id, title, body) VALUES (?, ?, ?)",
                     [(d.id, d.title, d.text) for d in index.store.documents()])
    out: dict[str, dict[str, float]] = {}
    for qid, text in queries.items():
        match = fts_match_expression(text)
        rows = [] if match is None else conn.execute(
            f"SELECT doc_id, -bm25(d, 0, {BM25_WEIGHTS[0]}, {BM25_WEIGHTS[2]}) FROM d WHERE d MATCH ?", (match,))
        out[qid] = {doc: float(score) for doc, score in rows}
    return out


def fuse(sig: Signals, qid: str, rule: str, depth: int, w: float, rrf_k: int = 60) -> list[str]:
    dense, kw = sig.dense[qid], sig.kw[qid]
    top_dense = np.argsort(-dense, kind="stable")[:depth]
    matched = np.flatnonzero(~np.isnan(kw))
    top_kw = matched[np.argsort(-kw[matched], kind="stable")[:depth]]
    union = np.unique(np.concatenate([top_dense, top_kw]))
    d = dense[union]
    k = np.nan_to_num(kw[union], nan=0.0)
    has_kw = ~np.isnan(kw[union])
    if rule == "blend":  # the product: min-max over the union (kw over matching candidates), weighted sum
        kn = np.zeros_like(k)
        if has_kw.any():
            kn[has_kw] = minmax(k[has_kw])
        score = w * minmax(d) + (1 - w) * kn
    elif rule == "blend-kw0":  # candidates without a keyword match count as BM25 0 in the min-max
        score = w * minmax(d) + (1 - w) * minmax(k)
    elif rule == "tmm":  # BM25 over its theoretical floor: score / max (0 = no match)
        score = w * minmax(d) + (1 - w) * (k / k.max() if k.max() > 0 else k)
    elif rule == "zscore":
        score = w * zscore(d) + (1 - w) * zscore(k)
    elif rule == "rrf":
        kr = np.where(has_kw, 1.0 / (rrf_k + ranks(np.where(has_kw, k, -np.inf))), 0.0)
        score = 1.0 / (rrf_k + ranks(d)) + kr
    elif rule in ("doc-blend", "doc-tmm"):  # signals pooled per document (best chunk) before fusion
        docs = sig.doc_of[union]
        best_d: dict[str, float] = defaultdict(lambda: -np.inf)
        best_k: dict[str, float] = defaultdict(float)
        for doc, dv, kv in zip(docs, d, k):
            best_d[doc] = max(best_d[doc], dv)
            best_k[doc] = max(best_k[doc], kv)
        names = list(best_d)
        dd = minmax(np.array([best_d[n] for n in names]))
        kk = np.array([best_k[n] for n in names])
        kk = minmax(kk) if rule == "doc-blend" else (kk / kk.max() if kk.max() > 0 else kk)
        s = w * dd + (1 - w) * kk
        return [names[i] for i in np.argsort(-s, kind="stable")]
    elif rule == "doc-dense+doc-bm25":  # best chunk's cosine per document, BM25 of the whole document
        best_d: dict[str, float] = defaultdict(lambda: -np.inf)
        for doc, dv in zip(sig.doc_of, dense):
            if dv > best_d[doc]:
                best_d[doc] = dv
        doc_kw = sig.doc_kw[qid]
        top_docs_d = sorted(best_d, key=lambda n: -best_d[n])[:depth]
        top_docs_k = sorted(doc_kw, key=lambda n: -doc_kw[n])[:depth]
        names = list(dict.fromkeys(top_docs_d + top_docs_k))
        dd = minmax(np.array([best_d[n] for n in names]))
        kk = np.array([doc_kw.get(n, 0.0) for n in names])
        kk = kk / kk.max() if kk.max() > 0 else kk
        s = w * dd + (1 - w) * kk
        return [names[i] for i in np.argsort(-s, kind="stable")]
    else:
        raise ValueError(rule)
    order = union[np.argsort(-score, kind="stable")]
    return list(dict.fromkeys(sig.doc_of[order]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beir", type=Path, required=True)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--chunking", default=None, metavar="MAX:MIN:OVERLAP")
    ap.add_argument("--rules", default="blend,blend-kw0,tmm,zscore,doc-blend,doc-tmm,doc-dense+doc-bm25,rrf")
    ap.add_argument("--depths", default="50,100,200")
    args = ap.parse_args()
    settings = Settings.from_env()
    if args.chunking:
        mx, mn, ov = (int(x) for x in args.chunking.split(":"))
        settings = Settings(**{**settings.__dict__, "chunking": ChunkSettings(mx, mn, ov)})
    embedder = kb.load_embedder(settings.model_path, settings.query_cache_size, settings.encode_batch_size)
    index_dir, report = build_beir_index(args.beir, settings, embedder, progress=True)
    index = kb.Index.open(index_dir, embedder, settings)
    qrels = load_beir_qrels(args.beir / "qrels" / f"{args.split}.tsv")
    queries = load_beir_queries(args.beir)
    queries = {q: queries[q] for q in judged_queries(qrels)}
    sig = Signals(index, queries)

    def run(**kw) -> dict:
        rankings = {q: fuse(sig, q, **kw) for q in queries}
        means, _ = score_rankings(qrels, rankings, MEASURES)
        return {**kw, **{k: round(v, 4) for k, v in means.items()}}

    print(json.dumps({"chunking": settings.chunking.as_dict(), "chunks": report.chunks}))
    rules = args.rules.split(",")
    for depth in (int(d) for d in args.depths.split(",")):
        for w in (0.4, 0.5, 0.6, 0.7):
            for rule in rules:
                if rule != "rrf":
                    print(json.dumps(run(rule=rule, depth=depth, w=w)), flush=True)
        if "rrf" in rules:
            for k in (30, 60):
                print(json.dumps(run(rule="rrf", depth=depth, w=0.5, rrf_k=k)), flush=True)
    index.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

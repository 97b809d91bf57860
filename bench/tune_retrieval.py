"""Choose retrieval parameters on a development split (NFCorpus dev), never on a test split.

For each chunker setting given, the BEIR corpus is built (or found cached) with the product's
`kb.build_index`, then every configuration in the grid is scored with `kb.eval.metrics` through the
product's `Index.search`: dense and keyword alone, BM25 title weights, the min-max blend at several
dense weights, reciprocal rank fusion at several k, and several candidate depths. One line per
configuration, plus a JSON file with every figure (for docs/RETRIEVAL.md).

    .venv/bin/python bench/tune_retrieval.py --beir ../shared/benchmarks/nfcorpus --split dev \\
        --chunking 200:40:0 --chunking 240:40:0 --out var/tune-nfcorpus-dev.json

Building an index of NFCorpus costs minutes on 2 cores (the model encodes 20-40 passages/s); the
fusion grid then costs seconds per configuration because query vectors are cached.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import kb
from indexer.evaluate import (
    beir_cache_dir, build_beir_index, index_fingerprint, load_beir_corpus, load_beir_qrels, load_beir_queries,
)
from kb.core.settings import ChunkSettings, Settings
from kb.eval.metrics import evaluate_index
from kb.search.keyword import BM25_WEIGHTS

BLEND_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
RRF_KS = (10, 30, 60, 100)
DEPTHS = (50, 100, 200, 400)
TITLE_WEIGHTS = (1.0, 2.0, 3.0)


def parse_chunking(text: str) -> ChunkSettings:
    max_tokens, min_tokens, overlap = (int(x) for x in text.split(":"))
    return ChunkSettings(max_tokens=max_tokens, min_tokens=min_tokens, overlap_sentences=overlap)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beir", type=Path, required=True)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--chunking", action="append", default=None, metavar="MAX:MIN:OVERLAP",
                    help="chunker settings to try (repeatable; default: the configured ones)")
    ap.add_argument("--measures", default="ndcg@10,mrr@10,recall@100")
    ap.add_argument("--grid", choices=("full", "modes"), default="full",
                    help="'modes': dense, keyword and the configured hybrid only")
    ap.add_argument("--no-titles", action="store_true",
                    help="index the documents without their titles (to measure what titles are worth)")
    ap.add_argument("--out", type=Path, default=None, help="write every result as JSON here")
    args = ap.parse_args()
    if args.split == "test":
        ap.error("parameters are chosen on a development split; report test figures with `python -m indexer eval`")

    base = Settings.from_env()
    embedder = kb.load_embedder(base.model_path, base.query_cache_size, base.encode_batch_size)
    queries = load_beir_queries(args.beir)
    qrels = load_beir_qrels(args.beir / "qrels" / f"{args.split}.tsv")
    measures = tuple(args.measures.split(","))
    chunkings = [parse_chunking(c) for c in args.chunking] if args.chunking else [base.chunking]
    results = []
    for chunking in chunkings:
        settings = dataclasses.replace(base, chunking=chunking)
        t0 = time.perf_counter()
        if args.no_titles:
            index_dir, report = build_without_titles(args.beir, settings, embedder)
        else:
            index_dir, report = build_beir_index(args.beir, settings, embedder, progress=True)
        print(f"# chunking {chunking.as_dict()}: {report.chunks} chunks, built/checked in "
              f"{time.perf_counter() - t0:.0f} s ({index_dir})", flush=True)
        index = kb.Index.open(index_dir, embedder, settings)
        try:
            for config in _grid(settings, args.grid):
                index.settings = dataclasses.replace(settings, **config["settings"])
                index.keyword.weights = tuple(config.get("bm25_weights", BM25_WEIGHTS))
                t1 = time.perf_counter()
                r = evaluate_index(index, queries, qrels, config["mode"], measures=measures)
                row = {"chunking": chunking.as_dict(), "chunks": report.chunks, "titles": not args.no_titles,
                       "mode": config["mode"],
                       **config["settings"], "bm25_weights": list(index.keyword.weights),
                       **{k: round(v, 4) for k, v in r.metrics.items()}, "queries": r.queries,
                       "seconds": round(time.perf_counter() - t1, 1)}
                results.append(row)
                print(json.dumps(row), flush=True)
        finally:
            index.close()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    return 0


def build_without_titles(folder: Path, settings: Settings, embedder) -> tuple[Path, kb.BuildReport]:
    """The same corpus with every title blanked: neither embedded nor in the BM25 title column."""
    docs = [dataclasses.replace(d, title="") for d in load_beir_corpus(folder)]
    index_dir = beir_cache_dir(folder, embedder, settings).with_name(
        f"{folder.resolve().name}-notitle-{index_fingerprint(embedder, settings)}")
    return index_dir, kb.build_index(docs, index_dir, embedder, settings)


def _grid(settings: Settings, grid: str) -> list[dict]:
    configs: list[dict] = [{"mode": "dense", "settings": {}}]
    if grid == "modes":
        return configs + [{"mode": "keyword", "settings": {}}, {"mode": "hybrid", "settings": {}}]
    for tw in TITLE_WEIGHTS:
        configs.append({"mode": "keyword", "settings": {}, "bm25_weights": (tw, 1.5, 1.0)})
    for w in BLEND_WEIGHTS:
        configs.append({"mode": "hybrid", "settings": {"fusion": "blend", "blend_weight": w}})
    for k in RRF_KS:
        configs.append({"mode": "hybrid", "settings": {"fusion": "rrf", "rrf_k": k}})
    for depth in DEPTHS:
        configs.append({"mode": "hybrid", "settings": {"fusion": settings.fusion, "candidate_depth": depth}})
    return configs


if __name__ == "__main__":
    raise SystemExit(main())

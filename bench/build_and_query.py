"""Build time and query latency of the product on its own corpus (run by hand, not in tests).

    .venv/bin/python bench/build_and_query.py [--corpus corpus] [--questions tests/eval/questions.jsonl] [--repeat 3]

Prints one JSON object: full build seconds, no-change rebuild seconds, and per-mode query latency
(median/p95 over the question set, in-process `Index.search`, query-embedding cache cleared so each
query pays for its encoding), beside bare `model.encode` + FAISS search for the same queries.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path


import numpy as np

import kb
from indexer.loaders import load_corpus


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument("--questions", type=Path, default=Path("tests/eval/questions.jsonl"))
    ap.add_argument("--repeat", type=int, default=3, help="passes over the question set per mode")
    args = ap.parse_args()

    settings = kb.Settings.from_env()
    t = time.perf_counter()
    embedder = kb.load_embedder(settings.model_path, cache_size=0)
    model_load = time.perf_counter() - t
    docs = load_corpus(args.corpus)
    questions = [json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        full = kb.build_index(docs, Path(tmp), embedder, settings)
        again = kb.build_index(docs, Path(tmp), embedder, settings)
        forced = kb.build_index(docs, Path(tmp), embedder, settings, force=True)
        index = kb.Index.open(tmp, embedder, settings)

        def bare(q: str) -> None:
            vec = embedder.encode([q])
            index.dense().faiss_index.search(vec, 10)

        timings: dict[str, list[float]] = {"bare encode+faiss": []}
        for mode in kb.MODES:
            timings[mode] = []
        for q in questions[:5]:  # warm-up
            bare(q)
            index.search(q, k=10)
        for _ in range(args.repeat):
            for q in questions:
                t = time.perf_counter()
                bare(q)
                timings["bare encode+faiss"].append((time.perf_counter() - t) * 1000)
                for mode in kb.MODES:
                    t = time.perf_counter()
                    index.search(q, k=10, mode=mode)
                    timings[mode].append((time.perf_counter() - t) * 1000)

    bare_median = statistics.median(timings["bare encode+faiss"])
    print(json.dumps({
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "documents": full.documents, "chunks": full.chunks,
        "model_load_s": round(model_load, 2),
        "full_build_s": round(full.seconds, 2), "full_build_encoded": full.encoded,
        "nochange_rebuild_s": round(again.seconds, 3), "nochange_rebuild_encoded": again.encoded,
        "forced_rebuild_s": round(forced.seconds, 2), "forced_rebuild_encoded": forced.encoded,
        "queries": len(questions) * args.repeat,
        "latency_ms": {
            name: {"median": round(statistics.median(v), 2), "p95": round(percentile(v, 95), 2),
                   "ratio_to_bare": round(statistics.median(v) / bare_median, 2)}
            for name, v in timings.items()
        },
    }, indent=2))


if __name__ == "__main__":
    main()

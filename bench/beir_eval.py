"""Every search mode on BEIR test splits, as `python -m indexer eval` computes it, in one table.

    .venv/bin/python bench/beir_eval.py --beir ../shared/benchmarks/scifact --beir ../shared/benchmarks/nfcorpus \\
        --out var/bench/beir.json

Runs `indexer.evaluate.evaluate_beir` (the code behind `python -m indexer eval --beir`) for dense,
keyword, hybrid with the configured fusion and hybrid with the other fusion, on the configured
settings (environment variables apply, e.g. `KB_CHUNK_MAX_TOKENS=100000` for one vector per
document), and prints a Markdown table plus the machine and date for docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import kb
from indexer.evaluate import evaluate_beir
from kb.core.settings import Settings
from kb.core import FUSIONS


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beir", type=Path, action="append", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--modes", default="dense,keyword,hybrid")
    ap.add_argument("--all-fusions", action="store_true", help="hybrid with every fusion, not only the configured one")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    settings = Settings.from_env()
    embedder = kb.load_embedder(settings.model_path, settings.query_cache_size, settings.encode_batch_size)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for folder in args.beir:
        for mode in args.modes.split(","):
            fusions = (FUSIONS if args.all_fusions else (settings.fusion,)) if mode == "hybrid" else (None,)
            for fusion in fusions:
                report = evaluate_beir(folder, mode, settings, split=args.split, embedder=embedder, fusion=fusion,
                                       progress=True)
                row = report.as_dict()
                rows.append(row)
                print(json.dumps(row, sort_keys=True), flush=True)
    print(f"\nchunking {settings.chunking.as_dict()}, blend weight {settings.blend_weight}, rrf k {settings.rrf_k}, "
          f"depth {settings.candidate_depth}; {machine()}; started {started}\n")
    print("| dataset | mode | fusion | nDCG@10 | Recall@100 | MRR@10 | queries | chunks |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        fusion = r["fusion"] if r["mode"] == "hybrid" else ""
        print(f"| {r['dataset']} | {r['mode']} | {fusion} | {r['ndcg@10']:.3f} | {r['recall@100']:.3f} | "
              f"{r['mrr@10']:.3f} | {r['queries']} | {r['chunks']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine(), "started": started,
                                        "settings": {"chunking": settings.chunking.as_dict(),
                                                     "blend_weight": settings.blend_weight, "rrf_k": settings.rrf_k,
                                                     "candidate_depth": settings.candidate_depth},
                                        "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m indexer coverage`: which topics the corpus covers, treats thinly, or misses.

A thin shell over kb.insight.coverage; `indexer.cli` discovers `add_subcommand`.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from kb.core.settings import Settings, option_help


def add_subcommand(sub: argparse._SubParsersAction, settings: Settings) -> None:
    default_topics = settings.corpus_dir / "topics.yaml"
    p = sub.add_parser(
        "coverage",
        help="report which topics the corpus covers, treats thinly, or misses",
        description="Score every topic in a YAML topic list against the index: best passage and its source, "
        "answer score, verdict (covered / thin / gap, from the thresholds calibrated at build time) and how "
        "many distinct documents support the topic. Weakest topics first.",
    )
    p.add_argument("--index", type=Path, default=settings.index_dir, help=option_help(settings, "index_dir", "index folder"))
    p.add_argument("--topics", type=Path, default=default_topics, help=f"topics YAML (default {default_topics})")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--csv", action="store_true", help="print CSV (one row per topic)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import kb
    from kb.insight.coverage import TopicsFileError, coverage_report, load_topics

    try:
        topics = load_topics(args.topics)
    except TopicsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    index = kb.Index.open(args.index, settings=settings)
    try:
        report = coverage_report(index, topics)
    finally:
        index.close()
    if not report.thresholds.calibrated:
        print("note: this index carries no calibrated threshold (built without question files); "
              "verdicts use the documented defaults. Rebuild with `python -m indexer build` to calibrate.",
              file=sys.stderr)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    elif args.csv:
        sys.stdout.write(report.to_csv())
    else:
        print(format_table(report))
        print(report.summary())
    return 0


def format_table(report) -> str:
    """A plain-text table for a terminal: verdict, score, documents, topic, best source."""
    lines = [f"{'verdict':<8} {'score':>6} {'docs':>4}  topic  ->  best source"]
    for tc in report.topics:
        best = tc.best
        source = "-" if best is None else (
            f"{best.title} › {best.section}" if best.section and best.section != best.title else best.title)
        lines.append(f"{tc.verdict:<8} {tc.answer_score:>6.3f} {len(tc.supporting_documents):>4}  {tc.topic.topic}")
        lines.append(" " * 21 + "-> " + textwrap.shorten(source, width=96, placeholder=" …"))
    return "\n".join(lines)

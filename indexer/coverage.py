"""`python -m indexer coverage`: which topics the corpus covers, treats thinly, or misses.

A thin shell over kb.insight.coverage; `indexer.cli` discovers `add_subcommand`.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

from indexer.terminal import terminal_safe

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
    p.add_argument("--state", type=Path, default=settings.refresh_dir,
                   help=option_help(settings, "refresh_dir", "refresh state folder, for the sources that changed"))
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object")
    fmt.add_argument("--csv", action="store_true", help="print CSV (one row per topic)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import kb
    from kb.insight import read_source_events, staleness_report
    from kb.insight.coverage import TopicsFileError, coverage_report, load_topics

    try:
        topics = load_topics(args.topics)
    except TopicsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    index = kb.Index.open(args.index, settings=settings)
    try:
        report = coverage_report(index, topics)
        today = datetime.now(timezone.utc).date()
        stale = staleness_report(index.store.documents(), read_source_events(args.state), today,
                                 stale_after_days=settings.stale_after_days,
                                 fact_after_years=settings.stale_fact_after_years)
    finally:
        index.close()
    if not report.thresholds.calibrated:
        print("note: this index carries no calibrated threshold (built without question files); "
              "verdicts use the documented defaults. Rebuild with `python -m indexer build` to calibrate.",
              file=sys.stderr)
    if args.json:
        print(json.dumps({**report.as_dict(), "staleness": stale.as_dict()}, indent=2, ensure_ascii=False))
    elif args.csv:
        sys.stdout.write(report.to_csv())
    else:
        print(format_table(report))
        print()
        print(format_staleness(stale))
        print()
        print(report.summary())  # last: the line a script reads
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


def format_staleness(stale) -> str:
    """The stale-content lists for a terminal (text from the index, escaped for it)."""
    lines = [f"Stale content on {stale.today}", f"  pages older than {stale.stale_after_days} days "
             f"(KB_STALE_AFTER_DAYS): {len(stale.old_pages)}"]
    lines += [f"    {p.as_of or 'no date':<10}  {p.doc_id}  {p.title}" for p in stale.old_pages]
    if stale.problem or not stale.refreshed_at:
        lines.append(f"  pages whose sources changed since: {stale.problem or 'no source refresh yet (indexer refresh)'}")
    else:
        lines.append(f"  pages whose sources changed since (refresh of {stale.refreshed_at}): {len(stale.flagged)}")
        lines += [f"    {f.as_of or 'no date':<10}  {f.doc_id}: {e.url} {e.change} since {e.since}"
                  for f in stale.flagged for e in f.events]
    lines.append(f"  facts 'as of' more than {stale.fact_after_years} years ago (KB_STALE_FACT_AFTER_YEARS): "
                 f"{len(stale.dated_facts)}")
    lines += [f"    {d.year}  {d.doc_id}: " + textwrap.shorten(d.sentence, width=100, placeholder=" …")
              for d in stale.dated_facts]
    lines.append(stale.summary())
    return "\n".join(terminal_safe(line) for line in lines)

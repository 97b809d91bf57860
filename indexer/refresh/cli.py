"""`python -m indexer refresh` and `python -m indexer sources`; `indexer.cli` discovers `add_subcommand`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from indexer.terminal import terminal_safe
from kb.core.settings import PROJECT_ROOT, Settings, option_help

EXIT_FAILED, EXIT_USAGE = 1, 2


def add_subcommand(sub: argparse._SubParsersAction, settings: Settings) -> None:
    _add_refresh(sub, settings)
    _add_sources(sub, settings)


def _common(p: argparse.ArgumentParser, settings: Settings) -> None:
    p.add_argument("--sources", type=Path, default=None,
                   help="the sites file (default sources.yaml in the first corpus folder)")
    p.add_argument("--corpus", type=Path, action="append", default=None,
                   help=option_help(settings, "corpus_dir", "curated corpus folder (repeatable)"))


def _add_refresh(sub: argparse._SubParsersAction, settings: Settings) -> None:
    from indexer.crawl import CrawlSettings

    d = CrawlSettings()
    p = sub.add_parser(
        "refresh", help="crawl the sources that are due, report what changed, rebuild the index",
        description="Crawl every site of sources.yaml that is due (robots.txt, delays and caps as `crawl`), compare "
        "each page's cleaned text with the last crawl (new, changed, gone, unreachable), flag the corpus pages "
        "citing what changed, rebuild the index (only changed chunks are encoded) and write a change report "
        "(JSON and Markdown) into the state folder. Exit status 1 when a crawl failed: the index is then kept.")
    _common(p, settings)
    p.add_argument("--index", type=Path, default=settings.index_dir, help=option_help(settings, "index_dir", "index folder"))
    p.add_argument("--state", type=Path, default=settings.refresh_dir,
                   help=option_help(settings, "refresh_dir", "state and reports folder"))
    p.add_argument("--all", action="store_true", help="crawl every enabled site, due or not")
    p.add_argument("--source", action="append", default=[], metavar="ID", help="crawl this site now, due or not (repeatable)")
    p.add_argument("--keep-going", action="store_true",
                   help="rebuild even when a crawl failed (the failed site keeps its last good pages)")
    p.add_argument("--no-build", action="store_true", help="crawl and report only; leave the index alone")
    p.add_argument("--quiet", action="store_true", help="no progress lines or bars")
    p.add_argument("--answerability", type=Path, default=PROJECT_ROOT / "tests" / "eval" / "answerability.jsonl",
                   help="labelled inputs that calibrate the answer signal, as for `build`")
    p.add_argument("--delay", type=float, default=d.delay, help=f"seconds between requests to one host (default {d.delay})")
    p.add_argument("--timeout", type=float, default=d.timeout, help=f"timeout per request and name lookup (default {d.timeout})")
    p.add_argument("--max-seconds", type=float, default=d.max_seconds, help=f"time budget per site (default {d.max_seconds})")
    p.add_argument("--max-bytes", type=int, default=d.max_bytes, help=f"bytes per page at most (default {d.max_bytes})")
    p.add_argument("--allow-private", action="store_true", help="allow private and loopback addresses (local test sites)")
    p.add_argument("--allow-port", type=_port, action="append", default=[], metavar="PORT",
                   help="also crawl this port (repeatable; by default only 80 and 443)")
    p.set_defaults(func=run_refresh_command)


def _port(text: str) -> int:
    from indexer.cli import _port as port

    return port(text)


def _sources_file(args: argparse.Namespace, settings: Settings) -> tuple[Path, list[Path]]:
    folders = args.corpus or [settings.corpus_dir]
    return (args.sources or folders[0] / "sources.yaml"), folders


def run_refresh_command(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.crawl import CrawlSettings

    from .run import RefreshOptions, run_refresh
    from .state import RefreshStateError

    sources, folders = _sources_file(args, settings)
    options = RefreshOptions(
        sources_file=sources, corpus=folders, index_dir=args.index, state_dir=args.state,
        crawl=CrawlSettings(delay=args.delay, timeout=args.timeout, max_seconds=args.max_seconds,
                            max_bytes=args.max_bytes, allow_private=args.allow_private,
                            allow_ports=tuple(args.allow_port)),
        all=args.all, only=tuple(args.source), keep_going=args.keep_going, build=not args.no_build,
        answerability=args.answerability, quiet=args.quiet)
    say = (lambda _: None) if args.quiet else (lambda msg: print(terminal_safe(msg), file=sys.stderr))
    try:
        report = run_refresh(options, settings, say=say)
    except RefreshStateError as exc:
        print(terminal_safe(f"error: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    if report is None:
        print(f"nothing due in {sources}; the index is up to date (see `--all` to crawl anyway)")
        return 0
    print(terminal_safe(report.summary()))
    print(f"report: {args.state / 'reports' / 'latest.md'} (and latest.json)")
    for failure in report.failures:
        print(terminal_safe(f"failed: {failure}"), file=sys.stderr)
    return 0 if report.ok else EXIT_FAILED


def _add_sources(sub: argparse._SubParsersAction, settings: Settings) -> None:
    p = sub.add_parser(
        "sources", help="generate or check sources.yaml from the URLs the corpus pages cite",
        description="Derive sources.yaml (the sites `refresh` crawls) from every corpus page's `url` and `sources`: "
        "one entry per site, keeping the settings of entries that exist. Prints the file unless --write or --check.")
    _common(p, settings)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the file in place")
    mode.add_argument("--check", action="store_true",
                      help="exit 1 when the file misses a cited URL or differs from what --write would write")
    p.set_defaults(func=run_sources_command)


def run_sources_command(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.loaders import load_corpus
    from kb.core.fsutil import atomic_write_text

    from .sources import dump_sources, generate_sources, load_sources, missing_urls

    path, folders = _sources_file(args, settings)
    docs = load_corpus(folders)
    existing = load_sources(path) if path.is_file() else []
    text = dump_sources(generate_sources(docs, existing))
    if args.write:
        atomic_write_text(path, text)
        print(f"wrote {path}")
        return 0
    if not args.check:
        sys.stdout.write(text)
        return 0
    if not path.is_file():
        print(f"{path}: not found; create it with `python -m indexer sources --write`", file=sys.stderr)
        return EXIT_FAILED
    missing = missing_urls(existing, docs)
    for url, ids in missing.items():
        print(terminal_safe(f"{path}: no source lists {url} (cited by {', '.join(ids)})"), file=sys.stderr)
    stale = path.read_text(encoding="utf-8") != text
    if stale and not missing:
        print(f"{path}: differs from what the corpus pages cite; run `python -m indexer sources --write`",
              file=sys.stderr)
    if missing or stale:
        return EXIT_FAILED
    print(f"{path}: every URL the corpus cites is listed")
    return 0

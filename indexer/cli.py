"""`python -m indexer`: build, inspect and feed indexes. A thin shell over `kb` and the loaders.

Each subcommand prints one summary line on success; problems a person can fix (missing model,
bad front matter, a broken index) print one readable line on stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from indexer.terminal import terminal_safe
from kb.core.settings import PROJECT_ROOT, Settings, option_help

EXIT_USAGE = 2

SubcommandAdder = Callable[[argparse._SubParsersAction, Settings], None]


def _add_build(sub: argparse._SubParsersAction, settings: Settings) -> None:
    p = sub.add_parser(
        "build",
        help="build (or refresh) an index from corpus folders",
        description="Load, chunk and embed every document under the corpus folders and swap a new index "
        "version in. Unchanged chunks reuse their stored embeddings; an unchanged corpus is a no-op.",
    )
    p.add_argument("--corpus", type=Path, action="append", default=None,
                   help=option_help(settings, "corpus_dir", "corpus folder (repeatable)"))
    p.add_argument("--index", type=Path, default=settings.index_dir, help=option_help(settings, "index_dir", "index folder"))
    p.add_argument("--force", action="store_true", help="build a new version even if nothing changed")
    p.add_argument("--source-type", default="",
                   help="source_type of crawled HTML pages (a page cannot set its own; this wins over any claim)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--answerability", type=Path, default=PROJECT_ROOT / "tests" / "eval" / "answerability.jsonl",
                   help="JSONL of inputs labelled answerable or not, whose dev split calibrates the answer signal "
                   "(default tests/eval/answerability.jsonl; the documented defaults apply when it is missing)")
    p.set_defaults(func=_run_build)


def _run_build(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.building import build_documents
    from indexer.loaders import PagePolicy, load_corpus_report

    folders = args.corpus or [settings.corpus_dir]
    loaded = load_corpus_report(folders, PagePolicy(overrides={"source_type": args.source_type} if args.source_type else {}))
    docs = loaded.documents
    if not docs:  # say why before the build refuses an empty corpus
        _print_skipped(loaded.skipped, sys.stderr)
    report = build_documents(docs, args.index, settings, force=args.force, quiet=args.quiet,
                             answerability=args.answerability)
    print(report.summary())
    _print_skipped(loaded.skipped, sys.stdout)
    return 0


def _print_skipped(skipped: list, out) -> None:
    """The crawled pages a build left out, one per line: path and reason, terminal-safe."""
    if skipped:
        print(f"skipped {len(skipped)} crawled page{'s' if len(skipped) != 1 else ''} (not indexed):", file=out)
    for page in skipped:
        print(f"  {terminal_safe(str(page.path))}: {terminal_safe(page.reason)}", file=out)


def terminal_safe(text: str) -> str:
    """Text from a web page made harmless to print: control and formatting characters (escape
    sequences, carriage returns, bidi overrides) are shown as escapes such as \\x1b or \\u202e."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _add_status(sub: argparse._SubParsersAction, settings: Settings) -> None:
    p = sub.add_parser("status", help="print the manifest of the live index version, or the build history",
                       description="Print the live version's manifest (model, dimension, chunker settings, "
                       "build time, counts, checksums) as JSON; with --history, the versions the index keeps, "
                       "newest first, with what each build changed.")
    p.add_argument("--index", type=Path, default=settings.index_dir, help=option_help(settings, "index_dir", "index folder"))
    p.add_argument("--verify", action="store_true", help="also check every file against its checksum")
    p.add_argument("--history", action="store_true",
                   help="list the kept versions: counts, documents added/changed/removed, chunks encoded/reused per model")
    p.add_argument("--json", action="store_true", help="with --history: print JSON")
    p.set_defaults(func=_run_status)


def _run_status(args: argparse.Namespace, settings: Settings) -> int:
    from kb.index.layout import read_manifest, resolve_version_dir, verify_checksums

    if args.history:
        return _print_history(args.index, as_json=args.json)
    version_dir = resolve_version_dir(args.index)
    manifest = read_manifest(version_dir)
    if args.verify:
        verify_checksums(version_dir, manifest, list(manifest.get("files") or {}))
    manifest.pop("documents", None)  # per-document hashes: noise for a person
    print(json.dumps({"version_dir": str(version_dir), **manifest}, indent=2, sort_keys=True))
    return 0


def _print_history(index_dir: Path, *, as_json: bool) -> int:
    from kb.index.layout import IndexNotFoundError
    from kb.insight import build_history

    entries = build_history(index_dir)
    if not entries:
        raise IndexNotFoundError(f"No index versions in {index_dir}. Build one with `python -m indexer build`.")
    if as_json:
        print(json.dumps([e.as_dict() for e in entries], indent=2))
        return 0
    for e in entries:
        models = "; ".join(f"{name} {e.encoded[name]} encoded / {e.reused.get(name, 0)} reused" for name in e.encoded)
        print(f"{'*' if e.current else ' '} {e.build_id}  {e.built_at}  {e.documents} documents, {e.chunks} chunks; "
              f"{models or 'no dense model'}")
        if e.changes is None:
            print("    changes: not known (the version before it was pruned, or it was the first)")
        else:
            for label, ids in (("added", e.changes.added), ("changed", e.changes.changed), ("removed", e.changes.removed)):
                shown = ", ".join(ids[:8]) + (f", … ({len(ids)} in all)" if len(ids) > 8 else "")
                print(f"    {label} {len(ids)}" + (f": {shown}" if ids else ""))
    print("* = live version (CURRENT)")
    return 0


def _add_crawl(sub: argparse._SubParsersAction, settings: Settings) -> None:
    from indexer.crawl import CrawlSettings

    d = CrawlSettings()
    p = sub.add_parser(
        "crawl",
        help="fetch HTML pages breadth-first from a start URL into a folder",
        description="Fetch pages breadth-first from START_URL, following links within the allowed domains, "
        "respecting robots.txt, and save each page (raw HTML + sidecar JSON) for `build --corpus DIR`.",
    )
    p.add_argument("start_url", metavar="START_URL")
    p.add_argument("--depth", type=int, default=d.depth, help=f"link depth from the start page (default {d.depth})")
    p.add_argument("--allow-domain", action="append", default=[], metavar="D",
                   help="domain to stay within (repeatable; subdomains included; default: the start URL's host)")
    p.add_argument("--out", type=Path, required=True, help="folder to save pages into")
    p.add_argument("--max-pages", type=int, default=d.max_pages, help=f"pages to save at most (default {d.max_pages})")
    p.add_argument("--max-bytes", type=int, default=d.max_bytes, help=f"bytes per page at most (default {d.max_bytes})")
    p.add_argument("--max-seconds", type=float, default=d.max_seconds, help=f"time budget for the crawl (default {d.max_seconds})")
    p.add_argument("--delay", type=float, default=d.delay, help=f"seconds between requests to one host (default {d.delay})")
    p.add_argument("--timeout", type=float, default=d.timeout, help=f"timeout in seconds for each request and each name lookup (default {d.timeout})")
    p.add_argument("--allow-private", action="store_true",
                   help="allow private, loopback and link-local addresses (for local test sites only; "
                   "does not allow other ports)")
    p.add_argument("--allow-port", type=_port, action="append", default=[], metavar="PORT",
                   help="also crawl this port (repeatable; by default only 80 and 443)")
    p.set_defaults(func=_run_crawl)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a port number (1-65535): {text!r}")
    return port


def _run_crawl(args: argparse.Namespace, settings: Settings) -> int:
    from indexer.crawl import CrawlSettings, crawl, url_cap

    cs = CrawlSettings(
        depth=args.depth, allow_domains=tuple(args.allow_domain), max_pages=args.max_pages, max_bytes=args.max_bytes,
        max_seconds=args.max_seconds, delay=args.delay, timeout=args.timeout, allow_private=args.allow_private,
        allow_ports=tuple(args.allow_port),
    )
    report = crawl(args.start_url, args.out, cs, progress=lambda msg: print(terminal_safe(msg), file=sys.stderr))
    dropped = f", dropped {report.dropped} links past the URL cap of {url_cap(cs.max_pages)}" if report.dropped else ""
    print(terminal_safe(
        f"crawled {len(report.saved)} pages into {args.out}, skipped {len(report.skipped)}{dropped}, "
        f"{report.seconds:.1f} s"
    ))
    return 0


# Subcommands in the order `--help` lists them; other modules append theirs here.
SUBCOMMANDS: list[SubcommandAdder] = [_add_build, _add_status, _add_crawl]


def _extra_subcommands() -> list[SubcommandAdder]:
    adders: list[SubcommandAdder] = []
    for module_name in ("indexer.evaluate", "indexer.coverage", "indexer.refresh.cli"):
        try:
            module = __import__(module_name, fromlist=["add_subcommand"])
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        adders.append(module.add_subcommand)
    return adders


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexer",
        description="Build and inspect Denmark Digital Health KB indexes.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS + _extra_subcommands():
        add(sub, settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from indexer.loaders import LoaderError
    from kb import BuildError, IndexProblem, ModelNotFoundError

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    parser = build_parser(settings)
    args = parser.parse_args(argv)
    try:
        return args.func(args, settings)
    except (LoaderError, BuildError, ModelNotFoundError, IndexProblem, ValueError, FileNotFoundError) as exc:
        print(terminal_safe(f"error: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

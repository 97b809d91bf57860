"""`python -m indexer eval`: retrieval quality of a BEIR folder or of our own question set.

A BEIR folder (`corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`) is turned into
`kb.Document`s the way every loader makes them (through `kb.BlockBuilder`), built into an index
with `kb.build_index` (the product's chunker, embedder and store) under a cache folder, and
searched with `kb.Index.search`; `kb.eval.metrics` does the scoring. Nothing here is a second
retrieval path, so a figure it prints is a figure the product earns.

The cache folder is named after the dataset and everything that shapes the index (chunker
settings, model, vector index settings), so a settings change builds a fresh index beside the old
one, and an unchanged dataset is a no-op build.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from kb.build import BuildReport, settings_fingerprint  # the build's notion of what shapes an index
from kb.core.settings import PROJECT_ROOT, Settings, option_help
from kb.core.records import BlockBuilder, Document
from kb.models import Encoders
from kb.eval.answers import evaluate_answers, is_answer_set, load_answer_queries
from kb.eval.metrics import DEFAULT_MEASURES, EvalReport, Qrels, qrels_from_pairs
from kb.core.jsonl import jsonl_records
from kb.core import FUSIONS, MODES

BEIR_SOURCE_TYPE = "benchmark"
DEFAULT_CACHE_ROOT = PROJECT_ROOT / "var" / "beir-cache"
# Bump when the way BEIR records become Documents changes: it is part of the cache folder name.
BEIR_LOADER_VERSION = 1
QUESTION_MEASURES = ("ndcg@10", "recall@100", "mrr@10", "recall@5")


class EvalDataError(ValueError):
    """A benchmark or question file that cannot be read; the message names the file."""


# ---- BEIR format ---------------------------------------------------------------------------


def _jsonl(path: Path) -> Iterator[dict]:
    missing = f"{path} is missing (a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/)."
    for n, record in jsonl_records(path, EvalDataError, missing):
        if not isinstance(record, dict) or "_id" not in record:
            raise EvalDataError(f"{path}:{n}: a record needs an '_id'.")
        yield record


def beir_document(record: dict, dataset: str) -> Document | None:
    """One corpus record as a Document: the title stays the title (embedded and weighted as one),
    the text becomes one paragraph. A record with neither is dropped (nothing could find it)."""
    title = " ".join(str(record.get("title") or "").split())
    builder = BlockBuilder()
    builder.paragraph(str(record.get("text") or "") or title)
    if not builder.text:
        return None
    doc_id = str(record["_id"])
    return Document(
        id=doc_id, title=title, url=f"beir:{dataset}/{doc_id}", source_type=BEIR_SOURCE_TYPE, text=builder.text,
        blocks=tuple(builder.blocks), organisation=dataset,
    )


def load_beir_corpus(folder: Path) -> list[Document]:
    dataset = folder.resolve().name
    docs = (beir_document(r, dataset) for r in _jsonl(folder / "corpus.jsonl"))
    return [d for d in docs if d is not None]


def load_beir_queries(folder: Path) -> dict[str, str]:
    return {str(r["_id"]): str(r.get("text") or "") for r in _jsonl(folder / "queries.jsonl")}


def load_beir_qrels(path: Path) -> dict[str, dict[str, int]]:
    """`query-id  corpus-id  score` rows (tab-separated, header, any line endings)."""
    if not path.is_file():
        raise EvalDataError(f"{path} is missing.")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    if rows and rows[0] and rows[0][0].strip().lower() in {"query-id", "query_id", "qid"}:
        rows = rows[1:]
    pairs = []
    for n, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 3:
            raise EvalDataError(f"{path}:{n}: expected query-id, corpus-id and score.")
        try:
            pairs.append((row[0].strip(), row[1].strip(), int(float(row[2]))))
        except ValueError as exc:
            raise EvalDataError(f"{path}:{n}: score {row[2]!r} is not a number.") from exc
    return qrels_from_pairs(pairs)


def index_fingerprint(embedder, settings: Settings) -> str:
    """Everything that shapes a benchmark index, hashed: part of its cache folder's name.

    The build's own settings fingerprint (model, chunker, vector index settings) plus the version
    of the BEIR-to-Document mapping above.
    """
    payload = f"beir-loader-{BEIR_LOADER_VERSION}:{settings_fingerprint(Encoders.of(embedder), settings)}"
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def beir_cache_dir(folder: Path, embedder, settings: Settings, root: Path = DEFAULT_CACHE_ROOT) -> Path:
    return root / f"{folder.resolve().name}-{index_fingerprint(embedder, settings)}"


# ---- our own question set ------------------------------------------------------------------


def load_questions(path: Path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """tests/eval/questions.jsonl: {"id", "question", "doc_ids", "answer"}; each listed document
    answers the question (relevance 1)."""
    queries: dict[str, str] = {}
    pairs = []
    for n, record in jsonl_records(path, EvalDataError):
        try:
            qid, text, doc_ids = str(record["id"]), str(record["question"]), list(record["doc_ids"])
        except (KeyError, TypeError) as exc:
            raise EvalDataError(f"{path}:{n}: needs 'id', 'question' and a list 'doc_ids' ({exc}).") from exc
        if qid in queries:
            raise EvalDataError(f"{path}:{n}: question id {qid!r} repeats.")
        if not doc_ids:
            raise EvalDataError(f"{path}:{n}: question {qid!r} names no document.")
        queries[qid] = text
        pairs += [(qid, str(d), 1) for d in doc_ids]
    return queries, qrels_from_pairs(pairs)


# ---- running -------------------------------------------------------------------------------


def build_beir_index(folder: Path, settings: Settings, embedder, *, cache: Path | None = None,
                     progress: bool = False) -> tuple[Path, BuildReport]:
    """Build (or find up to date) the index of a BEIR corpus with the product's `kb.build_index`."""
    import kb

    folder = Path(folder)
    index_dir = Path(cache) if cache is not None else beir_cache_dir(folder, embedder, settings)
    docs = load_beir_corpus(folder)
    with _progress_bar("encoding", "chunk", progress) as bar:
        report = kb.build_index(docs, index_dir, embedder, settings, progress=bar, spans=False)
    return index_dir, report


def evaluate_beir(
    folder: Path,
    mode: str,
    settings: Settings,
    *,
    split: str = "test",
    cache: Path | None = None,
    embedder=None,
    fusion: str | None = None,
    depth: int | None = None,
    measures: tuple[str, ...] = DEFAULT_MEASURES,
    progress: bool = False,
) -> EvalReport:
    """Build (or reuse) the index of a BEIR folder and evaluate one split of its queries."""
    import kb
    from kb.eval.metrics import evaluate_index

    t0 = time.perf_counter()
    folder = Path(folder)
    qrels = load_beir_qrels(folder / "qrels" / f"{split}.tsv")
    queries = load_beir_queries(folder)
    embedder = embedder or kb.load_encoders(settings)
    index_dir, report = build_beir_index(folder, settings, embedder, cache=cache, progress=progress)
    build_seconds = time.perf_counter() - t0
    index = kb.Index.open(index_dir, embedder, settings)
    try:
        with _progress_bar("searching", "query", progress) as bar:
            result = evaluate_index(index, queries, qrels, mode, measures=measures, depth=depth, fusion=fusion,
                                    progress=bar)
    finally:
        index.close()
    result.extras.update({
        "dataset": folder.resolve().name, "split": split, "index": str(index_dir), "chunks": report.chunks,
        "documents": report.documents, "build_seconds": round(build_seconds, 1),
        "search_seconds": round(time.perf_counter() - t0 - build_seconds, 1),
    })
    return result


def evaluate_questions(
    questions: Path,
    index_dir: Path,
    mode: str,
    settings: Settings,
    *,
    embedder=None,
    fusion: str | None = None,
    depth: int | None = None,
    measures: tuple[str, ...] = QUESTION_MEASURES,
) -> EvalReport:
    """Evaluate our own question set against an existing index of the corpus."""
    import kb
    from kb.eval.metrics import evaluate_index

    queries, qrels = load_questions(Path(questions))
    index = kb.Index.open(index_dir, embedder, settings)
    try:
        unknown = sorted({d for docs in qrels.values() for d in docs if d not in index.documents})
        if unknown:
            raise EvalDataError(f"{questions} names documents that are not in the index: {', '.join(unknown[:5])}.")
        result = evaluate_index(index, queries, qrels, mode, measures=measures, depth=depth, fusion=fusion)
    finally:
        index.close()
    result.extras.update({"dataset": Path(questions).name, "index": str(index_dir)})
    return result


class _progress_bar:
    """A tqdm bar on stderr fed by (done, total) callbacks, or a no-op."""

    def __init__(self, desc: str, unit: str, enabled: bool) -> None:
        self.desc, self.unit, self.enabled, self.bar = desc, unit, enabled, None

    def __enter__(self):
        return self if self.enabled else None

    def __call__(self, *progress: object) -> None:
        """(done, total), or (retriever, done, total) from a build."""
        done, total = int(progress[-2]), int(progress[-1])
        if total == 0:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=self.unit, desc=self.desc, file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


# ---- command line --------------------------------------------------------------------------


def add_subcommand(sub: argparse._SubParsersAction, settings: Settings) -> None:
    p = sub.add_parser(
        "eval",
        help="measure retrieval quality (nDCG@10, Recall@100, MRR@10) on a BEIR folder or our question set",
        description="Evaluate retrieval through the product's own build and search. With --beir, build (or reuse "
        "a cached) index of a BEIR-format folder and score one split of its queries; with --questions, score "
        "a question file (id, question, doc_ids) against an existing index.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--beir", type=Path, metavar="DIR", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    source.add_argument("--questions", type=Path, metavar="FILE", help="question set, e.g. tests/eval/questions.jsonl")
    source.add_argument("--answerability", type=Path, metavar="FILE",
                        help="inputs labelled answerable or not (tests/eval/answerability.jsonl): how well the answer "
                        "signal tells them apart, per kind, on --split")
    p.add_argument("--index", type=Path, default=settings.index_dir,
                   help=option_help(settings, "index_dir", "index to evaluate with --questions"))
    p.add_argument("--mode", choices=MODES, default=settings.default_mode,
                   help=option_help(settings, "default_mode", "search mode"))
    p.add_argument("--split", choices=("test", "dev"), default="test", help="BEIR qrels split, or the split of a question set with one (tests/eval/outside_queries.jsonl); default test")
    p.add_argument("--cache", type=Path, default=None,
                   help=f"index folder for the BEIR corpus (default {DEFAULT_CACHE_ROOT}/<dataset>-<settings hash>)")
    p.add_argument("--fusion", choices=FUSIONS, default=None, help=option_help(settings, "fusion", "hybrid fusion"))
    p.add_argument("--depth", type=int, default=None,
                   help=option_help(settings, "candidate_depth", "candidates per retriever"))
    p.add_argument("--multilingual", action="store_true",
                   help="with --beir: also index the benchmark with multilingual-e5-small and answer English queries "
                   "with all three lists, as a multilingual index does (off by default: the BEIR sets are English, "
                   "and e5 encodes about 1.4 documents/s here; docs/RETRIEVAL.md)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a line of text")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace, settings: Settings) -> int:
    if args.depth is not None and args.depth < 1:
        raise ValueError("--depth must be at least 1")
    if args.answerability is not None:
        return _run_answerability_eval(args, settings)
    if args.questions is not None and is_answer_set(args.questions):
        return _run_answer_eval(args, settings)
    if args.beir is not None:
        report = evaluate_beir(args.beir, args.mode, settings.replace(multilingual=args.multilingual), split=args.split,
                               cache=args.cache, fusion=args.fusion, depth=args.depth, progress=not args.quiet)
    else:
        report = evaluate_questions(args.questions, args.index, args.mode, settings, fusion=args.fusion,
                                    depth=args.depth)
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
    else:
        figures = "  ".join(f"{_label(k)} {v:.4f}" for k, v in report.metrics.items())
        where = report.extras.get("dataset", "")
        split = f" {report.extras['split']}" if "split" in report.extras else ""
        fusion = f", fusion {report.fusion}" if report.mode == "hybrid" else ""
        print(f"{where}{split}: {report.queries} queries, mode {report.mode}{fusion}: {figures}")
    return 0


def _on_index(index_dir: Path, settings: Settings, run):
    """`run(index)` on the live version of `index_dir`, closed afterwards."""
    import kb

    index = kb.Index.open(index_dir, settings=settings)
    try:
        return run(index)
    finally:
        index.close()


def _run_answer_eval(args: argparse.Namespace, settings: Settings) -> int:
    """A set written the way users write: passage-level figures per kind of query (kb.eval.answers)."""
    queries = load_answer_queries(args.questions, args.split)
    report = _on_index(args.index, settings, lambda index: evaluate_answers(
        index, queries, mode=args.mode, fusion=args.fusion, depth=args.depth))
    if args.json:
        print(json.dumps({**report.as_dict(), "dataset": args.questions.name, "split": args.split, "mode": args.mode},
                         sort_keys=True))
        return 0
    print(f"{args.questions.name} {args.split}: {len(queries)} queries, mode {args.mode}")
    for kind, scorings in report.by_kind.items():
        figures = "   ".join(f"{scoring}: hit@1 {f['hit@1']:.3f} hit@5 {f['hit@5']:.3f} MRR@10 {f['mrr@10']:.3f}"
                             for scoring, f in scorings.items())
        print(f"  {kind:<10} ({scorings['doc']['queries']:>3})  {figures}")
    return 0


def _run_answerability_eval(args: argparse.Namespace, settings: Settings) -> int:
    from kb.answer import load_labelled
    from kb.eval.answerability import evaluate_answerability

    items = load_labelled(args.answerability, args.split)
    result = _on_index(args.index, settings, lambda index: evaluate_answerability(index, items))
    if args.json:
        print(json.dumps({**result, "dataset": args.answerability.name, "split": args.split}, sort_keys=True))
        return 0
    print(f"{args.answerability.name} {args.split}: {result['inputs']} inputs, cut {result['cut']}")
    for kind, f in result["by_kind"].items():
        print(f"  {kind:<9} ({f['answerable']:>3} / {f['unanswerable']:>3})  balanced accuracy {f['balanced_accuracy']:.3f}"
              f"  answerable missed {f['answerable_missed']:.3f}  unanswerable answered {f['unanswerable_answered']:.3f}")
    return 0


def _label(measure: str) -> str:
    kind, cutoff = measure.split("@")
    return {"ndcg": "nDCG", "recall": "Recall", "mrr": "MRR", "precision": "P"}[kind] + "@" + cutoff

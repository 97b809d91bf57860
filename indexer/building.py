"""One way to build an index from documents, shared by `indexer build` and `indexer refresh`:
progress bars per model, the answer signal's calibration from the labelled inputs, one summary line.

Both commands must build the same way — the same models, the same calibration, so the same
fingerprints — or a refresh after a build would rebuild for nothing (and the other way round).
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import kb
from kb.core.records import Document
from kb.core.settings import Settings
from kb.models import Encoder, Encoders


def build_documents(docs: Sequence[Document], index_dir: Path, settings: Settings, *,
                    encoders: Encoder | Mapping[str, Encoder] | None = None, force: bool = False, quiet: bool = False,
                    answerability: Path | None = None) -> kb.BuildReport:
    """Build (or find up to date) the index of `docs`; the answer signal is calibrated when the
    `answerability` file (tests/eval/answerability.jsonl) exists, with a note when it does not."""
    from tqdm import tqdm

    from kb.answer import calibration_for_build

    encoders = Encoders.of(kb.load_encoders(settings) if encoders is None else encoders)
    bars: dict[str, tqdm] = {}

    def progress(retriever: str, done: int, total: int) -> None:
        if quiet or total == 0:
            return
        if retriever not in bars:
            model = encoders[retriever].name.rsplit("/", 1)[-1]
            bars[retriever] = tqdm(total=total, unit="text", desc=f"encoding {model}", file=sys.stderr)
        bars[retriever].update(done - bars[retriever].n)

    fingerprint, post_build = "", None
    if answerability is not None and not answerability.is_file():
        print(f"note: no calibration of the answer signal ({answerability} not found); "
              f"coverage and no-match use the documented defaults", file=sys.stderr)
    elif answerability is not None:
        fingerprint, post_build = calibration_for_build(answerability)
    try:
        report = kb.build_index(docs, index_dir, encoders, settings, force=force, progress=progress,
                                post_build=post_build, extra_fingerprint=fingerprint)
    finally:
        for bar in bars.values():
            bar.close()
    if post_build is not None and not report.unchanged:
        _print_calibration(index_dir, report.build_id)
    return report


def _print_calibration(index_dir: Path, build_id: str) -> None:
    from kb.index.layout import IndexLayout, read_manifest

    cal = read_manifest(IndexLayout(index_dir).version_dir(build_id)).get("answer_signal", {})
    dev = cal.get("dev", {}).get("all", {})
    print(f"calibrated: answered at answer score >= {cal.get('cut')}, thin >= {cal.get('thin_cut')}; dev balanced "
          f"accuracy {dev.get('balanced_accuracy')} (leave-one-out {dev.get('balanced_accuracy_leave_one_out')})",
          file=sys.stderr)

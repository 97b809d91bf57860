"""Reading JSON Lines files (question sets, BEIR corpora) with errors that name the file and line.

One reader so every JSONL input fails the same way: a person fixing a data file is told which
line is wrong, in the error type of the caller (`EvalDataError`, `CalibrationError`, ...).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


def jsonl_records(path: Path, error: type[Exception], missing: str | None = None) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) for each non-blank line of `path`.

    Raises `error` with `missing` (default "<path> is missing.") when there is no such file, and
    "<path>:<line>: not valid JSON (...)" for a line that does not parse.
    """
    path = Path(path)
    if not path.is_file():
        raise error(missing or f"{path} is missing.")
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except ValueError as exc:
                raise error(f"{path}:{n}: not valid JSON ({exc}).") from exc

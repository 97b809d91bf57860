"""CSV for people who open it in a spreadsheet: a header row, then rows, formula cells defused.

Query text comes from the public search box, so a cell such as `=HYPERLINK(...)` must not become a
live formula in the content team's spreadsheet (OWASP "CSV injection"): text cells that start with
`=`, `+`, `-`, `@`, tab or carriage return get a leading apostrophe. Numbers are written as numbers.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()

"""CSV for people who open it in a spreadsheet: a header row, then rows, formula cells defused.

Query text comes from the public search box, so a cell such as `=HYPERLINK(...)` must not become a
live formula in the content team's spreadsheet (OWASP "CSV injection"). Two things make that hold
for a Danish Excel too, whose list separator is `;` and which may split a cell there:

- every cell is quoted (csv.QUOTE_ALL), so no separator inside a cell is read as a cell boundary
  by a program that honours quotes;
- for one that does not, every piece of a text cell that would start a cell if the text were split
  at `;`, `,`, tab or a line break is defused as OWASP advises for the first character: when it
  starts (after any spaces) with `=`, `+`, `-`, `@`, tab or carriage return, an apostrophe goes in
  front of that character. `registry;=1+1` is written `"registry;'=1+1"`.

Numbers (int and float, e.g. a negative score) are written as numbers, never prefixed; a text that
merely looks like a formula is text and is defused.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

# A segment start (the cell's start, or just after a separator) followed by spaces and a formula sign.
_FORMULA_SEGMENT = re.compile(r"(^|[;,\t\r\n])( *)(?=[=+\-@\t\r])")


def safe_cell(value: object) -> object:
    """`value` as a spreadsheet should see it: text defused segment by segment, numbers untouched."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _FORMULA_SEGMENT.sub(r"\1\2'", value)
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue()

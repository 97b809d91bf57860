"""Personal data people type into a search box, replaced by a marker before a question is stored.

People paste what they have at hand: "is 010203-1234 in the registry", "mail me at a@b.dk",
"call 12 34 56 78". The query log keeps what was asked, never who asked, so these are replaced
with `[cpr]`, `[email]` and `[phone]` before a row is written (and in rows migrated from older
log files). The rules are narrow on purpose, so ordinary numbers in questions survive:

* CPR numbers: DDMMYY-NNNN or DDMMYYNNNN whose first six digits are a real day of the year
  (29 February is accepted for any year; the century is not known). "1234567890" (month 34) and
  "the 10-digit number" are left alone.
* E-mail addresses: local part, `@`, a domain with at least one dot.
* Phone numbers: `+` or `00` followed by 8 to 15 digits (international, `+45` included, with
  spaces, dots, hyphens or brackets between groups); and Danish 8-digit numbers, in pairs
  (`12 34 56 78`, `12-34-56-78`, `12.34.56.78`), in fours (`1234 5678`) or together beginning
  2-9 as Danish numbers do (`23456789`). Not a phone number: 8 digits that form a date
  (`20240101`), two years with a space (`2013 2020`), a range (`2013-2020`), a large round
  number (`25000000`), any number with fewer or more digits.
"""
from __future__ import annotations

import re
from datetime import date

CPR, EMAIL, PHONE = "[cpr]", "[email]", "[phone]"

_CPR = re.compile(r"(?<![\d+])(\d{2})(\d{2})(\d{2})-?\d{4}(?![\d])")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_INTERNATIONAL = re.compile(r"(?<![\w+.,(])\(?(?:\+|00)\d[\d ().-]{6,22}\d(?![\d])")
_DANISH = re.compile(
    r"(?<![\d+.,-])(?:"
    r"[2-9]\d{7}"                      # 23456789
    r"|[1-9]\d(?: \d\d){3}"            # 12 34 56 78
    r"|[1-9]\d(?:-\d\d){3}"            # 12-34-56-78
    r"|[1-9]\d(?:\.\d\d){3}"           # 12.34.56.78
    r"|[1-9]\d{3} \d{4}"               # 1234 5678
    r")(?![\d]|[.,-]\d)"
)
_YEAR = re.compile(r"(?:19|20)\d\d")
_CANDIDATE = re.compile(r"[\d@]")  # every pattern needs a digit or an @: most questions have neither


def redact(text: str) -> str:
    """`text` with CPR numbers, e-mail addresses and phone numbers replaced by markers."""
    if not _CANDIDATE.search(text):
        return text
    text = _EMAIL.sub(EMAIL, text)
    text = _CPR.sub(_cpr, text)
    text = _INTERNATIONAL.sub(_international, text)
    return _DANISH.sub(_danish, text)


def _cpr(match: re.Match) -> str:
    day, month, year = (int(g) for g in match.groups())
    return CPR if _is_day(2000 if (day, month) == (29, 2) else 1900 + year, month, day) else match.group(0)


def _international(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if match.group(0).startswith("00"):
        digits = digits[2:]
    return PHONE if 8 <= len(digits) <= 15 else match.group(0)


def _danish(match: re.Match) -> str:
    found = match.group(0)
    digits = re.sub(r"\D", "", found)
    if found.isdigit() and _is_day(int(digits[:4]), int(digits[4:6]), int(digits[6:])) and _YEAR.fullmatch(digits[:4]):
        return found  # 20240101: a date written as YYYYMMDD
    if found.isdigit() and found.endswith("0000"):
        return found  # 25000000: an amount
    halves = found.split(" ")
    if len(halves) == 2 and all(_YEAR.fullmatch(h) for h in halves):
        return found  # "2013 2020": two years
    return PHONE


def _is_day(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True

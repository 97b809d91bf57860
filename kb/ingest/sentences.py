"""Sentence boundaries as character spans, in time linear in the text.

Chunking and talking points both need sentence spans with exact offsets. The well-known
splitters either need downloaded data at run time (NLTK punkt), or are unmaintained and do not
return offsets reliably on the texts we index (pysbd, blingfire). Our texts are edited prose and
scientific abstracts, where a rule — terminal punctuation, then space, then something that can
start a sentence, unless the word before is an abbreviation or an initial — does the job; the
tests pin its behaviour.

Why linear matters: crawled pages are written by strangers and split while a request waits
(talking points split whole documents). The rule used to be a backtracking pattern with an
unbounded look-back for the word before a full stop; a run of 16,000 `?` or a long token before
`x. Y` then cost quadratic time under the GIL and stalled every request of the process. Now:

* a boundary is found in two steps that never backtrack: a run of `.!?` (each run is found
  once), then closing quotes and the start of the next sentence right after it (possessive
  repeats), so each character is examined a bounded number of times;
* the abbreviation check reads at most `ABBREVIATION_LOOKBACK` characters before the full stop
  (no abbreviation, initial or dotted acronym we recognise is longer);
* no sentence is longer than `MAX_SENTENCE_CHARS`: a longer one (no boundary in 1,000
  characters is not prose) is cut at word boundaries into pieces, and a single word longer than
  the cap is cut at the cap. Offsets stay exact: `text[start:end]` is always the piece.
"""
from __future__ import annotations

import re

MAX_SENTENCE_CHARS = 1000  # the real corpus' longest sentence has 293 characters
ABBREVIATION_LOOKBACK = 32

_ABBREVIATIONS = frozenset(
    """
    e.g i.e etc vs cf al approx ca no nos fig figs eq eqs dr mr mrs ms prof st jr sr inc ltd co corp
    jan feb mar apr jun jul aug sep sept oct nov dec dept univ vol pp ed eds mio mia bn mn dkk kr
    """.split()
)

# A candidate end: a run of terminal punctuation, then optional closing quotes/brackets, then
# whitespace, then a character that can begin a sentence. Possessive repeats: giving characters
# back could never turn a failure into a match.
_MARKS = re.compile(r"[.!?]+")
_CLOSE_THEN_START = re.compile(r"""["'”’)\]]*+(?=\s++["'“‘(\[]?[A-ZÆØÅ0-9])""")
_LINE = re.compile(r"[^\n]+")
_WORD = re.compile(r"\S+")
_WORD_CHARS = re.compile(r"[\w.]*")
_DOTTED_ACRONYM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")


def sentence_spans(
    text: str, start: int = 0, end: int | None = None, max_chars: int = MAX_SENTENCE_CHARS
) -> list[tuple[int, int]]:
    """Return (start, end) spans of the sentences in text[start:end], whitespace trimmed.

    Line breaks are hard boundaries (list items and headings are never one sentence). A sentence
    longer than `max_chars` comes back as several pieces of at most `max_chars` characters.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for line in _LINE.finditer(text, start, end):
        line_start, line_end = line.span()
        pos = line_start
        for marks in _MARKS.finditer(text, line_start, line_end):
            after = _CLOSE_THEN_START.match(text, marks.end(), line_end)
            if after is None or _is_abbreviation(text, pos, marks.start()):
                continue
            _append_trimmed(text, pos, after.end(), spans, max_chars)
            pos = after.end()
        _append_trimmed(text, pos, line_end, spans, max_chars)
    return spans


def _is_abbreviation(text: str, sentence_start: int, punct_pos: int) -> bool:
    if text[punct_pos] != ".":
        return False
    bare = _word_before(text, sentence_start, punct_pos)
    if not bare:
        return False
    if bare.lower().rstrip(".") in _ABBREVIATIONS:
        return True
    # A lone capital letter is an initial ("J. Smith"); dotted acronyms ("U.S.") too.
    return (len(bare) == 1 and bare.isupper()) or bool(_DOTTED_ACRONYM.fullmatch(bare))


def _word_before(text: str, sentence_start: int, punct_pos: int) -> str:
    """The run of word characters and dots right before `punct_pos` (within the sentence), or ""
    when it is longer than ABBREVIATION_LOOKBACK: reading further back could change nothing."""
    lo = max(sentence_start, punct_pos - ABBREVIATION_LOOKBACK - 1)
    word = _WORD_CHARS.match(text[lo:punct_pos][::-1]).group()[::-1]
    return "" if len(word) > ABBREVIATION_LOOKBACK else word


def _append_trimmed(text: str, s: int, e: int, spans: list[tuple[int, int]], max_chars: int) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e - s > max_chars:
        spans.extend(_pieces(text, s, e, max_chars))
    elif e > s:
        spans.append((s, e))


def _pieces(text: str, s: int, e: int, max_chars: int) -> list[tuple[int, int]]:
    """An over-long sentence as word-aligned pieces of at most max_chars; a longer word is cut."""
    pieces: list[tuple[int, int]] = []
    first = last = -1
    for m in _WORD.finditer(text, s, e):
        ws, we = m.span()
        if first >= 0 and we - first <= max_chars:
            last = we
            continue
        if first >= 0:
            pieces.append((first, last))
        while we - ws > max_chars:
            pieces.append((ws, ws + max_chars))
            ws += max_chars
        first, last = ws, we
    if first >= 0:
        pieces.append((first, last))
    return pieces

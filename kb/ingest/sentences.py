"""Sentence boundaries as character spans.

Chunking and talking points both need sentence spans with exact offsets. The well-known
splitters either need downloaded data at run time (NLTK punkt), or are unmaintained and do not
return offsets reliably on the texts we index (pysbd, blingfire). Our texts are edited prose and
scientific abstracts, where a rule — terminal punctuation, then space, then something that can
start a sentence, unless the word before is an abbreviation or an initial — does the job; the
tests pin its behaviour.
"""
from __future__ import annotations

import re

_ABBREVIATIONS = frozenset(
    """
    e.g i.e etc vs cf al approx ca no nos fig figs eq eqs dr mr mrs ms prof st jr sr inc ltd co corp
    jan feb mar apr jun jul aug sep sept oct nov dec dept univ vol pp ed eds mio mia bn mn dkk kr
    """.split()
)

# A candidate end: terminal punctuation (possibly repeated), optional closing quotes/brackets,
# then whitespace, then a character that can begin a sentence.
_BOUNDARY = re.compile(r"""[.!?]+["'”’)\]]*(?=\s+["'“‘(\[]?[A-ZÆØÅ0-9])""")
_WORD_BEFORE = re.compile(r"([\w.]+)$")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Return (start, end) spans of the sentences in text[start:end], whitespace trimmed.

    Line breaks are hard boundaries (list items and headings are never one sentence).
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for line in re.finditer(r"[^\n]+", text[start:end]):
        line_start = start + line.start()
        line_end = start + line.end()
        pos = line_start
        for m in _BOUNDARY.finditer(text, line_start, line_end):
            cut = m.end()
            if _is_abbreviation(text, pos, m.start()):
                continue
            _append_trimmed(text, pos, cut, spans)
            pos = cut
        _append_trimmed(text, pos, line_end, spans)
    return spans


def _is_abbreviation(text: str, sentence_start: int, punct_pos: int) -> bool:
    if text[punct_pos] != ".":
        return False
    m = _WORD_BEFORE.search(text, sentence_start, punct_pos)
    if not m:
        return False
    word = m.group(1).lower().rstrip(".")
    if word in _ABBREVIATIONS:
        return True
    # A lone capital letter is an initial ("J. Smith"); dotted acronyms ("U.S.") too.
    bare = m.group(1)
    return (len(bare) == 1 and bare.isupper()) or bool(re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", bare))


def _append_trimmed(text: str, s: int, e: int, spans: list[tuple[int, int]]) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        spans.append((s, e))

"""The spans of a document the product scores and quotes: sentences, and talking points.

Computed once per document at build time (and stored with their vectors in the index version),
never per request: highlighting a search result needs the sentences of its chunk, talking points
need the sentences that can be quoted on their own.

* A **sentence** of a chunk (sentence spans within the chunk's bounds) is a highlight candidate.
* A **point** is a full sentence of sensible length that reads on its own. A sentence that leans
  on an earlier one — a pronoun or connector ("It was founded in 1942.", "However, ..."), an "also"
  among its first words, or a definite description whose referent an earlier sentence introduced
  ("The entry point is the place to start" after a sentence about the entry point) — is extended
  with the sentence(s) it leans on in the same paragraph, still one exact span of the clean text,
  or dropped when it cannot be. A sentence about "the registry" on a registry's page reads better
  with the sentence before it, which usually names the registry, but is still true on its own: the
  citation names the page.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from kb.core.records import Chunk, Document
from kb.ingest.sentences import sentence_spans

MIN_WORDS, MAX_WORDS = 6, 60

# Openers that point back to the previous sentence: pronouns, demonstratives and connectors.
DEPENDENT_OPENERS = frozenset(
    """
    it its it's they them their theirs these those this that he she his her hers such both
    however moreover furthermore also additionally besides nevertheless nonetheless therefore thus
    hence consequently accordingly meanwhile similarly likewise instead otherwise still yet but and or
    so then later here afterwards subsequently
    """.split()
)
DEPENDENT_PHRASES = (
    "in addition", "as a result", "in turn", "at the same time", "after that", "on that date",
    "the latter", "the former", "the same", "for this reason", "in that year", "by then", "in this way",
)
_FIRST_WORD = re.compile(r"[\"'“‘(\[]*([A-Za-zÆØÅæøå']+)")
# "the <noun>" within the first few words: "The registry ...", "Since 1997 the registry ...".
_THE_NOUN = re.compile(r"(?:\S+\s+){0,3}?[Tt]he ([A-Za-zÆØÅæøå]+)(?:['’]s)?\b")
# Editorial notes about the knowledge base itself ("this knowledge base uses 2003 as the launch
# year", "described on the page about ...") matter to the content team, not in an email.
_EDITORIAL = re.compile(r"\b(?:this knowledge base|this page|the page about|pages in this)\b", re.IGNORECASE)
_TERMINAL = re.compile(r"""[.!?]["'”’)\]]*$""")
# "also" among the first words: "The agency also runs ...", "Researchers can also apply ...".
_EARLY_ALSO = re.compile(r"^(?:\S+\s+){0,3}also\b", re.IGNORECASE)
# A definite description opening the sentence: "The entry point ...", "The two registries ...".
_DEFINITE = re.compile(r"^[\"'“‘(\[]*[Tt]he ([a-zæøå][a-zæøå-]*)(?:\s+([a-zæøå][a-zæøå-]*))?")
# Words after "the" that do not point back to anything ("the same" is a connector, handled above).
_NOT_ANAPHORIC = frozenset("first last most main new national following next other only current whole".split())
_WORDS = re.compile(r"[A-Za-zÆØÅæøå-]+")


@dataclass(frozen=True)
class Span:
    """A span of a document's clean text inside one of its chunks (`chunk` = index in the list)."""

    chunk: int
    start: int
    end: int
    sentence: bool  # a sentence of the chunk: a highlight candidate
    point: bool  # quotable on its own as a talking point
    extended: bool = False  # the point takes in the sentence(s) before it


def document_spans(doc: Document, chunks: list[Chunk]) -> list[Span]:
    """Every sentence of every chunk and every quotable point, deduplicated per chunk, in order."""
    doc_spans = sentence_spans(doc.text)
    out: list[Span] = []
    for i, chunk in enumerate(chunks):
        sentences = {(s, e) for s, e in sentence_spans(doc.text, chunk.start, chunk.end)}
        points = _points(doc, doc_spans, chunk)
        for s, e in sorted(sentences | set(points)):
            out.append(Span(i, s, e, sentence=(s, e) in sentences, point=(s, e) in points,
                            extended=points.get((s, e), False)))
    return out


def _points(doc: Document, doc_spans: list[tuple[int, int]], chunk: Chunk) -> dict[tuple[int, int], bool]:
    """(start, end) -> extended, for the quotable units that end inside `chunk`."""
    points: dict[tuple[int, int], bool] = {}
    for j, (s, e) in enumerate(doc_spans):
        if s < chunk.start or e > chunk.end or not quotable(doc.text[s:e]):
            continue
        start = unit_start(doc.text, doc_spans, j, doc.title)
        if start is not None:
            points.setdefault((start, e), start != s)
    return points


def is_self_contained(sentence: str) -> bool:
    """False when the sentence opens with a pronoun or connector, or says "also" among its first
    words: it needs the sentence before."""
    lowered = sentence.lstrip("\"'“‘([ ").lower()
    if any(lowered.startswith(p + " ") or lowered.startswith(p + ",") for p in DEPENDENT_PHRASES):
        return False
    if _EARLY_ALSO.match(lowered):
        return False
    m = _FIRST_WORD.match(sentence.lstrip())
    return not (m and m.group(1).lower() in DEPENDENT_OPENERS)


def refers_back(sentence: str, earlier: str, title: str) -> bool:
    """True when the sentence opens with "the <noun>" that an earlier sentence introduced (and that
    is not the page's own subject, which the citation names): "The entry point is the place to
    start ..." after "... apply through the national entry point."."""
    m = _DEFINITE.match(sentence.lstrip())
    if not m:
        return False
    head = m.group(1)
    if head in _NOT_ANAPHORIC or len(head) < 4:
        return False
    title_words = {w.lower() for w in _WORDS.findall(title)}
    if head in title_words:
        return False
    said = {w.lower() for w in _WORDS.findall(earlier)}
    return head in said or (bool(m.group(2)) and f"{head} {m.group(2)}" in earlier.lower())


def refers_to_title(sentence: str, title: str) -> bool:
    """True for "The registry ..." or "Since 1997 the registry ..." on a registry's page: a
    definite back-reference to the page's subject, named in the sentence before."""
    m = _THE_NOUN.match(sentence.lstrip())
    if not m:
        return False
    noun = m.group(1)
    return noun.islower() and noun in {w.lower() for w in re.findall(r"\w+", title)}


def unit_start(text: str, spans: list[tuple[int, int]], j: int, title: str) -> int | None:
    """Where the quotable unit ending with sentence `j` starts, or None when it cannot stand.

    A sentence opening with a pronoun or connector takes in the sentence before it, and that one
    its own predecessor if it leans too ("X was founded. It grew. This made ..."), within one
    paragraph and `MAX_WORDS * 1.5` words. A "The registry ..." sentence takes in one predecessor
    when it can, and otherwise stands alone.
    """
    end = spans[j][1]
    k = j
    while True:
        s, e = spans[k]
        sentence = text[s:e]
        earlier = text[spans[max(0, k - 2)][0]:s] if k > 0 else ""
        dependent = not is_self_contained(sentence) or refers_back(sentence, earlier, title)
        if not dependent and not (k == j and refers_to_title(sentence, title)):
            return s
        if k == 0:
            return None if dependent else s
        ps, pe = spans[k - 1]
        joinable = "\n" not in text[pe:s] and bool(_TERMINAL.search(text[ps:pe])) and (
            len(text[ps:end].split()) <= MAX_WORDS * 1.5
        )
        if not joinable:
            return None if dependent else s
        k -= 1


def quotable(sentence: str) -> bool:
    """A full sentence of sensible length: not a heading, a list fragment or a wall of text."""
    words = len(sentence.split())
    return MIN_WORDS <= words <= MAX_WORDS and bool(_TERMINAL.search(sentence)) and not _EDITORIAL.search(sentence)

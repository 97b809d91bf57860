"""Talking points: a few short, quotable, cited sentences on a topic, for advisors.

How: a hybrid search gives candidate passages; their sentences (exact spans of the document's
clean text, kb.ingest.sentences) become candidate points; all candidates are encoded in ONE batched
model call and scored by cosine with the topic. Near-duplicates (the same fact told by two pages)
are dropped by embedding similarity, then maximal marginal relevance (MMR) picks the points,
treating two points from the same document as similar so that the points spread over sources
where the content allows it.

A point is quoted verbatim, never paraphrased: `point.text == document.text[start:end]` always.
A sentence that leans on the one before it ("It was founded in 1942.", "However, ...") is not
quotable alone, so it is extended with its previous sentence in the same paragraph — still one
exact span — or dropped when it opens a paragraph.
"""
from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kb.core.records import Citation
from kb.insight.sentence_vectors import SentenceVectorCache, encode_sentences
from kb.ingest.sentences import sentence_spans
from kb.insight.textfragment import source_link, web_url
from kb.answer.signal import Answer, answer
from kb.insight.related import RelatedTopic, related_topics

if TYPE_CHECKING:
    from kb.search.index import Filters, Index

N_DEFAULT, N_MAX = 5, 20
CANDIDATE_PASSAGES = 20
# Two points whose vectors are at least this similar say the same thing; the weaker one goes.
DUPLICATE_COSINE = 0.80
# MMR trade-off: 1.0 is pure relevance, lower values favour points unlike those already chosen.
MMR_LAMBDA = 0.75
# In MMR a point from an already-cited document counts as at least this similar to it.
SAME_SOURCE_SIMILARITY = 0.5
# A point scoring below this fraction of the best point's score is filler, not a talking point.
MIN_RELATIVE_SCORE = 0.65
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


@dataclass(frozen=True)
class TalkingPoint:
    """One quotable point: `text` is exactly the document's clean text at citation.start:end."""

    text: str
    score: float
    citation: Citation
    extended: bool = False  # True when the previous sentence was joined on to make it self-contained

    @property
    def source_url(self) -> str:
        """The source URL with a text fragment that opens the original page at this point."""
        return source_link(self.citation.url, self.text)


@dataclass(frozen=True)
class _Candidate:
    doc_id: str
    section: str
    start: int
    end: int
    text: str
    extended: bool


def is_self_contained(sentence: str) -> bool:
    """False when the sentence opens with a pronoun or connector that needs the sentence before."""
    lowered = sentence.lstrip("\"'“‘([ ").lower()
    if any(lowered.startswith(p + " ") or lowered.startswith(p + ",") for p in DEPENDENT_PHRASES):
        return False
    m = _FIRST_WORD.match(sentence.lstrip())
    return not (m and m.group(1).lower() in DEPENDENT_OPENERS)


def refers_to_title(sentence: str, title: str) -> bool:
    """True for "The registry ..." or "Since 1997 the registry ..." on a registry's page: a
    definite back-reference to the page's subject, named in the sentence before.

    Such a sentence reads better with the one before it (which usually names the thing), but it
    is still true on its own, so unlike a pronoun opener it is kept when nothing precedes it.
    """
    m = _THE_NOUN.match(sentence.lstrip())
    if not m:
        return False
    noun = m.group(1)
    return noun.islower() and noun in {w.lower() for w in re.findall(r"\w+", title)}


def talking_points(
    index: "Index",
    topic: str,
    n: int = N_DEFAULT,
    *,
    filters: "Filters | None" = None,
    answered_only: bool = False,
    candidate_passages: int = CANDIDATE_PASSAGES,
    duplicate_cosine: float = DUPLICATE_COSINE,
    mmr_lambda: float = MMR_LAMBDA,
    cache: SentenceVectorCache | None = None,
) -> list[TalkingPoint]:
    """The best `n` (1..20) verbatim points on `topic`, each cited, no two saying the same thing.

    With `answered_only`, returns no points when the index does not answer the topic (the "no good
    match" case of kb.answer.signal): five sentences of noise are worse than an honest "nothing".
    May return fewer than `n` when the candidates hold fewer distinct, relevant sentences.
    """
    if not 1 <= n <= N_MAX:
        raise ValueError(f"n must be from 1 to {N_MAX}; got {n}")
    response = index.search(topic, k=candidate_passages, mode="hybrid", filters=filters)
    hits = response.hits
    if not hits:
        return []
    if answered_only and not answer(index, topic, filters=filters).answered:
        return []  # the same test as the search page

    candidates = _candidates(index, hits)
    if not candidates:
        return []
    qvec = index.embedder.encode_query(topic)
    vectors = encode_sentences(index.embedder, [c.text for c in candidates], cache)
    relevance = vectors @ qvec
    chosen = _select(candidates, vectors, relevance, n, duplicate_cosine, mmr_lambda)

    points = []
    for i in chosen:
        c = candidates[i]
        doc = index.documents[c.doc_id]
        citation = Citation(
            title=doc.title, url=doc.url, section=c.section, source_type=doc.source_type, doc_id=doc.doc_id,
            organisation=doc.organisation, as_of=doc.as_of, start=c.start, end=c.end,
        )
        points.append(TalkingPoint(text=c.text, score=float(relevance[i]), citation=citation, extended=c.extended))
    return points


def _candidates(index: "Index", hits: Sequence) -> list[_Candidate]:
    """Quotable sentence spans (extended where needed) inside the candidate passages, deduplicated."""
    texts: dict[str, str] = {}
    titles = {d: info.title for d, info in index.documents.items()}
    spans: dict[str, list[tuple[int, int]]] = {}
    seen: set[tuple[str, int, int]] = set()
    out: list[_Candidate] = []
    for hit in hits:
        doc_id = hit.chunk.doc_id
        if doc_id not in texts:
            doc = index.document(doc_id)
            if doc is None:
                continue
            texts[doc_id] = doc.text
            spans[doc_id] = sentence_spans(doc.text)
        text, doc_spans = texts[doc_id], spans[doc_id]
        for j, (s, e) in enumerate(doc_spans):
            if s < hit.chunk.start or e > hit.chunk.end:
                continue
            sentence = text[s:e]
            if not _quotable(sentence):
                continue
            start = _unit_start(text, doc_spans, j, titles.get(doc_id, ""))
            if start is None:
                continue  # leans on something it cannot be joined to: not quotable
            extended = start != s
            key = (doc_id, start, e)
            if key in seen:
                continue
            seen.add(key)
            out.append(_Candidate(doc_id, hit.chunk.section, start, e, text[start:e], extended))
    return out


def _unit_start(text: str, spans: list[tuple[int, int]], j: int, title: str) -> int | None:
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
        dependent = not is_self_contained(sentence)
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


def _quotable(sentence: str) -> bool:
    """A full sentence of sensible length: not a heading, a list fragment or a wall of text."""
    words = len(sentence.split())
    return MIN_WORDS <= words <= MAX_WORDS and bool(_TERMINAL.search(sentence)) and not _EDITORIAL.search(sentence)


def _select(
    candidates: list[_Candidate], vectors: np.ndarray, relevance: np.ndarray, n: int,
    duplicate_cosine: float, mmr_lambda: float,
) -> list[int]:
    """Drop near-duplicates and weak candidates, then pick `n` by MMR (source-aware)."""
    order = np.argsort(-relevance, kind="stable")
    floor = float(relevance[order[0]]) * MIN_RELATIVE_SCORE if float(relevance[order[0]]) > 0 else 0.0
    pool: list[int] = []
    for i in order:
        i = int(i)
        if relevance[i] < floor:
            break
        if any(_overlaps(candidates[i], candidates[j]) for j in pool):
            continue
        if pool and float((vectors[pool] @ vectors[i]).max()) >= duplicate_cosine:
            continue
        pool.append(i)

    chosen: list[int] = []
    remaining = list(pool)
    while remaining and len(chosen) < n:
        best, best_value = remaining[0], -np.inf
        for i in remaining:
            redundancy = max((_similarity(candidates, vectors, i, j) for j in chosen), default=0.0)
            value = mmr_lambda * float(relevance[i]) - (1.0 - mmr_lambda) * redundancy
            if value > best_value:
                best, best_value = i, value
        chosen.append(best)
        remaining.remove(best)
    return chosen


def _overlaps(a: _Candidate, b: _Candidate) -> bool:
    """Two spans of the same document that share text (a sentence and its extended form)."""
    return a.doc_id == b.doc_id and a.start < b.end and b.start < a.end


def _similarity(candidates: list[_Candidate], vectors: np.ndarray, i: int, j: int) -> float:
    cosine = float(vectors[i] @ vectors[j])
    if candidates[i].doc_id == candidates[j].doc_id:
        return max(cosine, SAME_SOURCE_SIMILARITY)
    return cosine


def to_markdown(topic: str, points: Sequence[TalkingPoint]) -> str:
    """Bullets with `[n]` markers and a numbered sources list, ready to paste into an email.

    Everything but our own markup is untrusted (the topic comes from a shared link, titles and
    texts from crawled pages), so it is escaped to render as exactly the text it is: no link, image,
    HTML, emphasis or list can come from it. Source links are shown only for http(s) URLs, in angle
    brackets with `<`, `>`, spaces and control characters percent-encoded, so a link is always the
    address it shows.
    """
    lines = [f"**Talking points: {_md_text(topic)}**", ""]
    for i, p in enumerate(points, start=1):
        lines.append(f"- {_md_text(p.text)} [{i}]")
    if points:
        lines += ["", "Sources:", ""]
        for i, p in enumerate(points, start=1):
            c = p.citation
            where = f"{_md_text(c.title)} — {_md_text(c.section)}" if c.section else _md_text(c.title)
            as_of = f" (as of {_md_text(c.as_of)})" if c.as_of else ""
            url = _md_url(p.source_url)
            link = f": <{url}>" if url else ""
            lines.append(f"- [{i}] {where}{as_of}{link}")
    return "\n".join(lines) + "\n"


# Characters that can start inline Markdown (CommonMark, GitHub's tables and strikethrough),
# escaped with a backslash wherever they stand (`!` needs no escape: an image also needs `[`), and
# `&` where it opens an entity (`&#91;` would render as `[`, not as what was written).
_MD_INLINE = re.compile(r"([\\`*_\[\]<>~|]|&(?=#?\w+;))")
# What makes a block when it opens a line or a list item: heading, quote, list, rule, setext line.
_MD_BLOCK_START = re.compile(r"^(?:([#>+\-=])|(\d{1,9})([.)]))")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_URL_UNSAFE = re.compile(r"[\x00-\x20<>\x7f-\x9f]")


def _md_text(text: str) -> str:
    """`text` on one line, escaped so that Markdown renders exactly these characters."""
    flat = " ".join(_CONTROL.sub(" ", text or "").split())
    escaped = _MD_INLINE.sub(r"\\\1", flat)
    return _MD_BLOCK_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", escaped, count=1)


def _md_url(url: str) -> str:
    """An http(s) URL fit for `<...>`: the characters an autolink cannot hold percent-encoded; "" otherwise."""
    url = web_url(url)
    return _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode("utf-8")), url)


@dataclass
class Briefing:
    """What the API and the page show for a topic: points, or related topics when none answer."""

    topic: str
    points: list[TalkingPoint]
    answer: Answer
    related: list[RelatedTopic] = field(default_factory=list)
    took_ms: float = 0.0

    @property
    def answered(self) -> bool:
        return bool(self.points)

    @property
    def markdown(self) -> str:
        return to_markdown(self.topic, self.points)


def brief(
    index: "Index", topic: str, n: int = N_DEFAULT, *, filters: "Filters | None" = None,
    cache: SentenceVectorCache | None = None,
) -> Briefing:
    """Talking points held to the index's answered threshold; related topics when there are none."""
    t0 = time.perf_counter()
    signal = answer(index, topic, filters=filters)
    points = talking_points(index, topic, n, filters=filters, cache=cache) if signal.answered else []
    related = [] if points else related_topics(index, topic)
    return Briefing(topic, points, signal, related, round((time.perf_counter() - t0) * 1000.0, 2))

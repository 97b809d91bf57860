"""Talking points: a few short, quotable, cited sentences on a topic, for advisors.

How: a hybrid search gives candidate passages; the quotable points inside them (exact spans of
the documents' clean text, found at build time by kb.ingest.quotable, with their vectors stored
per dense retriever) are scored by cosine with the topic, using the vectors of the model that
serves the topic's language. Near-duplicates (the same fact told by two pages) are dropped by
embedding similarity, then maximal marginal relevance (MMR) picks the points, treating two points
from the same document as similar so that the points spread over sources where the content
allows it. No model runs here beyond the topic's own (cached) query vector.

A point is quoted verbatim, never paraphrased: `point.text == document.text[start:end]` always.
"""
from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from kb.core.records import Citation
from kb.insight.textfragment import source_link, web_url
from kb.answer.signal import Answer, answer
from kb.insight.related import RelatedTopic, related_topics

if TYPE_CHECKING:
    from kb.search.index import Filters, Index
    from kb.search.query import SearchResponse

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
# An answered topic gets at least this many points when the candidates hold as many distinct ones.
MIN_POINTS = 3


@dataclass(frozen=True)
class PointCuts:
    """The two cosine cuts of point selection for one model (duplicate, relative floor)."""

    duplicate_cosine: float
    min_relative_score: float


# The cuts above are MiniLM's. e5's cosines crowd into a narrow band (any two of the corpus's
# points: 0.86 at the 90th percentile, against MiniLM's 0.47), so MiniLM's cuts made every e5
# candidate a "duplicate" of the first and a Danish topic got one point. e5's cuts keep the same
# meaning: the duplicate cut leaves the same share of point pairs above it (0.2 %, 0.933), and the
# floor sits as far between the query's background and its best point (e5: median background
# 0.79, best 0.88 on the dev queries of tests/eval/outside_queries.jsonl; MiniLM 0.23, 0.59).
POINT_CUTS = {
    "dense": PointCuts(DUPLICATE_COSINE, MIN_RELATIVE_SCORE),
    "multilingual": PointCuts(0.933, 0.94),
}


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
    span_id: int


def _candidates(index: "Index", hits: Sequence) -> list[_Candidate]:
    """The stored points inside the candidate passages, in passage order, each span once."""
    chunks = {h.row: h.chunk for h in hits}
    seen: set[tuple[str, int, int]] = set()
    out: list[_Candidate] = []
    for span in index.store.spans_in(list(chunks), points=True):
        chunk = chunks[span.chunk_row]
        key = (chunk.doc_id, span.start, span.end)
        if key not in seen:
            seen.add(key)
            out.append(_Candidate(chunk.doc_id, chunk.section, span.start, span.end, span.text, span.extended, span.id))
    return out


def talking_points(
    index: "Index",
    topic: str,
    n: int = N_DEFAULT,
    *,
    filters: "Filters | None" = None,
    answered_only: bool = False,
    candidate_passages: int = CANDIDATE_PASSAGES,
    duplicate_cosine: float | None = None,
    mmr_lambda: float = MMR_LAMBDA,
    response: "SearchResponse | None" = None,
) -> list[TalkingPoint]:
    """The best `n` (1..20) verbatim points on `topic`, each cited, no two saying the same thing,
    from at least two documents when more than one holds a relevant point, and at least
    `MIN_POINTS` when the candidates hold that many.

    With `answered_only`, returns no points when the index does not answer the topic (the "no good
    match" case of kb.answer.signal): five sentences of noise are worse than an honest "nothing".
    `response` is a hybrid search for the topic the caller already ran (`candidate_passages` hits).
    """
    if not 1 <= n <= N_MAX:
        raise ValueError(f"n must be from 1 to {N_MAX}; got {n}")
    if response is None:
        response = index.search(topic, k=candidate_passages, mode="hybrid", filters=filters)
    hits = response.hits
    if not hits:
        return []
    if answered_only and not answer(index, topic, filters=filters, response=response).answered:
        return []  # the same test as the search page

    dense = index.dense(response.dense_retriever)
    candidates = _candidates(index, hits)
    if not candidates:
        return []
    qvec = response.vectors.get(dense.name)
    qvec = dense.encoder.encode_query(topic) if qvec is None else qvec
    vectors = dense.span_vectors_at([c.span_id for c in candidates])
    relevance = vectors @ qvec
    cuts = POINT_CUTS.get(dense.name, POINT_CUTS["dense"])
    if duplicate_cosine is not None:
        cuts = PointCuts(duplicate_cosine, cuts.min_relative_score)
    chosen = _select(candidates, vectors, relevance, n, cuts, mmr_lambda)

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


def _select(
    candidates: list[_Candidate], vectors: np.ndarray, relevance: np.ndarray, n: int,
    cuts: PointCuts, mmr_lambda: float,
) -> list[int]:
    """Drop near-duplicates and weak candidates, then pick `n` by MMR (source-aware)."""
    pool = _distinct(candidates, vectors, relevance, cuts)
    chosen = _mmr(candidates, vectors, relevance, pool, n, mmr_lambda)
    return _spread(candidates, relevance, pool, chosen)


def _distinct(candidates: list[_Candidate], vectors: np.ndarray, relevance: np.ndarray,
              cuts: PointCuts) -> list[int]:
    """The relevant candidates, best first, without near-duplicates or overlapping spans.

    Weak ones (below `cuts.min_relative_score` of the best) are left out — unless fewer than
    `MIN_POINTS` remain, in which case the next best distinct ones fill up to it: an answered
    topic gets at least three points when the candidates hold three different sentences.
    """
    order = [int(i) for i in np.argsort(-relevance, kind="stable")]
    best = float(relevance[order[0]])
    floor = best * cuts.min_relative_score if best > 0 else 0.0
    pool: list[int] = []
    for i in order:
        if relevance[i] < floor and len(pool) >= MIN_POINTS:
            break
        if any(_overlaps(candidates[i], candidates[j]) for j in pool):
            continue
        if pool and float((vectors[pool] @ vectors[i]).max()) >= cuts.duplicate_cosine:
            continue
        pool.append(i)
    return pool


def _spread(candidates: list[_Candidate], relevance: np.ndarray, pool: list[int], chosen: list[int]) -> list[int]:
    """When every chosen point comes from one document but another document offers a relevant
    point, the weakest chosen point gives way to the best of those: a talking point backed by two
    sources is worth more to an advisor than a fourth sentence from the same page."""
    if len(chosen) < 2 or len({candidates[i].doc_id for i in chosen}) > 1:
        return chosen
    others = [i for i in pool if candidates[i].doc_id != candidates[chosen[0]].doc_id]
    if not others:
        return chosen
    return chosen[:-1] + [max(others, key=lambda i: float(relevance[i]))]


def _mmr(candidates: list[_Candidate], vectors: np.ndarray, relevance: np.ndarray, pool: list[int], n: int,
         mmr_lambda: float) -> list[int]:
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


def brief(index: "Index", topic: str, n: int = N_DEFAULT, *, filters: "Filters | None" = None) -> Briefing:
    """Talking points held to the answer signal; related topics when there are none. One hybrid
    search serves both, and the points are scored with the model that serves the topic's language."""
    t0 = time.perf_counter()
    response = index.search(topic, k=CANDIDATE_PASSAGES, mode="hybrid", filters=filters)
    signal = answer(index, topic, filters=filters, response=response)
    points = talking_points(index, topic, n, filters=filters, response=response) if signal.answered else []
    related = [] if points else related_topics(index, topic)
    return Briefing(topic, points, signal, related, round((time.perf_counter() - t0) * 1000.0, 2))

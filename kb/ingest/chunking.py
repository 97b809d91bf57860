"""Structure-aware chunking: sections from headings, paragraphs packed up to a token budget.

Why this shape: a chunk that mixes two sections is hard to cite and embeds as a blur of two
topics, so chunks never cross a heading. Paragraphs are the natural unit; a paragraph longer than
the budget is packed sentence by sentence, and a sentence is not cut (offsets would then point
into the middle of a thought) unless it is longer than `kb.ingest.sentences.MAX_SENTENCE_CHARS`,
which prose never is. Sizes are counted in the model's own word pieces because that is what the
model truncates on (256 for all-MiniLM-L6-v2, of which the title/section prefix takes a share;
see docs/CHUNKING.md).

Word pieces alone do not bound a chunk's length: whitespace costs none, so a crawled page could
make a "short" paragraph of a megabyte. `max_chunk_chars` is a hard cap on top of the budget —
no chunk's span is longer, whatever the text — that real prose never reaches (the real corpus'
longest chunk has 750 characters; the cap is 2,048 at the default budget).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kb.core.settings import ChunkSettings
from kb.core.records import Block, Chunk, Document
from kb.ingest.sentences import MAX_SENTENCE_CHARS, sentence_spans

TokenCounter = Callable[[str], int]

# A word piece of real text is a few characters; 16 per piece of the budget leaves prose far below
# the cap and still lets a one-vector-per-document setting (KB_CHUNK_MAX_TOKENS=100000) keep whole
# documents. The floor keeps room for at least two capped sentences at tiny budgets.
CHARS_PER_TOKEN_CAP = 16
MIN_CHUNK_CHARS = 2 * MAX_SENTENCE_CHARS

_WORDPIECE_APPROX = re.compile(r"\w+|[^\w\s]")


def max_chunk_chars(settings: ChunkSettings) -> int:
    """The longest span (in characters) a chunk may have under these settings."""
    return max(MIN_CHUNK_CHARS, CHARS_PER_TOKEN_CAP * settings.max_tokens)


def approx_token_count(text: str) -> int:
    """Rough word-piece count (words, punctuation, long words split) for tests and tooling."""
    return sum(1 + len(tok) // 8 for tok in _WORDPIECE_APPROX.findall(text))


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    paragraph_end: bool  # the unit ends a paragraph (a natural place to stop)


def chunk_document(
    doc: Document,
    settings: ChunkSettings = ChunkSettings(),
    count_tokens: TokenCounter = approx_token_count,
) -> list[Chunk]:
    """Split a document into chunks whose text is exactly `doc.text[start:end]`."""
    chunks: list[Chunk] = []
    seen_ids: dict[str, int] = {}
    for section, paragraphs in _sections(doc):
        units = list(_units(doc.text, paragraphs, settings, count_tokens))
        for start, end in _pack(units, settings):
            text = doc.text[start:end]
            chunk_id = _chunk_id(doc.id, section, text, seen_ids)
            chunks.append(Chunk(id=chunk_id, doc_id=doc.id, section=section, start=start, end=end, text=text))
    return chunks


def embedding_text(doc_title: str, chunk: Chunk) -> str:
    """What the model sees for a chunk: title and section give a short passage its context."""
    head = doc_title if not chunk.section else f"{doc_title} — {chunk.section}"
    return f"{head}\n{chunk.text}" if head else chunk.text


def _sections(doc: Document) -> Iterable[tuple[str, list[Block]]]:
    """Group paragraph blocks under their heading path."""
    blocks = doc.blocks or _paragraph_blocks(doc.text)
    path: list[tuple[int, str]] = []
    current: list[Block] = []
    for block in blocks:
        if block.kind == "heading":
            if current:
                yield _path_text(path), current
                current = []
            level = max(block.level, 1)
            path = [(lvl, t) for lvl, t in path if lvl < level]
            path.append((level, doc.text[block.start : block.end]))
        else:
            current.append(block)
    if current:
        yield _path_text(path), current


def _path_text(path: list[tuple[int, str]]) -> str:
    return " > ".join(title for _, title in path)


def _paragraph_blocks(text: str) -> list[Block]:
    """Blocks for text that came without structure: blank lines separate paragraphs."""
    blocks = []
    for m in re.finditer(r"\S(?:.*?\S)?(?=\n\s*\n|\s*\Z)", text, flags=re.S):
        blocks.append(Block(kind="paragraph", start=m.start(), end=m.end()))
    return blocks


def _units(
    text: str, paragraphs: list[Block], settings: ChunkSettings, count_tokens: TokenCounter
) -> Iterable[_Unit]:
    """Whole paragraphs where they fit the budget and the cap, their sentences where they do not."""
    for para in paragraphs:
        if para.end - para.start <= max_chunk_chars(settings):
            tokens = count_tokens(text[para.start : para.end])
            if tokens <= settings.max_tokens:
                yield _Unit(para.start, para.end, tokens, True)
                continue
        spans = sentence_spans(text, para.start, para.end)
        for i, (s, e) in enumerate(spans):
            yield _Unit(s, e, count_tokens(text[s:e]), i == len(spans) - 1)


def _pack(units: list[_Unit], settings: ChunkSettings) -> list[tuple[int, int]]:
    """Greedy packing up to max_tokens (and max_chunk_chars); a too-small tail joins the chunk before it."""
    cap = max_chunk_chars(settings)
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    used = 0
    for unit in units:
        if current and (used + unit.tokens > settings.max_tokens or unit.end - current[0].start > cap):
            groups.append(current)
            overlap = _overlap(current, settings.overlap_sentences)
            current, used = list(overlap), sum(u.tokens for u in overlap)
            if current and (used + unit.tokens > settings.max_tokens or unit.end - current[0].start > cap):
                current, used = [], 0
        current.append(unit)
        used += unit.tokens
    if current:
        groups.append(current)
    if len(groups) >= 2:
        tail = sum(u.tokens for u in groups[-1])
        before = sum(u.tokens for u in groups[-2])
        fits = groups[-1][-1].end - groups[-2][0].start <= cap
        if fits and tail < settings.min_tokens and tail + before <= settings.max_tokens * 1.2:
            merged = groups[-2] + [u for u in groups[-1] if u not in groups[-2]]
            groups[-2:] = [merged]
    return [(g[0].start, g[-1].end) for g in groups]


def _overlap(group: list[_Unit], n: int) -> list[_Unit]:
    """The last n sentence units of a group, repeated at the start of the next chunk."""
    if n <= 0:
        return []
    tail = group[-n:]
    return [] if any(u.paragraph_end for u in tail) else tail


def _chunk_id(doc_id: str, section: str, text: str, seen: dict[str, int]) -> str:
    digest = hashlib.sha256(f"{doc_id}\x00{section}\x00{text}".encode("utf-8")).hexdigest()[:20]
    count = seen.get(digest, 0)
    seen[digest] = count + 1
    return digest if count == 0 else f"{digest}-{count}"

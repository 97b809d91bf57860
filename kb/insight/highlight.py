"""The sentence of a passage that best answers the query, for highlighting on the search page.

A prospect scans results by their best sentence, not by a 200-word chunk. Every sentence of every
hit is encoded in one batched model call (cached across requests, see kb.insight.sentence_vectors) and
compared with the query vector, which the embedder already cached for the search itself.
Offsets are relative to the chunk's text, so the page can split it into before / mark / after and
let the template escape each part.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kb.core.records import Chunk
from kb.models import Encoder
from kb.insight.sentence_vectors import SentenceVectorCache, encode_sentences
from kb.ingest.sentences import sentence_spans


@dataclass(frozen=True)
class Highlight:
    """The best sentence of one chunk: `chunk.text[start:end]`, and its cosine with the query."""

    start: int
    end: int
    score: float

    def parts(self, text: str) -> tuple[str, str, str]:
        """(before, highlighted, after) of the chunk text, for templates that escape each part."""
        return text[: self.start], text[self.start : self.end], text[self.end :]


def best_sentences(
    embedder: Encoder, query: str, chunks: Sequence[Chunk], cache: SentenceVectorCache | None = None
) -> list[Highlight | None]:
    """One highlight per chunk (None for a chunk without text), from one batched encode call."""
    spans_per_chunk = [sentence_spans(c.text) for c in chunks]
    owners: list[int] = []
    texts: list[str] = []
    for i, (chunk, spans) in enumerate(zip(chunks, spans_per_chunk)):
        for s, e in spans:
            owners.append(i)
            texts.append(chunk.text[s:e])
    result: list[Highlight | None] = [None] * len(chunks)
    if not texts:
        return result
    qvec = embedder.encode_query(query)
    scores = encode_sentences(embedder, texts, cache) @ qvec
    pos = 0
    for i, spans in enumerate(spans_per_chunk):
        if spans:
            block = scores[pos : pos + len(spans)]
            best = int(block.argmax())
            s, e = spans[best]
            result[i] = Highlight(start=s, end=e, score=float(block[best]))
            pos += len(spans)
    return result

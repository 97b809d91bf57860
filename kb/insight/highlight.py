"""The sentence of a passage that best answers the query, for highlighting on the search page.

A prospect scans results by their best sentence, not by a 200-word chunk. The sentences of every
chunk and their vectors were computed when the index was built (kb.ingest.quotable, stored per
dense retriever), so highlighting is one matrix product with the query vector of the model that
served the query — a Danish query is scored with the multilingual model's sentence vectors, an
English one with MiniLM's — and never runs a model. Offsets are relative to the chunk's text, so
the page can split it into before / mark / after and let the template escape each part.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kb.core.records import Hit

if TYPE_CHECKING:
    from kb.search.index import Index


@dataclass(frozen=True)
class Highlight:
    """The best sentence of one chunk: `chunk.text[start:end]`, and its cosine with the query."""

    start: int
    end: int
    score: float

    def parts(self, text: str) -> tuple[str, str, str]:
        """(before, highlighted, after) of the chunk text, for templates that escape each part."""
        return text[: self.start], text[self.start : self.end], text[self.end :]


def best_sentences(index: "Index", query: str, hits: Sequence[Hit], *, retriever: str = "dense",
                   query_vector: np.ndarray | None = None) -> list[Highlight | None]:
    """One highlight per hit (None for a chunk without a sentence), scored with `retriever`'s model."""
    result: list[Highlight | None] = [None] * len(hits)
    spans = index.store.spans_in([h.row for h in hits], sentences=True)
    if not spans:
        return result
    dense = index.dense(retriever)
    qvec = dense.encoder.encode_query(query) if query_vector is None else query_vector
    scores = dense.span_vectors_at([s.id for s in spans]) @ qvec
    best: dict[int, tuple[float, int]] = {}
    for i, span in enumerate(spans):
        if span.chunk_row not in best or scores[i] > best[span.chunk_row][0]:
            best[span.chunk_row] = (float(scores[i]), i)
    for pos, hit in enumerate(hits):
        if hit.row in best:
            score, i = best[hit.row]
            result[pos] = Highlight(spans[i].start - hit.chunk.start, spans[i].end - hit.chunk.start, score)
    return result

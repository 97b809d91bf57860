"""What a search is asked and what it answers: filters, the query with its vectors, the response."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from kb.core.records import Hit
from kb.models.encoder import Encoder


@dataclass(frozen=True)
class Filters:
    source_types: tuple[str, ...] = ()
    organisations: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.source_types or self.organisations)

    def as_dict(self) -> dict:
        return {"source_type": list(self.source_types), "organisation": list(self.organisations)}


class Query:
    """The query text and its vectors, one per model, each computed at most once per search.

    Work done after the response — highlights, the answer signal, the query log — reads the
    vectors from here instead of running a model a second time.
    """

    def __init__(self, text: str, vectors: dict[str, np.ndarray] | None = None) -> None:
        self.text = text
        self.vectors: dict[str, np.ndarray] = dict(vectors or {})
        self._lock = threading.Lock()

    def vector(self, name: str, encoder: Encoder) -> np.ndarray:
        """The query's vector for the retriever `name`, encoded by `encoder` on first use."""
        with self._lock:
            cached = self.vectors.get(name)
        if cached is not None:
            return cached
        vector = encoder.encode_query(self.text)
        with self._lock:
            self.vectors.setdefault(name, vector)
            return self.vectors[name]


@dataclass
class SearchResponse:
    query: str
    mode: str
    hits: list[Hit]
    took_ms: float
    index_version: str
    filters: Filters = field(default_factory=Filters)
    # The query's language, the retrievers whose lists were fused, and the dense retriever of the
    # route (the model that served the query: highlights, talking points and the answer signal use
    # its vectors; in dense and hybrid mode each hit's `dense_score` is its cosine).
    language: str = "en"
    retrievers: tuple[str, ...] = ()
    dense_retriever: str = "dense"
    # The query's vectors by retriever, so work after the response (the query log's answer
    # score) reuses them instead of running the model a second time.
    vectors: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def query_vector(self) -> np.ndarray | None:
        """The vector of the model that served the query (None in keyword mode: nothing encoded it)."""
        return self.vectors.get(self.dense_retriever)

    @property
    def top_score(self) -> float | None:
        return self.hits[0].score if self.hits else None

    @property
    def top_dense_score(self) -> float | None:
        scores = [h.dense_score for h in self.hits if h.dense_score is not None]
        return max(scores) if scores else None

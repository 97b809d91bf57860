"""Which retrievers answer a query, and with what weights: a route.

A route is an ordered list of (retriever, blend weight). Hybrid search fuses all of them; dense
search uses the route's first dense retriever; keyword search the keyword retriever alone. The
first dense retriever of a route is the one whose cosine the response reports as each hit's
`dense_score` — the model that served the query — so everything that scores sentences or answers
afterwards uses that model's vectors.
"""
from __future__ import annotations

from dataclasses import dataclass

from kb.core.settings import Settings


@dataclass(frozen=True)
class Route:
    language: str
    lists: tuple[tuple[str, float], ...]  # (retriever name, blend weight), in fusion order

    @property
    def retrievers(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.lists)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(weight for _, weight in self.lists)


def english_route(settings: Settings) -> Route:
    """MiniLM and BM25, the dense score weighted `blend_weight` (chosen on NFCorpus dev)."""
    return Route("en", (("dense", settings.blend_weight), ("keyword", 1.0 - settings.blend_weight)))

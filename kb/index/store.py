"""The chunk store: every SQL statement against an index version's `kb.sqlite`, and nothing else.

One file per version holds the documents (metadata and clean text), the chunks (text and exact
offsets; `row` is the vector id in every dense retriever's files), the spans the product scores
inside chunks (sentences for highlights, quotable talking points; `id` is the row in every dense
retriever's span vectors), the FTS5 keyword index, and per dense retriever the key each vector was
encoded under (so a rebuild can reuse it).
Builds write it once through `ChunkStore.write`; readers open it read-only with `immutable=1`
(the file never changes after publication: no locks, no journal look-ups) and get one
connection per thread. Callers elsewhere — retrievers, the answer signal, sentence vectors,
benchmark scripts — call the methods here instead of sending SQL of their own, so the schema
has one owner.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np

from kb.core.records import Chunk, Document, DocumentInfo
from kb.index.layout import IndexCorruptError

DATABASE = "kb.sqlite"
# Row lists up to this length are bound as SQL parameters (SQLite allows 32,766), longer ones as JSON.
SQL_LIST_MAX = 30_000

# The keyword index's tokenizer: Porter stemming over Unicode word characters, accents folded.
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"

SCHEMA = f"""
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    source_type TEXT NOT NULL,
    organisation TEXT NOT NULL,
    as_of TEXT NOT NULL,
    sources TEXT NOT NULL,
    path TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE chunks (
    row INTEGER PRIMARY KEY,            -- the vector id in every dense retriever's files
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    section TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE spans (                    -- sentences and talking points inside chunks (kb.ingest.quotable)
    id INTEGER PRIMARY KEY,             -- the row in every dense retriever's span vectors
    chunk_row INTEGER NOT NULL REFERENCES chunks(row),
    start INTEGER NOT NULL,             -- offsets in the document's clean text
    "end" INTEGER NOT NULL,
    sentence INTEGER NOT NULL,          -- 1: a sentence of the chunk (highlighting)
    point INTEGER NOT NULL,             -- 1: quotable on its own (talking points)
    extended INTEGER NOT NULL,          -- 1: the point takes in the sentence before it
    text TEXT NOT NULL
);
CREATE TABLE vector_keys (              -- what each vector was computed from, per retriever
    retriever TEXT NOT NULL,
    kind TEXT NOT NULL,                 -- chunk | span
    row INTEGER NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (retriever, kind, row)
) WITHOUT ROWID;
CREATE INDEX spans_chunk ON spans(chunk_row);
CREATE INDEX chunks_doc ON chunks(doc_id);
CREATE INDEX documents_source_type ON documents(source_type);
CREATE INDEX documents_organisation ON documents(organisation);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    title, section, body,
    tokenize = '{FTS_TOKENIZER}'
);
"""

_CHUNK_COLUMNS = 'chunk_id, doc_id, section, start, "end", text'


def sqlite_uri(path: Path, **params: str) -> str:
    """A `file:` URI for `path`, percent-encoded so `?`, `#` and `%` in folder names stay part of it."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{quote(str(Path(path).resolve()))}" + (f"?{query}" if query else "")


class ChunkStore:
    """Read access to one version's database, safe to share across threads."""

    def __init__(self, path: Path, *, immutable: bool = True) -> None:
        self.path = Path(path)
        self._params = {"mode": "ro", "immutable": "1"} if immutable else {"mode": "ro"}
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._connection()  # fail at open, not at the first request

    # ---- writing (builds) ----------------------------------------------------------------

    @staticmethod
    def write(path: Path, chunked: Sequence[tuple[Document, Sequence[Chunk]]], spans: Sequence[StoredSpan],
              vector_keys: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
        """Create the database of a new version: documents, chunks in row order, their spans, the
        keyword index and, per dense retriever and kind (chunk, span), the key of every vector."""
        conn = sqlite3.connect(path)
        try:
            conn.executescript(SCHEMA)
            with conn:
                _insert_chunks(conn, chunked)
                conn.executemany('INSERT INTO spans VALUES (?,?,?,?,?,?,?,?)',
                                 ((i, s.chunk_row, s.start, s.end, int(s.sentence), int(s.point), int(s.extended),
                                   s.text) for i, s in enumerate(spans)))
                for retriever, kinds in vector_keys.items():
                    for kind, keys in kinds.items():
                        conn.executemany("INSERT INTO vector_keys VALUES (?,?,?,?)",
                                         ((retriever, kind, row, key) for row, key in enumerate(keys)))
            conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
            conn.commit()
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()

    # ---- connections ---------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(sqlite_uri(self.path, **self._params), uri=True, check_same_thread=False)
                conn.row_factory = sqlite3.Row
                conn.execute("SELECT count(*) FROM chunks").fetchone()
            except sqlite3.DatabaseError as exc:
                raise IndexCorruptError(f"{self.path} is not a readable index database ({exc}); rebuild the index.") from exc
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()

    # ---- documents -----------------------------------------------------------------------

    def document_infos(self) -> dict[str, DocumentInfo]:
        rows = self._connection().execute(
            "SELECT doc_id, title, url, source_type, organisation, as_of FROM documents").fetchall()
        return {r["doc_id"]: DocumentInfo(*r) for r in rows}

    def document(self, doc_id: str) -> Document | None:
        row = self._connection().execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return None if row is None else _document(row)

    def documents(self) -> list[Document]:
        """Every document with its clean text, in id order (benchmarks and reports)."""
        return [_document(r) for r in self._connection().execute("SELECT * FROM documents ORDER BY doc_id")]

    # ---- chunks --------------------------------------------------------------------------

    def chunk_count(self) -> int:
        return int(self._connection().execute("SELECT count(*) FROM chunks").fetchone()[0])

    def chunk(self, chunk_id: str) -> Chunk | None:
        r = self._connection().execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE chunk_id = ?", (chunk_id,)).fetchone()
        return Chunk(*r) if r else None

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        rows = self._connection().execute(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE doc_id = ? ORDER BY start", (doc_id,)).fetchall()
        return [Chunk(*r) for r in rows]

    def chunks_at(self, rows: Sequence[int]) -> dict[int, Chunk]:
        """The chunks at vector rows, keyed by row."""
        if not rows:
            return {}
        clause, params = _row_list(rows)
        found = self._connection().execute(f"SELECT row, {_CHUNK_COLUMNS} FROM chunks WHERE row IN {clause}", params)
        return {r[0]: Chunk(*tuple(r)[1:]) for r in found}

    def chunks_in_row_order(self) -> list[Chunk]:
        return [Chunk(*r) for r in self._connection().execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks ORDER BY row")]

    def rows_of(self, chunk_ids: Sequence[str]) -> dict[str, int]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        return dict(self._connection().execute(f"SELECT chunk_id, row FROM chunks WHERE chunk_id IN ({marks})",
                                               list(chunk_ids)).fetchall())

    def chunk_texts(self) -> list[str]:
        return [r[0] for r in self._connection().execute("SELECT text FROM chunks ORDER BY row")]

    def rows_matching(self, source_types: Sequence[str], organisations: Sequence[str]) -> np.ndarray:
        """Rows of the chunks whose document has one of the source types and one of the
        organisations (an empty list does not restrict), ascending."""
        clauses, params = [], []
        if source_types:
            clauses.append(f"d.source_type IN ({','.join('?' * len(source_types))})")
            params += list(source_types)
        if organisations:
            clauses.append(f"d.organisation IN ({','.join('?' * len(organisations))})")
            params += list(organisations)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        sql = f"SELECT c.row FROM chunks c JOIN documents d ON d.doc_id = c.doc_id{where} ORDER BY c.row"
        return np.array([r[0] for r in self._connection().execute(sql, params)], dtype=np.int64)

    # ---- vectors -------------------------------------------------------------------------

    def vector_keys(self, retriever: str, kind: str = "chunk") -> list[tuple[int, str]]:
        """(row, key) of every vector of `kind` a dense retriever stored; [] for a version without them."""
        try:
            return [(int(r[0]), str(r[1])) for r in self._connection().execute(
                "SELECT row, key FROM vector_keys WHERE retriever = ? AND kind = ? ORDER BY row", (retriever, kind))]
        except sqlite3.OperationalError:
            return []  # an older format: nothing to reuse

    # ---- spans ---------------------------------------------------------------------------

    def spans_in(self, chunk_rows: Sequence[int], *, sentences: bool = False, points: bool = False) -> list[StoredSpan]:
        """The sentences and/or points inside the given chunks, by chunk (in the order given), then start."""
        if not chunk_rows:
            return []
        clause, params = _row_list(chunk_rows)
        wanted = " OR ".join(c for c, on in (("sentence = 1", sentences), ("point = 1", points)) if on) or "1 = 1"
        found = self._connection().execute(
            f'SELECT id, chunk_row, start, "end", sentence, point, extended, text FROM spans '
            f"WHERE chunk_row IN {clause} AND ({wanted}) ORDER BY chunk_row, start", params).fetchall()
        order = {row: i for i, row in enumerate(dict.fromkeys(chunk_rows))}
        spans = [StoredSpan(r[1], r[2], r[3], bool(r[4]), bool(r[5]), bool(r[6]), r[7], r[0]) for r in found]
        return sorted(spans, key=lambda s: (order[s.chunk_row], s.start, s.end))

    def span_count(self) -> int:
        return int(self._connection().execute("SELECT count(*) FROM spans").fetchone()[0])

    # ---- keyword search ------------------------------------------------------------------

    def bm25(self, match: str, weights: Sequence[float], limit: int,
             rows: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """FTS5 BM25 (higher is better) of the chunks matching `match`, best first, at most `limit`,
        restricted to `rows` when given.

        `+rowid` keeps the row list away from FTS5's planner: given `rowid IN (...)` it runs the
        full-text query once per listed row (measured 14x slower than one pass, filtered). Past
        SQLite's limit on bound parameters the list travels as one JSON array; filtering after the
        LIMIT instead would let a filter return fewer results than exist.
        """
        weight_list = ", ".join(str(float(w)) for w in weights)
        sql = f"SELECT rowid, -bm25(chunks_fts, {weight_list}) AS s FROM chunks_fts WHERE chunks_fts MATCH ?"
        params: list = [match]
        if rows is not None:
            clause, row_params = _row_list(rows)
            sql += f" AND +rowid IN {clause}"
            params += row_params
        sql += " ORDER BY s DESC LIMIT ?"
        params.append(limit)
        return [(int(r[0]), float(r[1])) for r in self._connection().execute(sql, params).fetchall()]


@dataclass(frozen=True)
class StoredSpan:
    """A sentence or talking point inside a chunk: `text` is the document's clean text at start:end."""

    chunk_row: int
    start: int
    end: int
    sentence: bool
    point: bool
    extended: bool
    text: str
    id: int = -1  # the row in each dense retriever's span vectors (-1 before it is written)


def _row_list(rows: Iterable[int]) -> tuple[str, list]:
    """`(?,?,...)` with its parameters, or one JSON array past SQL_LIST_MAX rows."""
    rows = [int(r) for r in rows]
    if len(rows) <= SQL_LIST_MAX:
        return f"({','.join('?' * len(rows))})", rows
    return "(SELECT value FROM json_each(?))", [json.dumps(rows)]


def _insert_chunks(conn: sqlite3.Connection, chunked: Sequence[tuple[Document, Sequence[Chunk]]]) -> None:
    row = 0
    for doc, chunks in chunked:
        conn.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
            (doc.id, doc.title, doc.url, doc.source_type, doc.organisation, doc.as_of,
             json.dumps(list(doc.sources)), doc.path, doc.content_hash(), doc.text),
        )
        for chunk in chunks:
            conn.execute("INSERT INTO chunks VALUES (?,?,?,?,?,?,?)",
                         (row, chunk.id, chunk.doc_id, chunk.section, chunk.start, chunk.end, chunk.text))
            conn.execute("INSERT INTO chunks_fts(rowid, title, section, body) VALUES (?,?,?,?)",
                         (row, doc.title, chunk.section, chunk.text))
            row += 1


def _document(row: sqlite3.Row) -> Document:
    return Document(
        id=row["doc_id"], title=row["title"], url=row["url"], source_type=row["source_type"], text=row["text"],
        organisation=row["organisation"], as_of=row["as_of"], sources=tuple(json.loads(row["sources"])),
        path=row["path"],
    )

"""The query log in a SQLite file of its own (the default `KB_QUERY_LOG`): nothing to run.

A file beside the index, not inside it, so it survives rebuilds. Each use opens its own
connection (cheap for SQLite, and no connection is shared between threads); WAL journaling lets
the admin pages read while the writer thread writes. Schema changes take the write lock first
(`BEGIN IMMEDIATE`), so two workers starting at once migrate an old file only once.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from kb.insight.querylog.store import QueryStore, Tx, backfill_v2, run_script

BUSY_TIMEOUT_SECONDS = 5.0

SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,                 -- UTC, ISO 8601 to the second: sorts as text
    kind TEXT NOT NULL,               -- search | talking_points
    query TEXT NOT NULL,
    mode TEXT NOT NULL,
    filters TEXT NOT NULL,            -- JSON object
    result_count INTEGER NOT NULL,
    top_score REAL,
    top_dense_score REAL,             -- best cosine of the query with any passage
    answer_score REAL,                -- top cosine minus background cosine (kb.answer.signal)
    top_doc_id TEXT,
    top5_doc_ids TEXT NOT NULL,       -- JSON list, for "documents nobody sees"
    index_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queries_at ON queries(at);
"""
# The normalised question the report groups by, and the row's size for the bytes cap. (No SQL
# comments here: SQLite copies an added column's text, comment and all, into the table's schema.)
SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
ALTER TABLE queries ADD COLUMN wording TEXT NOT NULL DEFAULT '';
ALTER TABLE queries ADD COLUMN row_bytes INTEGER NOT NULL DEFAULT 0
"""
INDEXES_V2 = "CREATE INDEX IF NOT EXISTS queries_wording ON queries(wording, at)"  # after the backfill: faster


class _SqliteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: dict | None = None) -> list[tuple]:
        return self.conn.execute(sql, params or {}).fetchall()

    def run(self, sql: str, params: dict | None = None) -> int:
        return self.conn.execute(sql, params or {}).rowcount

    def many(self, sql: str, params: Sequence[dict]) -> None:
        self.conn.executemany(sql, params)


class SqliteStore(QueryStore):
    SEEN_DOCS = ("SELECT DISTINCT doc.value FROM queries, json_each(queries.top5_doc_ids) AS doc "
                 "WHERE queries.at >= :since")

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.where = str(self.path)

    def has_log(self) -> bool:
        return self.path.exists()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _transaction(self, *, schema: bool = False, snapshot: bool = False) -> Iterator[Tx]:
        # In WAL mode a read transaction already sees one snapshot: `snapshot` needs nothing more.
        conn = self._connect()
        try:
            if schema:
                conn.execute("PRAGMA journal_mode=WAL")  # kept in the file; outside a transaction
            conn.execute("BEGIN IMMEDIATE" if schema else "BEGIN")
            try:
                yield _SqliteTx(conn)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        finally:
            conn.close()

    def _schema_version(self, tx: Tx) -> int:
        tables = {name for (name,) in tx.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" in tables:
            return int(tx.rows("SELECT MAX(version) FROM schema_version")[0][0] or 0)
        return 1 if "queries" in tables else 0  # a log written before versions were kept

    def _migrations(self) -> dict[int, Callable[[Tx], None]]:
        return {1: lambda tx: run_script(tx, SCHEMA_V1), 2: _upgrade_to_v2}


def _upgrade_to_v2(tx: Tx) -> None:
    run_script(tx, SCHEMA_V2)
    backfill_v2(tx, "length(CAST({} AS BLOB))")
    tx.run(INDEXES_V2)

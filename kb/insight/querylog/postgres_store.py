"""The query log in PostgreSQL (`KB_QUERY_LOG=postgresql://user@host/db`): one log for every replica.

Several app servers behind a load balancer each had a SQLite file of their own, so the questions
page showed one server's share of the questions. Pointing them all at one database gives one
truth. psycopg 3 with a small connection pool per process (the writer thread and the admin
pages borrow from it); a pool made before a fork is replaced in the child. Schema steps run under
a transaction-scoped advisory lock, so replicas starting together migrate once.
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from kb.insight.querylog.store import QueryStore, Tx, backfill_v2, run_script

POOL_SIZE = 4  # the writer thread, plus admin pages
CONNECT_TIMEOUT_SECONDS = 5
SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('kb-query-log-schema'))"
# Text columns compare byte-wise ("C"), as SQLite's do, so ties in the report break the same way.
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS queries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    query TEXT COLLATE "C" NOT NULL,
    mode TEXT NOT NULL,
    filters TEXT NOT NULL,
    result_count INTEGER NOT NULL,
    top_score DOUBLE PRECISION,
    top_dense_score DOUBLE PRECISION,
    answer_score DOUBLE PRECISION,
    top_doc_id TEXT COLLATE "C",
    top5_doc_ids TEXT NOT NULL,
    index_version TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queries_at ON queries(at)
"""
SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
ALTER TABLE queries ADD COLUMN IF NOT EXISTS wording TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE queries ADD COLUMN IF NOT EXISTS row_bytes INTEGER NOT NULL DEFAULT 0
"""
INDEXES_V2 = "CREATE INDEX IF NOT EXISTS queries_wording ON queries(wording, at)"  # after the backfill: faster
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


def _pyformat(sql: str) -> str:
    """`:name` placeholders (the shared SQL's) as psycopg's `%(name)s`."""
    return _NAMED.sub(r"%(\1)s", sql)


def public_url(url: str) -> str:
    """The URL without its password, for messages; raises ValueError when it does not parse."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ValueError(f"not a PostgreSQL connection URL ({exc})") from None
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


class _PgTx(Tx):
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: dict | None = None) -> list[tuple]:
        return self.conn.execute(_pyformat(sql), params or None).fetchall()

    def run(self, sql: str, params: dict | None = None) -> int:
        return self.conn.execute(_pyformat(sql), params or None).rowcount

    def many(self, sql: str, params: Sequence[dict]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(_pyformat(sql), params)


class PostgresStore(QueryStore):
    SEEN_DOCS = ("SELECT DISTINCT doc FROM queries, jsonb_array_elements_text(CAST(queries.top5_doc_ids AS jsonb)) "
                 "AS doc WHERE queries.at >= :since")

    def __init__(self, url: str) -> None:
        self.where = public_url(url)
        self.url = url
        self._pool: ConnectionPool | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def _connections(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._pool = ConnectionPool(
                    self.url, min_size=1, max_size=POOL_SIZE, open=False, timeout=CONNECT_TIMEOUT_SECONDS,
                    name="kb-querylog", check=ConnectionPool.check_connection,  # survives a server restart
                    kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS, "application_name": "kb-querylog"},
                )
                self._pool.open(wait=False)
            return self._pool

    @contextmanager
    def _transaction(self, *, schema: bool = False, snapshot: bool = False) -> Iterator[Tx]:
        with self._connections().connection() as conn, conn.transaction():
            if snapshot:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if schema:
                conn.execute(SCHEMA_LOCK)
            yield _PgTx(conn)

    def _schema_version(self, tx: Tx) -> int:
        (versions, queries), = tx.rows("SELECT to_regclass('schema_version'), to_regclass('queries')")
        if versions is not None:
            return int(tx.rows("SELECT MAX(version) FROM schema_version")[0][0] or 0)
        return 1 if queries is not None else 0

    def _migrations(self) -> dict[int, Callable[[Tx], None]]:
        return {1: lambda tx: run_script(tx, SCHEMA_V1), 2: _upgrade_to_v2}

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.close()


def _upgrade_to_v2(tx: Tx) -> None:
    run_script(tx, SCHEMA_V2)
    backfill_v2(tx, "octet_length({})")
    tx.run(INDEXES_V2)

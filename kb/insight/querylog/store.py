"""Where the query log's rows live: one small interface, one implementation per database.

`QueryStore` holds every SQL statement both engines share — insert, retention and caps, the
newest-first read and the aggregation behind the questions report — and each engine adds only
what differs: how to connect, its schema steps and how to look inside the top-5 list (JSON).
The implementations are `kb.insight.querylog.sqlite_store` (the embedded default, a file) and
`kb.insight.querylog.postgres_store` (a shared PostgreSQL database, for several replicas).

Schema. A `schema_version` table says which steps ran; `open()` runs the missing ones under a
lock (several workers may start together), so a log file written by an older version is
migrated in place. Version 2 added the normalised wording the report groups by (computed in
Python, since neither database casefolds Danish letters the way Python does) and each row's size
in bytes (for `KB_QUERY_LOG_MAX_BYTES`); the step also redacts personal data in old rows.

Every value is written by `stored_values`, the one place a record becomes a row: personal data
is redacted there, so no path can store a question verbatim.
"""
from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from kb.insight.querylog.record import QueryRecord
from kb.insight.querylog.redact import redact

SCHEMA_VERSION = 2
RECORD_COLUMNS = ("at", "kind", "query", "mode", "filters", "result_count", "top_score", "top_dense_score",
                  "answer_score", "top_doc_id", "top5_doc_ids", "index_version")
COLUMNS = RECORD_COLUMNS + ("wording", "row_bytes")
FIXED_ROW_BYTES = 48  # the id, the counts and the scores, as stored
# A row's size: FIXED_ROW_BYTES plus the UTF-8 bytes of these.
TEXT_COLUMNS = ("at", "kind", "query", "mode", "filters", "top_doc_id", "top5_doc_ids", "index_version", "wording")

INSERT = f"INSERT INTO queries ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
DELETE_BEFORE = "DELETE FROM queries WHERE at < :cutoff"
DELETE_OVER_ROWS = "DELETE FROM queries WHERE id <= (SELECT id FROM queries ORDER BY id DESC LIMIT 1 OFFSET :keep)"
TOTAL_BYTES = "SELECT COALESCE(SUM(row_bytes), 0) FROM queries"
DELETE_OVER_BYTES = """
DELETE FROM queries WHERE id <= (
    SELECT MAX(id) FROM (SELECT id, SUM(row_bytes) OVER (ORDER BY id DESC) AS kept FROM queries) AS newest
    WHERE kept > :max_bytes)"""
READ = f"SELECT {', '.join(RECORD_COLUMNS)} FROM queries WHERE at >= :since ORDER BY id DESC LIMIT :limit"
BOUNDS = "SELECT MIN(id), MAX(id) FROM queries"
TOTALS = "SELECT COUNT(*), COUNT(DISTINCT NULLIF(wording, '')) FROM queries WHERE at >= :since"
# The most asked wordings of the period, each with its most frequent spelling, how often it was
# asked and when last, how many asks were scored and answered (verdict `covered` by the current
# cuts), and the scores of its latest scored ask. One pass of window functions and one GROUP BY,
# with no join: SQLite joins CTEs by nested loops, which took minutes on 5,000 wordings.
WORDINGS = """
WITH asks AS (
    SELECT id, at, wording, query, answer_score, top_dense_score,
           CASE WHEN answer_score IS NULL THEN 0 ELSE 1 END AS scored,
           COUNT(*) OVER (PARTITION BY wording, query) AS spelled
    FROM queries WHERE at >= :since AND wording <> ''),
ranked AS (
    SELECT asks.*,
           ROW_NUMBER() OVER (PARTITION BY wording ORDER BY scored DESC, id DESC) AS recency,
           ROW_NUMBER() OVER (PARTITION BY wording ORDER BY spelled DESC, query) AS spelling
    FROM asks)
SELECT wording, MAX(CASE WHEN spelling = 1 THEN query END), COUNT(*), MAX(at),
       SUM(CASE WHEN answer_score >= :margin THEN 1 ELSE 0 END),
       SUM(scored), MAX(CASE WHEN recency = 1 THEN answer_score END),
       MAX(CASE WHEN recency = 1 THEN top_dense_score END)
FROM ranked GROUP BY wording ORDER BY COUNT(*) DESC, wording LIMIT :limit"""
TOP_DOCS = """
WITH top AS (SELECT wording FROM queries WHERE at >= :since AND wording <> ''
             GROUP BY wording ORDER BY COUNT(*) DESC, wording LIMIT :limit)
SELECT wording, top_doc_id, COUNT(*) FROM queries
WHERE at >= :since AND top_doc_id IS NOT NULL AND wording IN (SELECT wording FROM top)
GROUP BY wording, top_doc_id"""


def normalise(query: str) -> str:
    """The wording a question is grouped by: case and spacing ignored."""
    return " ".join(query.casefold().split())


def stored_values(rec: QueryRecord) -> dict:
    """The row for `rec`: the question redacted, its wording and its size added."""
    return _derived({
        "at": rec.at, "kind": rec.kind, "query": rec.query, "mode": rec.mode,
        "filters": json.dumps(rec.filters, sort_keys=True), "result_count": int(rec.result_count),
        "top_score": _finite(rec.top_score), "top_dense_score": _finite(rec.top_dense_score),
        "answer_score": _finite(rec.answer_score), "top_doc_id": rec.top_doc_id,
        "top5_doc_ids": json.dumps(list(rec.top5_doc_ids)), "index_version": rec.index_version,
    })


def _derived(values: dict) -> dict:
    values["query"] = redact(values["query"])
    values["wording"] = normalise(values["query"])
    text = "".join(values[c] or "" for c in TEXT_COLUMNS)
    values["row_bytes"] = FIXED_ROW_BYTES + (len(text) if text.isascii() else len(text.encode("utf-8")))
    return values


def record_from(row: Sequence) -> QueryRecord:
    """A record from the columns of `READ`, in order."""
    v = dict(zip(RECORD_COLUMNS, row))
    return QueryRecord(
        kind=v["kind"], query=v["query"], mode=v["mode"], filters=json.loads(v["filters"]),
        result_count=v["result_count"], top_score=v["top_score"], top_dense_score=v["top_dense_score"],
        top_doc_id=v["top_doc_id"], top5_doc_ids=tuple(json.loads(v["top5_doc_ids"])),
        index_version=v["index_version"], answer_score=v["answer_score"], at=v["at"],
    )


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class WordingCount:
    """One normalised wording over a period, as the database counted it."""

    wording: str
    text: str  # the most frequent spelling
    asked: int
    last_seen: str
    answered: int  # asks whose verdict was `covered`
    scored: int  # asks that had an answer score (every row since the request computes it)
    answer_score: float | None  # of the latest scored ask
    top_dense_score: float | None
    top_docs: tuple[tuple[str, int], ...] = ()  # (doc_id, times ranked first)


@dataclass(frozen=True)
class PeriodCounts:
    """What the questions report needs from the log, aggregated by the database."""

    rows: int
    distinct: int  # distinct non-empty wordings
    wordings: tuple[WordingCount, ...]  # the most asked first, at most the limit asked for
    seen_doc_ids: frozenset[str]  # every document in some top 5

    @classmethod
    def empty(cls) -> "PeriodCounts":
        return cls(0, 0, (), frozenset())


class Tx(ABC):
    """One transaction on one connection, with named `:param` placeholders in both engines."""

    @abstractmethod
    def rows(self, sql: str, params: dict | None = None) -> list[tuple]: ...

    @abstractmethod
    def run(self, sql: str, params: dict | None = None) -> int: ...

    @abstractmethod
    def many(self, sql: str, params: Sequence[dict]) -> None: ...


class QueryStore(ABC):
    """The query log's table in one database; safe to use from several threads at once."""

    where: str  # for messages: a path, or a URL without its password
    SEEN_DOCS: str  # distinct doc ids in `top5_doc_ids` of rows at or after :since

    # ---- what each engine provides --------------------------------------------------------

    @abstractmethod
    def _transaction(self, *, schema: bool = False, snapshot: bool = False) -> AbstractContextManager[Tx]:
        """A transaction, committed at the end. `schema`: hold the schema lock (one migration at a
        time across processes); `snapshot`: every statement sees the same state of the table."""

    @abstractmethod
    def _schema_version(self, tx: Tx) -> int: ...

    @abstractmethod
    def _migrations(self) -> dict[int, Callable[[Tx], None]]: ...

    def has_log(self) -> bool:
        """Whether there is anything to read (a SQLite file may not exist yet)."""
        return True

    def close(self) -> None:
        """Release connections; the store opens them again when used."""

    # ---- schema ----------------------------------------------------------------------------

    def open(self) -> None:
        """Create the schema or bring it up to `SCHEMA_VERSION`; idempotent, safe across processes."""
        with self._transaction(schema=True) as tx:
            current = self._schema_version(tx)
            if current > SCHEMA_VERSION:
                raise RuntimeError(f"the query log at {self.where} has schema version {current}, newer than this "
                                   f"program's {SCHEMA_VERSION}; upgrade the program")
            steps = self._migrations()
            for version in range(current + 1, SCHEMA_VERSION + 1):
                steps[version](tx)
            if current != SCHEMA_VERSION:
                tx.run("DELETE FROM schema_version")
                tx.run("INSERT INTO schema_version (version) VALUES (:v)", {"v": SCHEMA_VERSION})

    # ---- writing ---------------------------------------------------------------------------

    def insert(self, records: Sequence[QueryRecord]) -> None:
        with self._transaction() as tx:
            tx.many(INSERT, [stored_values(r) for r in records])

    def delete_before(self, cutoff: str) -> int:
        with self._transaction() as tx:
            return tx.run(DELETE_BEFORE, {"cutoff": cutoff})

    def delete_over(self, max_rows: int, max_bytes: int) -> int:
        """Delete the oldest rows beyond `max_rows` rows or `max_bytes` bytes (0: no cap)."""
        removed = 0
        with self._transaction() as tx:
            if max_rows > 0:
                removed += tx.run(DELETE_OVER_ROWS, {"keep": max_rows})
            if max_bytes > 0 and tx.rows(TOTAL_BYTES)[0][0] > max_bytes:  # the sum is cheap, the window is not
                removed += tx.run(DELETE_OVER_BYTES, {"max_bytes": max_bytes})
        return removed

    # ---- reading ---------------------------------------------------------------------------

    def read(self, since: str, limit: int) -> list[QueryRecord]:
        with self._transaction() as tx:
            return [record_from(r) for r in tx.rows(READ, {"since": since, "limit": limit})]

    def bounds(self) -> tuple[int | None, int | None]:
        """(oldest id, newest id): what the report cache is keyed on."""
        with self._transaction() as tx:
            low, high = tx.rows(BOUNDS)[0]
            return low, high

    def period(self, since: str, margin: float, limit: int) -> PeriodCounts:
        """Counts per wording since `since`, in one consistent snapshot; a row counts as answered
        when its answer score reaches `margin`."""
        params = {"since": since, "margin": margin, "limit": limit}
        with self._transaction(snapshot=True) as tx:
            rows, distinct = tx.rows(TOTALS, {"since": since})[0]
            docs: dict[str, list[tuple[str, int]]] = {}
            for wording, doc_id, count in tx.rows(TOP_DOCS, params):
                docs.setdefault(wording, []).append((doc_id, int(count)))
            wordings = tuple(
                WordingCount(w, text, int(asked), last, int(answered), int(scored), score, top_dense,
                             tuple(sorted(docs.get(w, ()), key=lambda d: (-d[1], d[0]))))
                for w, text, asked, last, answered, scored, score, top_dense in tx.rows(WORDINGS, params)
            )
            seen = frozenset(d for (d,) in tx.rows(self.SEEN_DOCS, {"since": since}))
        return PeriodCounts(int(rows), int(distinct or 0), wordings, seen)


def run_script(tx: Tx, script: str) -> None:
    """Each `;`-separated statement of a schema step (no statement may contain a `;` itself)."""
    for statement in script.split(";"):
        if statement.strip():
            tx.run(statement)


def backfill_v2(tx: Tx, bytes_of: str) -> None:
    """Schema step 2's data for old rows: questions redacted, their wording and each row's size.

    Set-based, so a large old file migrates in seconds: Python works once per distinct question
    (casefolding and redaction), the database joins the results back and sums the sizes;
    `bytes_of` is the engine's expression for the UTF-8 length of `{}`.
    """
    tx.run("CREATE TABLE kb_backfill (query TEXT PRIMARY KEY, redacted TEXT NOT NULL, wording TEXT NOT NULL)")
    fixes = []
    for (query,) in tx.rows("SELECT DISTINCT query FROM queries"):
        redacted = redact(query)
        fixes.append({"query": query, "redacted": redacted, "wording": normalise(redacted)})
    tx.many("INSERT INTO kb_backfill (query, redacted, wording) VALUES (:query, :redacted, :wording)", fixes)
    tx.run("UPDATE queries SET query = kb_backfill.redacted, wording = kb_backfill.wording FROM kb_backfill "
           "WHERE queries.query = kb_backfill.query")
    size = " + ".join(bytes_of.format(f"COALESCE({c}, '')") for c in TEXT_COLUMNS)
    tx.run(f"UPDATE queries SET row_bytes = {FIXED_ROW_BYTES} + {size}")
    tx.run("DROP TABLE kb_backfill")

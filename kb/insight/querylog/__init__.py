"""The query log: what people ask and how well the index answered — never who asked.

Rows hold the time (UTC), the kind of request, the query text, mode, filters, the result count,
top scores and the documents in the top five; no IP address, user agent, cookie or any other
identifier is ever accepted (the record type has no field for one), and CPR numbers, e-mail
addresses and phone numbers typed into a question are replaced by `[cpr]`, `[email]` and
`[phone]` before it is stored (`redact`).

`KB_QUERY_LOG` names the store: a SQLite file of its own (the default, beside the index so it
survives rebuilds) or a `postgresql://` URL shared by several replicas. Writing never slows or
breaks a search: `QueryLog.record` only queues the row; a background thread enriches, inserts,
and keeps the log within its retention period and its row and byte caps. The questions report
is aggregated by the database (`QueryLog.period`).

Modules, one idea each: record (the row and how it is made), redact, store (the interface and
the SQL both engines share), sqlite_store, postgres_store, location (which store a setting
names), writer (queue and thread), retention, log (`QueryLog`, which puts them together).
"""
from kb.insight.querylog.log import QueryLog, QueryLogUnavailable
from kb.insight.querylog.record import KINDS, QueryRecord, iso, record_of, utc_now, with_answer
from kb.insight.querylog.redact import redact
from kb.insight.querylog.store import PeriodCounts, WordingCount, normalise
from kb.insight.querylog.writer import QueryLogStats

__all__ = ["KINDS", "PeriodCounts", "QueryLog", "QueryLogStats", "QueryLogUnavailable", "QueryRecord", "WordingCount",
           "iso", "normalise", "record_of", "redact", "utc_now", "with_answer"]

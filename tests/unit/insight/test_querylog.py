"""The query log: a row per search and talking-points request, no client identifiers, personal
data redacted, retention and caps, off by configuration, never a failed search because logging
failed — on both stores (a SQLite file, and a real PostgreSQL server started for the session)."""
import json
import logging
import runpy
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from kb.answer.signal import answer, thresholds
from kb.core.settings import Settings, SettingsError
from kb.insight.querylog import QueryLog, QueryRecord, iso, redact
from kb.insight.querylog.location import open_store
from kb.insight.querylog.sqlite_store import SCHEMA_V1, SqliteStore
from kb.insight.querylog.store import stored_values
from kb.search.live import LiveIndex
from search_app import create_app
from tests.fixtures.servers import free_port

CPR = "When was the Danish personal identification number introduced?"
TAX = "What is the corporate tax rate in Denmark?"
CLIENT_IP, FORWARDED_IP, AGENT = "203.0.113.77", "198.51.100.23", "AgentSmith/9.9 (secret-device-id-4711)"
GUNICORN_CONF = Path(__file__).resolve().parents[3] / "search_app" / "gunicorn_conf.py"


def make_app(settings, encoders, index_dir, **changes):
    s = replace(settings, **changes)
    return create_app({"TESTING": True, "SETTINGS": s, "INDEX_DIR": str(index_dir),
                       "LIVE_INDEX": LiveIndex(index_dir, s, encoders)})


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """Where a log lives: a fresh SQLite file, or a fresh database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "log" / "querylog.sqlite")
    return request.getfixturevalue("postgresql_url")


@pytest.fixture()
def logged(location, settings, encoders, corpus_index_dir):
    app = make_app(settings, encoders, corpus_index_dir, query_log_enabled=True, query_log_path=location)
    qlog = app.extensions["kb_query_log"]
    yield app, qlog
    qlog.close()


@pytest.fixture()
def new_log(location):
    """QueryLog(**options) on this test's store; every one made is closed at the end."""
    made = []

    def make(**options) -> QueryLog:
        qlog = QueryLog(location, options.pop("retention_days", 30), **options)
        made.append(qlog)
        return qlog

    yield make
    for qlog in made:
        qlog.close()


def rows(qlog):
    """Every row, oldest first."""
    assert qlog.flush(timeout=60), "the writer did not drain its queue"
    return list(reversed(qlog.read()))


def sql(location: str, statement: str) -> list[tuple]:
    """Look inside the store with the engine's own client, not through the code under test."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location) as conn:
            return conn.execute(statement).fetchall()
    conn = sqlite3.connect(location)
    try:
        return conn.execute(statement).fetchall()
    finally:
        conn.close()


def _record(at: str = "", query: str = "q", **changes) -> QueryRecord:
    rec = QueryRecord(kind="search", query=query, mode="hybrid", filters={}, result_count=0, top_score=None,
                      top_dense_score=None, top_doc_id=None, top5_doc_ids=(), index_version="v", at=at)
    return replace(rec, **changes)


# ---- a row per request -----------------------------------------------------------------------

def test_a_row_per_request_type(logged):
    app, qlog = logged
    client = app.test_client()
    api = client.get("/api/search", query_string={"q": CPR, "k": 7})
    page = client.get("/", query_string={"q": TAX, "mode": "keyword"})
    points = client.get("/api/talking-points", query_string={"topic": "registry data for research", "n": 5})
    points_page = client.get("/talking-points", query_string={"topic": "telehealth for COPD patients"})
    tax = client.get("/api/search", query_string={"q": TAX})
    assert [r.status_code for r in (api, page, points, points_page, tax)] == [200] * 5
    logged_rows = rows(qlog)
    assert [(r.kind, r.query) for r in logged_rows] == [
        ("search", CPR), ("search", TAX), ("talking_points", "registry data for research"),
        ("talking_points", "telehealth for COPD patients"), ("search", TAX),
    ]
    body = api.get_json()
    first = logged_rows[0]
    assert first.mode == body["mode"] and first.result_count == len(body["results"]) == 7
    assert first.top_doc_id == body["results"][0]["doc_id"]
    assert first.top5_doc_ids == tuple(r["doc_id"] for r in body["results"][:5])
    assert first.top_score == pytest.approx(body["results"][0]["score"], abs=1e-5)
    assert first.index_version == body["index_version"]
    assert first.filters == {"source_type": [], "organisation": []}
    tp = points.get_json()
    assert logged_rows[2].result_count == len(tp["points"]) == 5
    assert logged_rows[2].top_doc_id == tp["points"][0]["citation"]["doc_id"]
    now = datetime.now(timezone.utc)
    for r in logged_rows:
        at = datetime.fromisoformat(r.at)
        assert at.utcoffset() == timedelta(0) and now - timedelta(minutes=5) < at <= now
    assert logged_rows[1].mode == "keyword"
    for r in logged_rows:  # the answer signal each request computed, stored with its row
        assert r.answer_score is not None and r.top_dense_score is not None
    # The answer score tells the content team which questions went unanswered.
    index = app.extensions["kb_index"].get()
    cal = index.manifest["answer_signal"]
    assert logged_rows[0].answer_score >= cal["cut"] > cal["thin_cut"] > logged_rows[4].answer_score
    # It is the score the API returned, and a fresh computation gives the same.
    assert logged_rows[0].answer_score == pytest.approx(body["answer_score"], abs=1e-4)
    assert logged_rows[0].answer_score == pytest.approx(answer(index, CPR).answer_score, abs=1e-6)


def test_filters_are_logged(logged):
    app, qlog = logged
    assert app.test_client().get("/api/search", query_string={"q": "patient data", "source_type": "registry"}).status_code == 200
    (row,) = rows(qlog)
    assert row.filters == {"source_type": ["registry"], "organisation": []}


def test_a_facet_click_is_not_logged_as_a_new_question(logged):
    """Narrowing a search by a facet (and clearing it again) shows the same question: one row."""
    from bs4 import BeautifulSoup

    app, qlog = logged
    client = app.test_client()
    page = client.get("/", query_string={"q": "patient data"})
    facet = BeautifulSoup(page.get_data(as_text=True), "html.parser").select_one('a.facet-link[data-field="source_type"]')
    narrowed = client.get(facet["href"])
    assert narrowed.status_code == 200
    links = BeautifulSoup(narrowed.get_data(as_text=True), "html.parser").find_all("a")
    clear = next(a for a in links if a.get_text() in ("Clear filters", "Search without filters"))
    assert client.get(clear["href"]).status_code == 200
    assert client.get("/", query_string={"q": "patient data", "source_type": facet["data-value"]}).status_code == 200
    logged_rows = rows(qlog)
    assert [(r.query, r.filters["source_type"]) for r in logged_rows] == [
        ("patient data", []), ("patient data", [facet["data-value"]]),  # typed, and a shared filtered link
    ]


# ---- never who asked -------------------------------------------------------------------------

def _columns_and_values(location: str) -> tuple[list[str], list[str], list[str]]:
    if location.startswith("postgresql://"):
        tables = sql(location, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        columns = sql(location, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'")
    else:
        tables = sql(location, "SELECT name FROM sqlite_master WHERE type = 'table'")
        columns = [(c[1],) for t in ("queries", "schema_version") for c in sql(location, f"PRAGMA table_info({t})")]
    values = [str(v) for row in sql(location, "SELECT * FROM queries") for v in row]
    return sorted(t for (t,) in tables), [c for (c,) in columns], values


def test_no_ip_address_or_client_detail_is_stored(logged, location):
    app, qlog = logged
    client = app.test_client()
    headers = {"X-Forwarded-For": f"{FORWARDED_IP}, {CLIENT_IP}", "X-Real-IP": FORWARDED_IP, "User-Agent": AGENT,
               "Cookie": "session=secret-device-id-4711"}
    for path, args in (("/api/search", {"q": CPR}), ("/", {"q": CPR}), ("/api/talking-points", {"topic": CPR})):
        r = client.get(path, query_string=args, headers=headers, environ_base={"REMOTE_ADDR": CLIENT_IP})
        assert r.status_code == 200
    assert len(rows(qlog)) == 3
    qlog.close()
    tables, columns, values = _columns_and_values(location)
    assert tables == ["queries", "schema_version"]
    assert not [c for c in columns if any(w in c.lower() for w in ("ip", "addr", "user", "agent", "client", "session"))]
    for secret in (CLIENT_IP, FORWARDED_IP, "AgentSmith", "secret-device-id-4711"):
        assert not [v for v in values if secret in v]
    if location.startswith("postgresql://"):
        return
    sql(location, "PRAGMA wal_checkpoint(TRUNCATE)")
    raw = b"".join(p.read_bytes() for p in qlog.path.parent.iterdir() if p.is_file())
    for secret in (CLIENT_IP, FORWARDED_IP, "AgentSmith", "secret-device-id-4711"):
        assert secret.encode() not in raw


def test_a_record_has_no_field_for_who_asked(tmp_path, settings, encoders, corpus_index_dir):
    app = make_app(settings, encoders, corpus_index_dir, query_log_enabled=True,
                   query_log_path=str(tmp_path / "querylog.sqlite"))
    qlog = app.extensions["kb_query_log"]
    assert corpus_index_dir not in qlog.path.parents  # beside the index, not inside it: survives rebuilds
    assert set(QueryRecord.__dataclass_fields__) == {
        "kind", "query", "mode", "filters", "result_count", "top_score", "top_dense_score", "top_doc_id",
        "top5_doc_ids", "index_version", "answer_score", "at",
    }
    qlog.close()


def _access_line(fmt: str, tmp_path) -> str:
    """One access-log line as gunicorn writes it with `fmt`, for a search from CLIENT_IP."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", fmt)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/?q=is+010203-1234+registered", "PATH_INFO": "/",
               "QUERY_STRING": "q=is+010203-1234+registered", "SERVER_PROTOCOL": "HTTP/1.1",
               "REMOTE_ADDR": CLIENT_IP, "HTTP_USER_AGENT": AGENT, "HTTP_REFERER": "http://kb/?q=my+secret+question"}
    response = SimpleNamespace(status="200 OK", sent=512, headers=[])
    logger = Logger(cfg)
    logger.access(response, SimpleNamespace(headers=[]), environ, timedelta(milliseconds=12))
    for handler in logger.access_log.handlers:
        handler.flush()
    return (tmp_path / "access.log").read_text()


def test_the_access_log_has_no_client_address_or_query_unless_asked(monkeypatch, tmp_path):
    """gunicorn's own default logs the address, the whole request line and the referrer."""
    monkeypatch.delenv("KB_ACCESS_LOG_FORMAT", raising=False)
    fmt = runpy.run_path(str(GUNICORN_CONF))["access_log_format"]
    line = _access_line(fmt, tmp_path / "default")
    assert '"GET / HTTP/1.1" 200 512 12ms' in line
    for secret in (CLIENT_IP, "010203-1234", "q=", "AgentSmith", "my+secret"):
        assert secret not in line
    monkeypatch.setenv("KB_ACCESS_LOG_FORMAT", '%(h)s "%(r)s"')  # asked for explicitly
    fmt = runpy.run_path(str(GUNICORN_CONF))["access_log_format"]
    assert f'{CLIENT_IP} "GET /?q=is+010203-1234+registered HTTP/1.1"' in _access_line(fmt, tmp_path / "asked")


# ---- personal data is redacted before it is stored --------------------------------------------

@pytest.mark.parametrize(("typed", "stored"), [
    ("is 010203-1234 in the registry", "is [cpr] in the registry"),
    ("cpr 0102031234", "cpr [cpr]"),
    ("CPR-nr. 290200-1234!", "CPR-nr. [cpr]!"),  # 29 February: a leap day in some century
    ("write to anne.b+kb@sundhed.dk please", "write to [email] please"),
    ("Mail: Jens.Hansen@region-h.example.org.", "Mail: [email]."),
    ("call 12 34 56 78", "call [phone]"),
    ("call 23456789 today", "call [phone] today"),
    ("ring 2345 6789", "ring [phone]"),
    ("phone 98-76-54-32", "phone [phone]"),
    ("+45 12 34 56 78", "[phone]"),
    ("+4512345678", "[phone]"),
    ("0045 1234 5678", "[phone]"),
    ("(+45) 1234 5678", "[phone]"),
    ("London +44 20 7946 0958", "London [phone]"),
    ("US +1 (555) 123-4567", "US [phone]"),
    ("me, 010203-1234, a@b.dk, 20 30 40 50", "me, [cpr], [email], [phone]"),
])
def test_personal_data_is_redacted(typed, stored):
    assert redact(typed) == stored


@pytest.mark.parametrize("ordinary", [
    "What happened to the CPR register in 1968?",
    "the 10-digit CPR number",
    "health strategy 2013-2020",
    "between 2013 2020",
    "admissions on 20240101",
    "ICD-10 code E11.9 and DRG 0402",
    "5,932,654 inhabitants (5932654)",
    "a budget of 25000000 kr, or 12.345.678 kr",
    "320103-1234 is not a date",  # day 32
    "011303-1234 is not a date either",  # month 13
    "1234567890",
    "310400-1234",  # 31 April
    "dated 01-02-2003 or 01.02.2003",
    "0.25 and 12.5% and version 3.12.1",
    "extension 1234 and room 567",
    "email@ alone",
])
def test_ordinary_numbers_and_text_are_kept(ordinary):
    assert redact(ordinary) == ordinary


def test_a_question_with_personal_data_is_stored_redacted(logged, location):
    app, qlog = logged
    typed = "is 010203-1234 registered, mail anne@example.dk or call +45 12 34 56 78"
    assert app.test_client().get("/api/search", query_string={"q": typed}).status_code == 200
    (row,) = rows(qlog)
    assert row.query == "is [cpr] registered, mail [email] or call [phone]"
    qlog.close()
    stored = " ".join(str(v) for r in sql(location, "SELECT * FROM queries") for v in r)
    for secret in ("010203-1234", "0102031234", "anne@example.dk", "12 34 56 78"):
        assert secret not in stored
    if not location.startswith("postgresql://"):
        sql(location, "PRAGMA wal_checkpoint(TRUNCATE)")
        assert b"010203-1234" not in b"".join(p.read_bytes() for p in qlog.path.parent.iterdir() if p.is_file())


# ---- configuration ---------------------------------------------------------------------------

def test_logging_disabled_by_configuration_writes_nothing(location, settings, encoders, corpus_index_dir):
    app = make_app(settings, encoders, corpus_index_dir, query_log_enabled=False, query_log_path=location)
    client = app.test_client()
    assert client.get("/api/search", query_string={"q": CPR}).status_code == 200
    assert client.get("/api/talking-points", query_string={"topic": CPR}).status_code == 200
    qlog = app.extensions["kb_query_log"]
    assert qlog.flush() and qlog.stats.written == 0
    if location.startswith("postgresql://"):
        assert sql(location, "SELECT to_regclass('queries')") == [(None,)]
    else:
        assert not Path(location).exists() and not Path(location).parent.exists()
    qlog.close()


def test_the_caps_and_the_store_are_settings():
    s = Settings.from_env({"KB_QUERY_LOG": "postgresql://kb@db.example:5432/kb", "KB_QUERY_LOG_MAX_ROWS": "5",
                           "KB_QUERY_LOG_MAX_BYTES": "1000"})
    qlog = QueryLog.from_settings(s)
    assert (qlog.retention.max_rows, qlog.retention.max_bytes) == (5, 1000)
    assert qlog.store.where == "postgresql://kb@db.example:5432/kb" and qlog.path is None
    assert Settings().query_log_max_rows > 0 and Settings().query_log_max_bytes > 0  # capped by default
    with pytest.raises(SettingsError, match="KB_QUERY_LOG_MAX_ROWS='-1'"):
        Settings.from_env({"KB_QUERY_LOG_MAX_ROWS": "-1"})


@pytest.mark.parametrize(("value", "message"), [
    ("mysql://kb@db/kb", "the mysql:// scheme is not supported"),
    ("sqlite:///var/querylog.sqlite", "the sqlite:// scheme is not supported"),
    ("postgresql://kb@db/kb?sslmode", "not a PostgreSQL connection URL"),
    ("   ", "empty"),
])
def test_a_bad_store_stops_the_app_at_start_with_a_clear_message(value, message, settings, encoders,
                                                                 corpus_index_dir):
    with pytest.raises(SettingsError) as info:
        make_app(settings, encoders, corpus_index_dir, query_log_enabled=True, query_log_path=value)
    assert f"KB_QUERY_LOG={value.strip()!r}" in str(info.value) and message in str(info.value)


def test_a_folder_is_not_a_log_file(tmp_path):
    with pytest.raises(SettingsError, match="is a folder"):
        open_store(tmp_path)


def test_a_postgres_url_never_shows_its_password():
    store = open_store("postgresql://kb:s3cret-pw@db.example:6432/kblog")
    assert store.where == "postgresql://kb@db.example:6432/kblog"
    assert "s3cret" not in repr(vars(QueryLog(store, 30, enabled=False).store).get("where"))


# ---- retention, caps and reading ---------------------------------------------------------------

def test_rows_past_retention_are_purged_at_start_up(new_log):
    now = datetime.now(timezone.utc)
    keep_all = new_log(retention_days=3650)  # ten years: nothing here is purged
    keep_all.record(_record(iso(now - timedelta(days=400)), "ancient"))
    keep_all.record(_record(iso(now - timedelta(days=31)), "old"))
    keep_all.record(_record(iso(now - timedelta(days=29)), "recent"))
    assert [r.query for r in rows(keep_all)] == ["ancient", "old", "recent"]
    keep_all.close()

    restarted = new_log(retention_days=30)
    restarted.start()  # what create_app does
    assert [r.query for r in rows(restarted)] == ["recent"] and restarted.stats.purged == 2


def test_rows_past_retention_are_purged_periodically(new_log):
    now = [datetime.now(timezone.utc)]
    qlog = new_log(retention_days=7, purge_every_seconds=0.05, clock=lambda: now[0])
    qlog.record(_record(query="today"))
    assert [r.query for r in rows(qlog)] == ["today"]
    now[0] += timedelta(days=8)  # time passes; no new request arrives
    deadline = time.monotonic() + 10
    while qlog.read() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert qlog.read() == [] and qlog.stats.purged == 1


def test_the_row_cap_keeps_the_newest_rows(new_log):
    qlog = new_log(max_rows=5)
    qlog.start()
    for i in range(12):
        qlog.record(_record(query=f"question {i}"))
    assert rows(qlog)  # written; the cap is checked at the latest after CAP_CHECK_ROWS rows or at start
    qlog.retention.cap_check_rows = 1
    qlog.record(_record(query="question 12"))
    assert [r.query for r in rows(qlog)] == [f"question {i}" for i in range(8, 13)]
    assert qlog.stats.capped == 8


def test_the_byte_cap_keeps_the_newest_rows(new_log, location):
    qlog = new_log(max_bytes=2000)
    qlog.retention.cap_check_rows = 1
    for i in range(40):
        qlog.record(_record(query=f"question {i:02d} " + "x" * 100))
    kept = rows(qlog)
    total = sql(location, "SELECT SUM(row_bytes) FROM queries")[0][0]
    assert 1500 < total <= 2000 and qlog.stats.capped == 40 - len(kept)
    assert [r.query[:11] for r in kept] == [f"question {i:02d}" for i in range(40 - len(kept), 40)]


def test_a_flood_within_the_retention_window_stays_within_the_caps(new_log, location):
    """The finding: with only a retention period, rows (and bytes) grew without bound."""
    qlog = new_log(retention_days=3650, max_rows=300)
    qlog.start()
    qlog.retention.cap_check_rows = 100
    for burst in range(10):
        for i in range(100):
            qlog.record(_record(query=f"flood {burst} {i}"))
        assert qlog.flush(timeout=60)
        assert sql(location, "SELECT COUNT(*) FROM queries")[0][0] <= 300 + 100
    assert qlog.read(limit=1)[0].query == "flood 9 99"


def test_reading_is_newest_first(new_log):
    qlog = new_log()
    for q in ("first", "second", "third"):
        qlog.record(_record(query=q))
    assert qlog.flush()
    assert [r.query for r in qlog.read()] == ["third", "second", "first"]
    assert [r.query for r in qlog.read(limit=2)] == ["third", "second"]


def test_the_database_counts_each_wording(new_log, corpus_index):
    """What the questions report needs, aggregated in SQL: asks per normalised wording, the most
    frequent spelling, when last, the latest scored answer score, answered asks and top documents."""
    cuts = thresholds(corpus_index)
    qlog = new_log(retention_days=3650)
    day = datetime(2026, 3, 1, tzinfo=timezone.utc)
    asks = [
        ("When was CPR introduced?", 0.40, "cpr", 0), ("when was  CPR introduced?", 0.10, "cpr", 1),
        ("When was CPR introduced?", 0.35, "other", 2), ("When was CPR introduced?", None, None, 3),  # keyword
        ("Ærø hospital", 0.01, None, 4), ("ÆRØ Hospital", 0.02, "aero", 5), ("   ", None, None, 6),
    ]
    for text, score, doc, hour in asks:
        qlog.record(_record(iso(day + timedelta(hours=hour)), text, answer_score=score, top_doc_id=doc,
                            mode="keyword" if score is None else "hybrid", top5_doc_ids=(doc,) if doc else ()))
    assert qlog.flush()
    counts = qlog.period(day, cuts, 100)
    assert (counts.rows, counts.distinct) == (7, 2) and counts.seen_doc_ids == {"cpr", "other", "aero"}
    cpr, aero = counts.wordings
    assert (cpr.wording, cpr.text, cpr.asked, cpr.scored) == ("when was cpr introduced?", "When was CPR introduced?", 4, 3)
    assert cpr.last_seen == iso(day + timedelta(hours=3))
    assert cpr.answer_score == pytest.approx(0.35)  # the latest scored ask, not the keyword one after it
    assert cpr.answered == sum(s >= cuts.margin for s in (0.40, 0.10, 0.35))
    assert cpr.top_docs == (("cpr", 2), ("other", 1))
    assert (aero.wording, aero.asked, aero.top_docs) == ("ærø hospital", 2, (("aero", 1),))  # Danish letters casefolded
    assert qlog.period(day + timedelta(hours=4), cuts, 100).distinct == 1  # the period's start counts
    assert [w.wording for w in qlog.period(day, cuts, 1).wordings] == ["when was cpr introduced?"]


# ---- an old log file is migrated ---------------------------------------------------------------

def test_a_log_file_from_before_schema_versions_is_migrated(tmp_path):
    path = tmp_path / "querylog.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V1)
    at = iso(datetime.now(timezone.utc))
    conn.executemany(
        "INSERT INTO queries (at, kind, query, mode, filters, result_count, top5_doc_ids, index_version, answer_score)"
        " VALUES (?, 'search', ?, 'hybrid', '{}', 1, ?, 'v1', 0.3)",
        [(at, "Is 010203-1234 in  CPR?", json.dumps(["cpr"])), (at, "vat rate", "[]")])
    conn.commit()
    conn.close()
    qlog = QueryLog(path, 30)
    qlog.start()
    qlog.record(_record(query="after the upgrade"))
    assert qlog.flush()
    assert [r.query for r in qlog.read()] == ["after the upgrade", "vat rate", "Is [cpr] in  CPR?"]
    assert sql(str(path), "SELECT version FROM schema_version") == [(2,)]
    assert sql(str(path), "SELECT wording FROM queries ORDER BY id") == [
        ("is [cpr] in cpr?",), ("vat rate",), ("after the upgrade",)]
    sizes = [b for (b,) in sql(str(path), "SELECT row_bytes FROM queries ORDER BY id DESC")]
    assert sizes == [stored_values(r)["row_bytes"] for r in qlog.read()]  # the same size as a new row's
    qlog.close()
    again = QueryLog(path, 30)  # opening a current file changes nothing
    again.store.open()
    assert sql(str(path), "SELECT COUNT(*) FROM queries") == [(3,)]


# ---- logging never fails a search --------------------------------------------------------------

def test_an_unwritable_log_does_not_fail_the_search(tmp_path, settings, encoders, corpus_index_dir, caplog,
                                                    monkeypatch):
    import kb.insight.querylog.postgres_store as postgres_store

    monkeypatch.setattr(postgres_store, "CONNECT_TIMEOUT_SECONDS", 1)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log's folder should be")
    for broken in (str(blocker / "querylog.sqlite"), f"postgresql://kb@127.0.0.1:{free_port()}/nothing"):
        app = make_app(settings, encoders, corpus_index_dir, query_log_enabled=True, query_log_path=broken)
        qlog = app.extensions["kb_query_log"]
        with caplog.at_level(logging.ERROR, logger="kb.insight.querylog"):
            r = app.test_client().get("/api/search", query_string={"q": CPR})
            assert r.status_code == 200 and len(r.get_json()["results"]) == 10
            assert qlog.flush(timeout=30)
        assert qlog.stats.written == 0 and qlog.stats.failed + qlog.stats.dropped >= 1
        assert "query log write" in caplog.text
        qlog.close()


def test_a_postgresql_restart_loses_no_row(postgresql_server, postgresql_url):
    """The pool checks a connection before lending it, so the writer does not fail (and drop
    rows for RETRY_OPEN_SECONDS) on a connection the restart broke."""
    qlog = QueryLog(postgresql_url, 30)
    qlog.record(_record(query="before the restart"))
    assert qlog.flush()
    postgresql_server.restart()
    qlog.record(_record(query="after the restart"))
    assert [r.query for r in rows(qlog)] == ["before the restart", "after the restart"]
    assert (qlog.stats.failed, qlog.stats.dropped) == (0, 0)
    qlog.close()


def test_a_closed_database_does_not_fail_the_search(tmp_path, settings, encoders, corpus_index_dir, monkeypatch, caplog):
    qlog = QueryLog(tmp_path / "querylog.sqlite", retention_days=30)

    def closed_connection():
        conn = sqlite3.connect(":memory:")
        conn.close()
        return conn

    assert isinstance(qlog.store, SqliteStore)
    monkeypatch.setattr(qlog.store, "_connect", closed_connection)
    s = replace(settings, query_log_enabled=True)
    app = create_app({"TESTING": True, "SETTINGS": s, "QUERY_LOG": qlog,
                      "LIVE_INDEX": LiveIndex(corpus_index_dir, s, encoders)})
    with caplog.at_level(logging.ERROR, logger="kb.insight.querylog"):
        r = app.test_client().get("/", query_string={"q": CPR})
        assert r.status_code == 200 and b"civil-registration-system" in r.data
        assert qlog.flush()
    assert qlog.stats.written == 0 and qlog.stats.failed + qlog.stats.dropped == 1
    assert "closed database" in caplog.text
    qlog.close()


def test_a_broken_log_object_does_not_fail_the_search(tmp_path, settings, encoders, corpus_index_dir, monkeypatch,
                                                      caplog):
    app = make_app(settings, encoders, corpus_index_dir, query_log_enabled=True,
                   query_log_path=str(tmp_path / "querylog.sqlite"))
    qlog = app.extensions["kb_query_log"]
    monkeypatch.setattr(qlog, "record", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("log exploded")))
    with caplog.at_level(logging.ERROR):
        r = app.test_client().get("/api/search", query_string={"q": CPR})
    assert r.status_code == 200 and r.get_json()["results"]
    assert "request not logged" in caplog.text
    qlog.close()


def test_a_failed_answer_score_still_writes_the_row(new_log):
    """A row queued without its answer score (its enricher computes it on the writer thread) is
    written even when that fails."""
    qlog = new_log()

    def failing(rec):
        raise ValueError("no model")

    assert qlog.record(_record(query=CPR), failing)
    (row,) = rows(qlog)
    assert row.query == CPR and row.answer_score is None and qlog.stats.enrich_failed == 1


def _count_model_calls(embedder, monkeypatch, thread: str | None = None) -> list:
    """The texts of every model call from now on (only those from `thread`, when named)."""
    monkeypatch.setattr(embedder._queries, "_size", 0)  # no query cache: every encode runs the model
    calls = []

    def spy(texts, real=embedder.queries._encode):
        if thread is None or threading.current_thread().name == thread:
            calls.append(texts)
        return real(texts)

    monkeypatch.setattr(embedder.queries, "_encode", spy)
    return calls


def test_a_logged_search_runs_the_model_once(logged, embedder, monkeypatch):
    """The answer score reuses the search's query vector: with the query cache off (or evicted)
    the writer thread would otherwise encode every logged query again, halving throughput."""
    app, qlog = logged
    calls = _count_model_calls(embedder, monkeypatch)
    query = "Which Danish registry records every hospital contact since 1977, and who may use it?"
    assert app.test_client().get("/api/search", query_string={"q": query, "mode": "hybrid"}).status_code == 200
    (row,) = rows(qlog)
    assert row.answer_score is not None and row.top_dense_score is not None
    assert calls == [[query]]


def test_a_logged_keyword_search_never_runs_the_model(logged, embedder, monkeypatch):
    """Logging a keyword search must not make the writer thread encode the query (a flood of them
    would keep a core busy): the row stores the answer signal the request itself computed (the
    API returns it), or none."""
    app, qlog = logged
    calls = _count_model_calls(embedder, monkeypatch, thread="kb-querylog-writer")
    query = "hospital contact registry since 1977"
    assert app.test_client().get("/api/search", query_string={"q": query, "mode": "keyword"}).status_code == 200
    assert app.test_client().get("/", query_string={"q": query + " who", "mode": "keyword"}).status_code == 200
    first, second = rows(qlog)
    assert first.mode == "keyword" and first.result_count > 0
    assert calls == []


def test_recording_never_waits_for_the_writer(new_log):
    entered, release = threading.Event(), threading.Event()
    qlog = new_log(queue_size=1)

    def slow(rec):
        entered.set()
        release.wait(30)
        return rec

    assert qlog.record(_record(query="first"), slow)  # the writer takes it and blocks in `slow`
    assert entered.wait(10)
    assert qlog.record(_record(query="second"))  # fills the one-slot queue
    # Full: dropped at once. Had it waited for room it would never return, since only this test
    # releases the writer.
    assert not qlog.record(_record(query="third"))
    assert qlog.stats.dropped == 1
    release.set()
    assert [r.query for r in rows(qlog)] == ["first", "second"]


def test_kind_is_checked():
    with pytest.raises(ValueError):
        replace(_record(), kind="login")

"""The query log: a row per search and talking-points request, no client identifiers, retention,
off by configuration, and never a failed search because logging failed."""
import logging
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from kb.answer.signal import answer
from kb.search.live import LiveIndex
from kb.insight.querylog import QueryLog, QueryRecord, iso
from search_app import create_app

CPR = "When was the Danish personal identification number introduced?"
TAX = "What is the corporate tax rate in Denmark?"
CLIENT_IP, FORWARDED_IP, AGENT = "203.0.113.77", "198.51.100.23", "AgentSmith/9.9 (secret-device-id-4711)"


def make_app(settings, embedder, index_dir, **changes):
    s = replace(settings, **changes)
    return create_app({"TESTING": True, "SETTINGS": s, "INDEX_DIR": str(index_dir),
                       "LIVE_INDEX": LiveIndex(index_dir, s, embedder)})


@pytest.fixture()
def logged(tmp_path, settings, embedder, corpus_index_dir):
    app = make_app(settings, embedder, corpus_index_dir, query_log_enabled=True,
                   query_log_path=tmp_path / "log" / "querylog.sqlite")
    qlog = app.extensions["kb_query_log"]
    yield app, qlog
    qlog.close()


def rows(qlog):
    assert qlog.flush(timeout=60), "the writer did not drain its queue"
    return qlog.read()


def test_a_row_per_request_type(logged):
    app, qlog = logged
    client = app.test_client()
    api = client.get("/api/search", query_string={"q": CPR, "k": 7})
    page = client.get("/", query_string={"q": TAX, "mode": "keyword"})
    points = client.get("/api/talking-points", query_string={"topic": "registry data for research", "n": 5})
    points_page = client.get("/talking-points", query_string={"topic": "telehealth for COPD patients"})
    assert [r.status_code for r in (api, page, points, points_page)] == [200] * 4
    logged_rows = rows(qlog)
    assert [(r.kind, r.query) for r in logged_rows] == [
        ("search", CPR), ("search", TAX), ("talking_points", "registry data for research"),
        ("talking_points", "telehealth for COPD patients"),
    ]
    body = api.get_json()
    first = logged_rows[0]
    assert first.mode == body["mode"] and first.result_count == len(body["results"]) == 7
    assert first.top_doc_id == body["results"][0]["doc_id"]
    assert first.top5_doc_ids == tuple(r["doc_id"] for r in body["results"][:5])
    assert first.top_score == pytest.approx(body["results"][0]["score"], abs=1e-5)
    assert first.index_version == body["index_version"]
    assert first.filters == {"source_type": [], "organisation": []}
    assert logged_rows[1].mode == "keyword"
    tp = points.get_json()
    assert logged_rows[2].result_count == len(tp["points"]) == 5
    assert logged_rows[2].top_doc_id == tp["points"][0]["citation"]["doc_id"]
    now = datetime.now(timezone.utc)
    for r in logged_rows:
        at = datetime.fromisoformat(r.at)
        assert at.utcoffset() == timedelta(0) and now - timedelta(minutes=5) < at <= now
        assert r.answer_score is not None and r.top_dense_score is not None  # computed on the writer thread
    # The answer score tells the content team which questions went unanswered.
    # (128-token passages put the CPR question just under the "answered" cut, still above "thin".)
    index = app.extensions["kb_index"].get()
    cal = index.manifest["answer_threshold"]
    assert logged_rows[0].answer_score >= cal["thin_margin"] > logged_rows[1].answer_score
    # Scored from the search's own query vector, it equals a fresh computation.
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


def test_no_ip_address_or_client_detail_is_stored(logged):
    app, qlog = logged
    client = app.test_client()
    headers = {"X-Forwarded-For": f"{FORWARDED_IP}, {CLIENT_IP}", "X-Real-IP": FORWARDED_IP, "User-Agent": AGENT,
               "Cookie": "session=secret-device-id-4711"}
    for path, args in (("/api/search", {"q": CPR}), ("/", {"q": CPR}), ("/api/talking-points", {"topic": CPR})):
        r = client.get(path, query_string=args, headers=headers, environ_base={"REMOTE_ADDR": CLIENT_IP})
        assert r.status_code == 200
    assert len(rows(qlog)) == 3
    qlog.close()
    conn = sqlite3.connect(qlog.path)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables == ["queries"]
        columns = [c[1] for c in conn.execute("PRAGMA table_info(queries)")]
        assert not [c for c in columns if any(w in c.lower() for w in ("ip", "addr", "user", "agent", "client", "session"))]
        values = [str(v) for row in conn.execute("SELECT * FROM queries") for v in row]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for secret in (CLIENT_IP, FORWARDED_IP, "AgentSmith", "secret-device-id-4711"):
        assert not [v for v in values if secret in v]
    raw = b"".join(p.read_bytes() for p in qlog.path.parent.iterdir() if p.is_file())
    for secret in (CLIENT_IP, FORWARDED_IP, "AgentSmith", "secret-device-id-4711"):
        assert secret.encode() not in raw


def test_logging_disabled_by_configuration_writes_nothing(tmp_path, settings, embedder, corpus_index_dir):
    path = tmp_path / "off" / "querylog.sqlite"
    app = make_app(settings, embedder, corpus_index_dir, query_log_enabled=False, query_log_path=path)
    client = app.test_client()
    assert client.get("/api/search", query_string={"q": CPR}).status_code == 200
    assert client.get("/api/talking-points", query_string={"topic": CPR}).status_code == 200
    qlog = app.extensions["kb_query_log"]
    assert qlog.flush() and not path.exists() and not path.parent.exists()
    assert qlog.stats.written == 0


def _record(at: str = "", query: str = "q") -> QueryRecord:
    return QueryRecord(kind="search", query=query, mode="hybrid", filters={}, result_count=0, top_score=None,
                       top_dense_score=None, top_doc_id=None, top5_doc_ids=(), index_version="v", at=at)


def test_rows_past_retention_are_purged_at_start_up(tmp_path):
    path = tmp_path / "querylog.sqlite"
    now = datetime.now(timezone.utc)
    keep_all = QueryLog(path, retention_days=3650)  # ten years: nothing here is purged
    keep_all.record(_record(iso(now - timedelta(days=400)), "ancient"))
    keep_all.record(_record(iso(now - timedelta(days=31)), "old"))
    keep_all.record(_record(iso(now - timedelta(days=29)), "recent"))
    assert keep_all.flush()
    keep_all.close()
    assert [r.query for r in keep_all.read()] == ["ancient", "old", "recent"]

    restarted = QueryLog(path, retention_days=30)
    restarted.start()  # what create_app does
    assert restarted.flush()
    assert [r.query for r in restarted.read()] == ["recent"] and restarted.stats.purged == 2
    restarted.close()


def test_rows_past_retention_are_purged_periodically(tmp_path):
    now = [datetime.now(timezone.utc)]
    qlog = QueryLog(tmp_path / "querylog.sqlite", retention_days=7, purge_every_seconds=0.05, clock=lambda: now[0])
    qlog.record(_record(query="today"))
    assert qlog.flush() and [r.query for r in qlog.read()] == ["today"]
    now[0] += timedelta(days=8)  # time passes; no new request arrives
    deadline = time.monotonic() + 10
    while qlog.read() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert qlog.read() == [] and qlog.stats.purged == 1
    qlog.close()


def test_an_unwritable_log_does_not_fail_the_search(tmp_path, settings, embedder, corpus_index_dir, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log's folder should be")
    app = make_app(settings, embedder, corpus_index_dir, query_log_enabled=True,
                   query_log_path=blocker / "querylog.sqlite")
    qlog = app.extensions["kb_query_log"]
    with caplog.at_level(logging.ERROR, logger="kb.insight.querylog"):
        r = app.test_client().get("/api/search", query_string={"q": CPR})
        assert r.status_code == 200 and len(r.get_json()["results"]) == 10
        assert qlog.flush()
    assert qlog.stats.written == 0 and qlog.stats.failed + qlog.stats.dropped >= 1
    assert "query log write" in caplog.text
    qlog.close()


def test_a_closed_database_does_not_fail_the_search(tmp_path, settings, embedder, corpus_index_dir, monkeypatch, caplog):
    qlog = QueryLog(tmp_path / "querylog.sqlite", retention_days=30)

    def closed_connection():
        conn = sqlite3.connect(":memory:")
        conn.close()
        return conn

    monkeypatch.setattr(qlog, "_connect", closed_connection)
    s = replace(settings, query_log_enabled=True)
    app = create_app({"TESTING": True, "SETTINGS": s, "QUERY_LOG": qlog,
                      "LIVE_INDEX": LiveIndex(corpus_index_dir, s, embedder)})
    with caplog.at_level(logging.ERROR, logger="kb.insight.querylog"):
        r = app.test_client().get("/", query_string={"q": CPR})
        assert r.status_code == 200 and b"civil-registration-system" in r.data
        assert qlog.flush()
    assert qlog.stats.written == 0 and qlog.stats.failed + qlog.stats.dropped == 1
    assert "closed database" in caplog.text
    qlog.close()


def test_a_broken_log_object_does_not_fail_the_search(logged, monkeypatch, caplog):
    app, qlog = logged
    monkeypatch.setattr(qlog, "record", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("log exploded")))
    with caplog.at_level(logging.ERROR):
        r = app.test_client().get("/api/search", query_string={"q": CPR})
    assert r.status_code == 200 and r.get_json()["results"]
    assert "request not logged" in caplog.text


def test_a_failed_answer_score_still_writes_the_row(logged, monkeypatch):
    app, qlog = logged
    import kb.insight.querylog as querylog_module

    monkeypatch.setattr(querylog_module, "answer", lambda *args, **kw: (_ for _ in ()).throw(ValueError("no model")))
    assert app.test_client().get("/api/search", query_string={"q": CPR}).status_code == 200
    (row,) = rows(qlog)
    assert row.query == CPR and row.answer_score is None and qlog.stats.enrich_failed == 1


def test_a_logged_search_runs_the_model_once(logged, embedder, monkeypatch):
    """The answer score reuses the search's query vector: with the query cache off (or evicted)
    the writer thread would otherwise encode every logged query again, halving throughput."""
    app, qlog = logged
    monkeypatch.setattr(embedder._queries, "_size", 0)
    calls = []
    monkeypatch.setattr(embedder.queries, "_encode", lambda texts, real=embedder.queries._encode: calls.append(texts) or real(texts))
    query = "Which Danish registry records every hospital contact since 1977, and who may use it?"
    assert app.test_client().get("/api/search", query_string={"q": query, "mode": "hybrid"}).status_code == 200
    (row,) = rows(qlog)
    assert row.answer_score is not None and row.top_dense_score is not None
    assert calls == [[query]]


def test_recording_never_waits_for_the_writer(tmp_path):
    entered, release = threading.Event(), threading.Event()
    qlog = QueryLog(tmp_path / "querylog.sqlite", retention_days=30, queue_size=1)

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
    assert qlog.flush()
    assert [r.query for r in qlog.read()] == ["first", "second"]
    qlog.close()


def test_kind_is_checked():
    with pytest.raises(ValueError):
        replace(_record(), kind="login")


def test_a_record_has_no_field_for_who_asked(logged, corpus_index_dir):
    _, qlog = logged
    assert corpus_index_dir not in qlog.path.parents  # beside the index, not inside it: survives rebuilds
    assert set(QueryRecord.__dataclass_fields__) == {
        "kind", "query", "mode", "filters", "result_count", "top_score", "top_dense_score", "top_doc_id",
        "top5_doc_ids", "index_version", "answer_score", "at",
    }

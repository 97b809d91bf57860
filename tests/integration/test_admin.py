"""Content-team pages: off without a token, 401 without credentials, working with them; CSV parses."""
import csv
import hmac
import io
import itertools
import re
import sqlite3
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from kb.insight.coverage import load_topics
from kb.insight.csvexport import to_csv
from kb.search.live import LiveIndex
from search_app import create_app
from search_app.settings import WebSettings
from tests.conftest import CORPUS
from tests.fixtures.servers import create_database, drop_database, free_port

TOKEN = "test-admin-token-5b1f9c0e-a7d3e8f1c2b4"  # at least 32 characters, as KB_ADMIN_TOKEN must be
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ADMIN_PAGES = ("/admin/coverage", "/admin/questions", "/admin/coverage?format=csv", "/admin/questions?format=csv")


@pytest.fixture(scope="module")
def admin_app(tmp_path_factory, settings, encoders, corpus_index_dir):
    s = replace(settings, query_log_enabled=True,
                query_log_path=str(tmp_path_factory.mktemp("adminlog") / "querylog.sqlite"))
    app = create_app({"TESTING": True, "SETTINGS": s, "WEB_SETTINGS": WebSettings(admin_token=TOKEN),
                      "LIVE_INDEX": LiveIndex(corpus_index_dir, s, encoders)})
    yield app
    app.extensions["kb_query_log"].close()


_addresses = itertools.count(1)


def new_address() -> str:
    """A client address of its own (IPv6 documentation range), so one test's wrong tokens never
    count against another's in the sign-in throttle."""
    return f"2001:db8::{next(_addresses):x}"


@pytest.fixture()
def admin(admin_app):
    client = admin_app.test_client()
    client.environ_base["REMOTE_ADDR"] = new_address()
    return client


def _csv(response):
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.mark.parametrize("path", ADMIN_PAGES + ("/admin/login",))
def test_no_token_configured_means_no_admin_pages(client, path):
    assert client.get(path).status_code == 404
    assert client.get(path, headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.parametrize("path", ADMIN_PAGES)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer"},
                                     {"Cookie": f"kb_admin={TOKEN}"}])
def test_wrong_or_missing_credentials_get_401(admin, path, headers):
    r = admin.get(path, headers=headers)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.get_json()["error"]["code"] == "unauthorized"
    assert TOKEN not in r.get_data(as_text=True)


def test_a_browser_without_credentials_gets_the_login_form(admin):
    r = admin.get("/admin/questions?days=7", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 401 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert 'type="password"' in page and 'value="/admin/questions?days=7"' in page


def test_the_token_is_compared_in_constant_time(admin, monkeypatch):
    import search_app.admin as admin_module

    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(admin_module.hmac, "compare_digest", spy)
    assert admin.get("/admin/coverage?format=json", headers=BEARER).status_code == 200
    assert admin.get("/admin/coverage?format=json", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert (TOKEN.encode(), TOKEN.encode()) in calls and (b"nope", TOKEN.encode()) in calls


def test_coverage_page_with_table_and_chart(admin):
    r = admin.get("/admin/coverage", headers=BEARER)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    page = r.get_data(as_text=True)
    topics = load_topics(CORPUS / "topics.yaml")
    assert page.count('<g class="bar ') == len(topics) and "<svg" in page and "<table" in page
    assert 'class="cut cut-covered"' in page and 'class="cut cut-thin"' in page
    assert "<script" not in page.split("</head>")[1] and " style=" not in page  # CSP-ready: no inline script or style
    for t in topics[:5]:
        assert t.topic.replace("'", "&#39;") in page


def test_coverage_csv_parses_and_is_sorted(admin):
    rows = _csv(admin.get("/admin/coverage?format=csv", headers=BEARER))
    topics = load_topics(CORPUS / "topics.yaml")
    assert {r["topic"] for r in rows} == {t.topic for t in topics}
    assert {r["verdict"] for r in rows} <= {"covered", "thin", "gap"}
    scores = [float(r["answer_score"]) for r in rows]
    assert scores == sorted(scores)
    assert all(r["best_doc_id"] and r["best_url"].startswith("http") for r in rows)


def test_login_form_sets_a_safe_cookie(admin):
    r = admin.post("/admin/login", data={"token": TOKEN, "next": "https://evil.example/steal"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/admin/coverage")  # no open redirect
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert TOKEN not in cookie  # the cookie proves the token without holding it
    assert admin.get("/admin/questions").status_code == 200  # the test client keeps the cookie
    r = admin.post("/admin/logout")
    assert r.status_code == 303
    assert admin.get("/admin/questions").status_code == 401


def test_login_with_a_wrong_token_is_refused(admin):
    r = admin.post("/admin/login", data={"token": "guess", "next": "/admin/questions"})
    assert r.status_code == 401 and "Set-Cookie" not in r.headers
    assert "not right" in r.get_data(as_text=True)


def test_bad_period_is_a_400(admin):
    assert admin.get("/admin/questions?days=0", headers=BEARER).status_code == 400
    assert admin.get("/admin/questions?days=abc", headers=BEARER).status_code == 400
    assert admin.get("/admin/questions?format=csv&table=secrets", headers=BEARER).status_code == 400


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def questions_app(request, tmp_path_factory, settings, encoders, corpus_index_dir):
    """An admin app over an empty query log in each store."""
    if request.param == "sqlite":
        location, server = str(tmp_path_factory.mktemp("questionslog") / "querylog.sqlite"), None
    else:
        server = request.getfixturevalue("postgresql_server")
        location = create_database(server, "admin")
    app = _admin_app(settings, encoders, corpus_index_dir, location)
    yield app
    app.extensions["kb_query_log"].close()
    if server is not None:
        drop_database(server, location)


def _admin_app(settings, encoders, corpus_index_dir, location: str):
    s = replace(settings, query_log_enabled=True, query_log_path=location)
    return create_app({"TESTING": True, "SETTINGS": s, "WEB_SETTINGS": WebSettings(admin_token=TOKEN),
                       "LIVE_INDEX": LiveIndex(corpus_index_dir, s, encoders)})


def test_questions_page_groups_near_duplicates_and_finds_unanswered_ones(questions_app):
    admin = questions_app.test_client()
    asks = [
        "When was the CPR number introduced?", "When was the CPR number introduced?", "when was cpr introduced",
        "What is the corporate tax rate in Denmark?", "danish corporate tax rate",
        "telehealth for COPD patients",
    ]
    for q in asks:
        assert admin.get("/api/search", query_string={"q": q, "k": 5}).status_code == 200
    assert admin.get("/api/talking-points", query_string={"topic": "=HYPERLINK(\"http://x\")"}).status_code == 200
    assert admin.get("/api/search", query_string={"q": "corporate tax rate", "mode": "keyword"}).status_code == 200
    assert questions_app.extensions["kb_query_log"].flush(timeout=60)

    page = admin.get("/admin/questions", headers=BEARER)
    assert page.status_code == 200 and "What people ask" in page.get_data(as_text=True)

    unanswered = _csv(admin.get("/admin/questions?format=csv&table=unanswered", headers=BEARER))
    tax = [r for r in unanswered if "corporate tax" in r["question"]]
    assert any(r["asked"] == "2" and r["wordings"] == "2" for r in tax)  # two wordings grouped as one need
    assert not [r for r in unanswered if "CPR" in r["question"] or "COPD" in r["question"]]

    popular = _csv(admin.get("/admin/questions?format=csv&table=popular", headers=BEARER))
    assert popular[0]["question"] == "When was the CPR number introduced?"
    assert popular[0]["asked"] == "3" and popular[0]["variants"] == "when was cpr introduced"
    assert popular[0]["top_doc_id"] == "civil-registration-system" and float(popular[0]["answered_share"]) == 1.0
    formula = [r for r in popular if "HYPERLINK" in r["question"]]
    assert formula and formula[0]["question"].startswith("'=")  # defused for spreadsheets
    keyword = [r for r in popular if r["question"] == "corporate tax rate"]  # scored by the request itself
    assert keyword and keyword[0]["answer_score"] != "" and float(keyword[0]["answered_share"]) == 0.0

    weak = _csv(admin.get("/admin/questions?format=csv&table=weak", headers=BEARER))
    assert {r["question"] for r in weak}.isdisjoint({r["question"] for r in unanswered})

    unseen = _csv(admin.get("/admin/questions?format=csv&table=unseen_documents", headers=BEARER))
    unseen_ids = {r["doc_id"] for r in unseen}
    assert "civil-registration-system" not in unseen_ids and "telehealth-copd" not in unseen_ids
    assert unseen_ids and unseen_ids < set(questions_app.extensions["kb_index"].get().documents)


# ---- sign-in: token rules, sessions, sign-out, throttle, where it goes next ---------------------

def _login(client, token=TOKEN, next_url="/admin/questions"):
    return client.post("/admin/login", data={"token": token, "next": next_url})


def _cookie_of(response) -> str:
    name, _, rest = response.headers["Set-Cookie"].partition("=")
    assert name == "kb_admin"
    return rest.split(";", 1)[0]


def _holding(app, cookie: str):
    """A fresh browser (own address) that holds `cookie`, as one that kept it would."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = new_address()
    client.set_cookie("kb_admin", cookie, path="/admin")
    return client


def _with_cookie(app, cookie: str):
    return _holding(app, cookie).get("/admin/questions")


@pytest.fixture()
def second_worker(admin_app):
    """Another app on the same settings: what a second gunicorn worker is (nothing in memory shared)."""
    app = create_app({"TESTING": True, "SETTINGS": admin_app.config["SETTINGS"],
                      "WEB_SETTINGS": WebSettings(admin_token=TOKEN), "LIVE_INDEX": admin_app.extensions["kb_index"]})
    yield app
    app.extensions["kb_query_log"].close()


def test_a_blank_token_turns_the_admin_pages_off_instead_of_allowing_a_blank_sign_in(settings, corpus_index_dir,
                                                                                   encoders):
    web = WebSettings.from_env({"KB_ADMIN_TOKEN": " \t "})
    assert web.admin_token == ""
    app = create_app({"TESTING": True, "SETTINGS": settings, "WEB_SETTINGS": web,
                      "LIVE_INDEX": LiveIndex(corpus_index_dir, settings, encoders)})
    client = app.test_client()
    assert client.get("/admin/login").status_code == 404
    assert client.post("/admin/login", data={"token": " \t ", "next": "/admin/coverage"}).status_code == 404
    assert client.post("/admin/login", data={"token": "", "next": "/admin/coverage"}).status_code == 404
    assert client.get("/admin/coverage?format=json", headers={"Authorization": "Bearer  \t "}).status_code == 404


def test_each_sign_in_is_its_own_signed_session_not_a_fixed_proof_of_the_token(admin):
    first, second = _cookie_of(_login(admin)), _cookie_of(_login(admin))
    assert first != second  # a fixed HMAC of the token would be the same every time
    assert TOKEN not in first and admin.get("/admin/questions").status_code == 200
    assert "Max-Age=28800" in _login(admin).headers["Set-Cookie"]


def test_a_session_cookie_expires_after_eight_hours(admin_app, admin, monkeypatch):
    from itsdangerous.timed import TimestampSigner

    real = TimestampSigner.get_timestamp
    with monkeypatch.context() as m:  # a cookie signed 8 hours and a minute ago
        m.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 8 * 3600 - 60)
        stale = _cookie_of(_login(admin))
    with monkeypatch.context() as m:  # and one signed 7 h 59 min ago
        m.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - 8 * 3600 + 60)
        almost = _cookie_of(_login(admin))
    assert _with_cookie(admin_app, stale).status_code == 401
    assert _with_cookie(admin_app, almost).status_code == 200
    assert _with_cookie(admin_app, stale[:-2] + ("AA" if not stale.endswith("AA") else "BB")).status_code == 401


def test_sign_out_ends_the_session_on_every_worker(admin_app, second_worker, admin):
    cookie = _cookie_of(_login(admin))
    assert _with_cookie(admin_app, cookie).status_code == 200
    assert _with_cookie(second_worker, cookie).status_code == 200  # signed in on one worker, valid on all

    other = _cookie_of(_login(admin))  # someone else's session stays valid
    out = _holding(second_worker, cookie).post("/admin/logout")
    assert out.status_code == 303
    assert _with_cookie(second_worker, cookie).status_code == 401
    assert _with_cookie(admin_app, cookie).status_code == 401  # the worker that issued it heard of the sign-out
    assert _with_cookie(admin_app, other).status_code == 200


def test_wrong_tokens_are_throttled_per_address_with_growing_waits(admin_app):
    """No KB_RATE_LIMIT here: the sign-in throttle holds on its own."""
    assert "kb_rate_limiter" not in admin_app.extensions
    me, someone_else = admin_app.test_client(), admin_app.test_client()
    me.environ_base["REMOTE_ADDR"], someone_else.environ_base["REMOTE_ADDR"] = new_address(), new_address()
    wrong = [_login(me, token="guess-" + str(i) * 40).status_code for i in range(6)]
    assert wrong == [401] * 6

    locked = _login(me)  # even the right token waits now: guessing must not go on meanwhile
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1 and "Set-Cookie" not in locked.headers
    assert "Too many wrong tokens" in locked.get_data(as_text=True) and 'type="password"' in locked.get_data(as_text=True)
    bearer = me.get("/admin/coverage?format=json", headers=BEARER)
    assert bearer.status_code == 429 and bearer.get_json()["error"]["code"] == "too_many_attempts"
    assert _login(someone_else).status_code == 303  # per address

    time.sleep(int(locked.headers["Retry-After"]) + 0.2)
    assert _login(me, token="still-wrong" * 4).status_code == 401
    second_lock = _login(me)
    assert second_lock.status_code == 429 and int(second_lock.headers["Retry-After"]) >= 2  # twice as long
    time.sleep(int(second_lock.headers["Retry-After"]) + 0.2)
    assert _login(me).status_code == 303  # the right token, once the wait is over, clears the count
    assert _login(me, token="wrong" * 8).status_code == 401


def test_wrong_bearer_tokens_count_as_sign_in_attempts(admin_app):
    client = admin_app.test_client()
    client.environ_base["REMOTE_ADDR"] = new_address()
    statuses = [client.get("/admin/coverage?format=json", headers={"Authorization": f"Bearer guess{i}"}).status_code
                for i in range(7)]
    assert statuses == [401] * 6 + [429]
    assert _login(client).status_code == 429


def test_the_lock_out_doubles_up_to_fifteen_minutes():
    from limits.storage import MemoryStorage

    from search_app.signin import SignInThrottle

    throttle = SignInThrottle(MemoryStorage())
    assert [throttle.lock_seconds(n) for n in range(1, 12)] == [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32]
    assert throttle.lock_seconds(16) == 900 and throttle.lock_seconds(10_000) == 900


@pytest.mark.parametrize("next_url, goes_to", [
    ("/admin/questions?days=7", "/admin/questions?days=7"),
    ("/admin/./questions", "/admin/questions"),
    ("/admin/coverage/../questions?days=7", "/admin/questions?days=7"),
    ("/admin/../?q=x", "/admin/coverage"),
    ("/admin/../../etc/passwd", "/admin/coverage"),
    ("/admin/%2e%2e/?q=x", "/admin/coverage"),
    ("/admin/questions\r\nSet-Cookie: kb_admin=forged", "/admin/coverage"),
    ("/admin/questions\nX-Evil: 1", "/admin/coverage"),
    ("/admin/questions%0d%0aX-Evil: 1", "/admin/coverage"),
    ("/admin/questions?days=7\r\n", "/admin/coverage"),
    ("/admin/questions\x00", "/admin/coverage"),
    ("/admin\\..\\..\\", "/admin/coverage"),
    ("//evil.example/admin/", "/admin/coverage"),
    ("https://evil.example/admin/", "/admin/coverage"),
    ("/admin/login", "/admin/coverage"),
    ("/admin", "/admin/coverage"),
    ("/admin/questions?q=æ ø", "/admin/questions?q=%C3%A6%20%C3%B8"),
])
def test_after_sign_in_the_browser_only_goes_to_a_path_under_admin(admin, next_url, goes_to):
    r = _login(admin, next_url=next_url)
    assert r.status_code == 303 and r.headers["Location"] == goes_to
    assert "X-Evil" not in r.headers and r.headers.getlist("Set-Cookie")[0].startswith("kb_admin=")
    assert len(r.headers.getlist("Set-Cookie")) == 1


# ---- CSV for a Danish spreadsheet -------------------------------------------------------------

FORMULA_QUESTIONS = ("registry;=1+1", "cpr,@SUM(A1:A9)", "telehealth\t-2+3", "copd; +cmd|' /C calc'!A0",
                     "=HYPERLINK(\"http://x\")")


def _segments(line: str) -> list[str]:
    """What a spreadsheet that ignores quotes could make cells of: the line split at ; , and tab."""
    return [s.strip(' "') for s in re.split(r"[;,\t]", line)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_every_cell_is_quoted_and_every_segment_defused_numbers_kept():
    text = to_csv(("question", "score", "count"),
                  [(q, -0.25, 3) for q in FORMULA_QUESTIONS] + [("plain; text, here", 0.5, -1), (None, 1.0, 0)])
    lines = text.split("\r\n")[:-1]
    for line in lines:
        assert line.startswith('"') and line.endswith('"')  # every cell quoted
        for segment in _segments(line):
            assert not segment.startswith(("=", "+", "-", "@")) or _is_number(segment), (line, segment)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ["registry;'=1+1", "-0.25", "3"]  # numbers as numbers: no apostrophe
    assert rows[2][0] == "cpr,'@SUM(A1:A9)" and rows[3][0] == "telehealth\t'-2+3"
    assert rows[4][0] == "copd; '+cmd|' /C calc'!A0" and rows[5][0] == "'=HYPERLINK(\"http://x\")"
    assert rows[6] == ["plain; text, here", "0.5", "-1"] and rows[7] == ["", "1.0", "0"]
    assert list(csv.reader(io.StringIO(text), delimiter=";"))  # a Danish reading parses too


def test_the_questions_export_defuses_formulas_after_a_semicolon(admin_app, admin):
    for q in FORMULA_QUESTIONS:
        assert admin.get("/api/search", query_string={"q": q, "k": 3}).status_code == 200
    assert admin_app.extensions["kb_query_log"].flush(timeout=60)
    r = admin.get("/admin/questions?format=csv&table=popular&days=1", headers=BEARER)
    text = r.get_data(as_text=True)
    assert '"registry;\'=1+1"' in text and "registry;=1+1" not in text
    for line in text.split("\r\n")[:-1]:
        assert line.startswith('"')
        for segment in _segments(line):
            assert not segment.startswith(("=", "+", "-", "@")) or _is_number(segment), (line, segment)
    questions = {row["question"] for row in _csv(r)}
    assert {"registry;'=1+1", "cpr,'@SUM(A1:A9)"} <= questions


def test_sign_outs_go_to_a_shared_store_when_one_is_configured(tmp_path):
    """With memory:// (per process) sign-outs go to the file beside the query log; with any other
    limits store they go to that store, which replicas share. A MemoryStorage stands in for redis here
    only to check the calls; no redis server runs in the tests."""
    from limits.storage import MemoryStorage

    from search_app.signin import FileSignOuts, SharedSignOuts, build_sign_in

    local = build_sign_in(TOKEN, MemoryStorage(), tmp_path / "querylog.sqlite")
    assert isinstance(local.sign_outs, FileSignOuts) and local.sign_outs.path.parent == tmp_path

    shared = SharedSignOuts(MemoryStorage())
    assert not shared.revoked("abc")
    shared.revoke("abc", time.time() + 60)
    assert shared.revoked("abc") and not shared.revoked("abd")


def test_the_questions_page_counts_in_the_database_and_caches_on_the_newest_row(questions_app, monkeypatch):
    """The page used to read every row of the period (and regroup them) on every request; now
    the database aggregates, and the grouped report is reused until a row is written."""
    admin = questions_app.test_client()
    qlog = questions_app.extensions["kb_query_log"]
    monkeypatch.setattr(qlog, "read", lambda *a, **k: pytest.fail("the questions page read the log's rows"))
    computed = []
    monkeypatch.setattr(qlog, "period", lambda *a, real=getattr(qlog, "period", None): computed.append(1) or real(*a),
                        raising=False)
    assert admin.get("/api/search", query_string={"q": "hospital waiting times"}).status_code == 200
    assert qlog.flush(timeout=60)
    for path in ("/admin/questions?days=7", "/admin/questions?days=7&format=csv&table=weak",
                 "/admin/questions?days=7&format=csv"):
        assert admin.get(path, headers=BEARER).status_code == 200
    assert len(computed) == 1  # one aggregation for the page and both exports
    assert admin.get("/api/search", query_string={"q": "hospital waiting times?"}).status_code == 200
    assert qlog.flush(timeout=60)
    popular = _csv(admin.get("/admin/questions?days=7&format=csv", headers=BEARER))
    assert len(computed) == 2  # a new row: counted again
    assert [r["asked"] for r in popular if r["question"].startswith("hospital waiting times")] == ["2"]


def test_typed_personal_data_never_reaches_the_page_or_the_csv(questions_app):
    admin = questions_app.test_client()
    typed = "is 010203-1234 in the civil registration system? mail jens@example.dk"
    assert admin.get("/api/search", query_string={"q": typed}).status_code == 200
    assert questions_app.extensions["kb_query_log"].flush(timeout=60)
    page = admin.get("/admin/questions", headers=BEARER).get_data(as_text=True)
    export = admin.get("/admin/questions?format=csv&table=popular", headers=BEARER).get_data(as_text=True)
    for shown in (page, export):
        assert "is [cpr] in the civil registration system? mail [email]" in shown
        assert "010203-1234" not in shown and "jens@example.dk" not in shown


def test_the_newest_questions_show_past_200000_rows(tmp_path, settings, encoders, corpus_index_dir):
    """The report read at most 200,000 rows, oldest first, so a busy log hid every new question."""
    from kb.insight.querylog.sqlite_store import SCHEMA_V1

    path = tmp_path / "querylog.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V1)  # a log as the previous version wrote it
    old = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat(timespec="seconds")
    conn.executemany("INSERT INTO queries (at, kind, query, mode, filters, result_count, top5_doc_ids, index_version)"
                     " VALUES (?, 'search', 'vat rate', 'keyword', '{}', 0, '[]', 'v')", ((old,) for _ in range(200_001)))
    conn.commit()
    conn.close()
    app = _admin_app(settings, encoders, corpus_index_dir, str(path))
    admin = app.test_client()
    assert admin.get("/api/search", query_string={"q": "brand new question about telehealth"}).status_code == 200
    assert app.extensions["kb_query_log"].flush(timeout=120)
    popular = {r["question"]: r["asked"] for r in _csv(admin.get("/admin/questions?format=csv", headers=BEARER))}
    assert popular == {"vat rate": "200001", "brand new question about telehealth": "1"}
    app.extensions["kb_query_log"].close()


def test_an_unreachable_log_gives_a_503_not_a_500(settings, encoders, corpus_index_dir, monkeypatch):
    import kb.insight.querylog.postgres_store as postgres_store

    monkeypatch.setattr(postgres_store, "CONNECT_TIMEOUT_SECONDS", 1)
    app = _admin_app(settings, encoders, corpus_index_dir, f"postgresql://kb:pw-secret@127.0.0.1:{free_port()}/kb")
    admin = app.test_client()
    page = admin.get("/admin/questions", headers={**BEARER, "Accept": "text/html"})
    export = admin.get("/admin/questions?format=csv", headers=BEARER)
    assert page.status_code == 503 and "cannot be read" in page.get_data(as_text=True)
    assert export.status_code == 503 and export.get_json()["error"]["code"] == "query_log_unavailable"
    assert "pw-secret" not in page.get_data(as_text=True) + export.get_data(as_text=True)
    app.extensions["kb_query_log"].close()

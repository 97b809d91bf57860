"""Content-team pages: off without a token, 401 without credentials, working with them; CSV parses."""
import csv
import hmac
import io
from dataclasses import replace

import pytest

from kb.insight.coverage import load_topics
from kb.search.live import LiveIndex
from search_app import create_app
from search_app.settings import WebSettings
from tests.conftest import CORPUS

TOKEN = "test-admin-token-5b1f9c0e-a7d3e8f1c2b4"  # at least 32 characters, as KB_ADMIN_TOKEN must be
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ADMIN_PAGES = ("/admin/coverage", "/admin/questions", "/admin/coverage?format=csv", "/admin/questions?format=csv")


@pytest.fixture(scope="module")
def admin_app(tmp_path_factory, settings, embedder, corpus_index_dir):
    s = replace(settings, query_log_enabled=True,
                query_log_path=tmp_path_factory.mktemp("adminlog") / "querylog.sqlite")
    app = create_app({"TESTING": True, "SETTINGS": s, "WEB_SETTINGS": WebSettings(admin_token=TOKEN),
                      "LIVE_INDEX": LiveIndex(corpus_index_dir, s, embedder)})
    yield app
    app.extensions["kb_query_log"].close()


@pytest.fixture()
def admin(admin_app):
    return admin_app.test_client()


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


def test_questions_page_groups_near_duplicates_and_finds_unanswered_ones(admin_app, admin):
    asks = [
        "When was the CPR number introduced?", "When was the CPR number introduced?", "when was cpr introduced",
        "What is the corporate tax rate in Denmark?", "danish corporate tax rate",
        "telehealth for COPD patients",
    ]
    for q in asks:
        assert admin.get("/api/search", query_string={"q": q, "k": 5}).status_code == 200
    assert admin.get("/api/talking-points", query_string={"topic": "=HYPERLINK(\"http://x\")"}).status_code == 200
    assert admin_app.extensions["kb_query_log"].flush(timeout=60)

    page = admin.get("/admin/questions", headers=BEARER)
    assert page.status_code == 200 and "What people ask" in page.get_data(as_text=True)

    unanswered = _csv(admin.get("/admin/questions?format=csv&table=unanswered", headers=BEARER))
    tax = [r for r in unanswered if "corporate tax" in r["question"]]
    assert len(tax) == 1 and tax[0]["asked"] == "2" and tax[0]["wordings"] == "2"  # grouped as one need
    assert not [r for r in unanswered if "CPR" in r["question"] or "COPD" in r["question"]]

    popular = _csv(admin.get("/admin/questions?format=csv&table=popular", headers=BEARER))
    assert popular[0]["question"] == "When was the CPR number introduced?"
    assert popular[0]["asked"] == "3" and popular[0]["variants"] == "when was cpr introduced"
    assert popular[0]["top_doc_id"] == "civil-registration-system" and float(popular[0]["answered_share"]) == 1.0
    formula = [r for r in popular if "HYPERLINK" in r["question"]]
    assert formula and formula[0]["question"].startswith("'=")  # defused for spreadsheets

    weak = _csv(admin.get("/admin/questions?format=csv&table=weak", headers=BEARER))
    assert {r["question"] for r in weak}.isdisjoint({r["question"] for r in unanswered})

    unseen = _csv(admin.get("/admin/questions?format=csv&table=unseen_documents", headers=BEARER))
    unseen_ids = {r["doc_id"] for r in unseen}
    assert "civil-registration-system" not in unseen_ids and "telehealth-copd" not in unseen_ids
    assert unseen_ids and unseen_ids < set(admin_app.extensions["kb_index"].get().documents)

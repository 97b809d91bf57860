"""/admin/coverage shows stale content and the last builds below the topics."""
import re

import pytest
from bs4 import BeautifulSoup

from kb.insight import build_history
from tests.fixtures.stale_admin import CHANGED_SOURCE, GONE_SOURCE, HOSTILE_DETAIL, TOKEN, build_stale_admin_app

BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def stale_admin(tmp_path_factory, corpus_docs, embedder, settings):
    app, root = build_stale_admin_app(tmp_path_factory.mktemp("stale-admin"), corpus_docs, embedder, settings)
    return app.test_client(), root


def _section(page: str, section_id: str) -> BeautifulSoup:
    found = BeautifulSoup(page, "html.parser").find(id=section_id)
    assert found is not None, f"no #{section_id} on the page"
    return found


def test_the_coverage_page_lists_old_pages_flagged_pages_and_dated_facts(stale_admin):
    client, _ = stale_admin
    r = client.get("/admin/coverage", headers=BEARER)
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    stale = _section(page, "stale")
    tables = stale.find_all("table")
    old_rows = [tr.get_text(" ", strip=True) for tr in tables[0].find_all("tr")[1:]]
    assert len(old_rows) == 1 and "Denmark sets the agenda for digital healthcare" in old_rows[0] and "2021-01-01" in old_rows[0]
    flagged = [tr.get_text(" ", strip=True) for tr in tables[1].find_all("tr")[1:]]
    assert any("2024 health reform" in row and CHANGED_SOURCE in row and "changed since 2026-11-20" in row for row in flagged)
    assert any(GONE_SOURCE in row and "gone since 2026-11-21" in row for row in flagged)
    facts = tables[2].get_text(" ", strip=True)
    assert "8,085,603" in facts and "2012" in facts
    link = tables[2].find("a")["href"]
    assert re.search(r"/doc/[\w-]+\?start=\d+&(amp;)?end=\d+#cited", link)
    assert HOSTILE_DETAIL not in page and "&lt;script&gt;" in page  # what a source said is shown as text
    assert " style=" not in page and "<script" not in page.split("</head>")[1]


def test_the_coverage_page_shows_the_last_builds(stale_admin):
    client, root = stale_admin
    page = client.get("/admin/coverage", headers=BEARER).get_data(as_text=True)
    rows = _section(page, "builds").find_all("tr")[1:]
    history = build_history(root)
    assert len(rows) == len(history) == 2
    newest = rows[0].get_text(" ", strip=True)
    assert history[0].build_id in newest and "live" in newest and "0 / 1 / 0" in newest and "medcom" in newest
    assert "not known" in rows[1].get_text(" ", strip=True)


def test_the_json_carries_the_stale_lists(stale_admin):
    client, _ = stale_admin
    data = client.get("/admin/coverage?format=json", headers=BEARER).get_json()
    assert [p["doc_id"] for p in data["staleness"]["old_pages"]] == ["digital-healthcare-denmark"]
    assert {f["doc_id"] for f in data["staleness"]["flagged"]} == {"health-reform-2024"}
    assert data["staleness"]["refreshed_at"].startswith("2026-11-21") and data["topics"]


def test_no_refresh_yet_says_so(stale_admin, tmp_path):
    client, _ = stale_admin
    app = client.application
    settings = app.config["SETTINGS"]
    try:
        app.config["SETTINGS"] = settings.replace(refresh_dir=tmp_path)
        page = client.get("/admin/coverage", headers=BEARER).get_data(as_text=True)
    finally:
        app.config["SETTINGS"] = settings
    assert "No source refresh has run yet" in _section(page, "stale").get_text(" ")

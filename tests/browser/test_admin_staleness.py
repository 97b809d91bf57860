"""In headless Chromium: the content team signs in and finds a page with an old `as_of` on /admin/coverage,
with the pages whose sources changed and the last builds below it."""
from __future__ import annotations

import pytest

from tests.browser.test_e2e import DESKTOP, _need_browser, _Server, browser  # noqa: F401 (browser: a fixture)
from tests.fixtures.stale_admin import CHANGED_SOURCE, TOKEN, build_stale_admin_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def stale_server(tmp_path_factory, corpus_docs, embedder, settings):
    _need_browser()
    app, _ = build_stale_admin_app(tmp_path_factory.mktemp("stale-browser"), corpus_docs, embedder, settings)
    s = _Server(app)
    yield s.url
    s.close()


def test_an_old_page_shows_on_the_coverage_page(browser, stale_server, tmp_path):  # noqa: F811
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{stale_server}/admin/coverage")
        page.fill("input[type=password]", TOKEN)
        page.click("form.admin-login button[type=submit]")
        page.wait_for_url(f"{stale_server}/admin/coverage")
        old = page.locator("#stale table").nth(0).locator("tbody tr")
        assert old.count() == 1
        row = old.first.inner_text()
        assert "Denmark sets the agenda for digital healthcare" in row and "2021-01-01" in row
        assert old.first.locator("a").is_visible()
        flagged = page.locator("#stale table").nth(1).inner_text()
        assert "The 2024 health reform" in flagged and CHANGED_SOURCE in flagged
        assert page.locator("#builds tbody tr").count() == 2
        page.locator("#stale").screenshot(path=str(tmp_path / "stale.png"))  # it renders
        old.first.locator("a").click()
        page.wait_for_url("**/doc/digital-healthcare-denmark")
        assert "Denmark sets the agenda" in page.locator("h1").inner_text()
        assert errors == []
    finally:
        context.close()

"""A crawl from several start URLs (what `indexer refresh` asks for each site): one robots.txt, one
per-host delay and one budget for all of them, each start URL at depth 0."""
import pytest

from indexer.crawl import CrawlSettings, crawl
from tests.fixtures.crawl_site import CrawlSite, html_page


def test_several_start_urls_share_robots_and_the_delay(tmp_path):
    routes = {"/robots.txt": "User-agent: *\nDisallow: /private/\n",
              "/a": html_page("A", ["/a/child"], "<p>Page a.</p>"), "/a/child": html_page("A child", [], "<p>c</p>"),
              "/b": html_page("B", [], "<p>Page b.</p>"), "/private/x": html_page("X", [], "<p>x</p>")}
    with CrawlSite(routes) as site:
        settings = CrawlSettings(depth=0, delay=0.3, timeout=5, allow_private=True, allow_ports=(site.port,))
        report = crawl([site.url("/a"), site.url("/b"), site.url("/a"), site.url("/private/x")], tmp_path, settings)
        assert site.wait_idle()
        paths = site.paths()
        times = [r.time for r in site.requests]
    assert paths.count("/robots.txt") == 1 and paths.count("/a") == 1  # the repeated start URL once
    assert {p.url.rsplit("/", 1)[-1] for p in report.saved} == {"a", "b"} and all(p.depth == 0 for p in report.saved)
    assert "/a/child" not in paths  # depth 0: start URLs only
    assert [s.reason for s in report.skipped] == ["robots"]
    assert all(later - earlier >= 0.29 for earlier, later in zip(times, times[1:]))


def test_every_start_url_must_be_in_scope(tmp_path):
    with pytest.raises(ValueError, match="'evil.example' is not within the allowed domains"):
        crawl(["https://example.org/", "https://evil.example/"], tmp_path, CrawlSettings(allow_domains=("example.org",)))
    with pytest.raises(ValueError, match="no start URL"):
        crawl([], tmp_path, CrawlSettings())

"""Tests for indexer.crawl against local servers on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest

import indexer.crawl as crawl_mod
from indexer import cli
from indexer.crawl import addresses
from indexer.terminal import terminal_safe
from indexer.crawl import (
    DEFAULT_USER_AGENT,
    CrawlSettings,
    crawl,
    host_allowed,
    is_blocked_ip,
    normalize_url,
)

try:
    from crawl_site import CrawlSite, Route, html_page, local_site  # noqa: F401  (fixture)
except ImportError:  # tests/ turned into a package
    from tests.fixtures.crawl_site import CrawlSite, Route, html_page, local_site  # noqa: F401

MAX_BYTES = 100_000
STREAM_LIMIT = 64 * 1024 * 1024  # the "endless" page gives up after this many bytes
SIDECAR_KEYS = {"url", "final_url", "fetched_at", "status", "content_type", "sha256", "depth"}


def make_settings(site: CrawlSite | None = None, **kw) -> CrawlSettings:
    """Test settings; ``site`` names the local site whose (random, high) port the crawl may use."""
    base = dict(depth=2, delay=0.0, allow_private=True, timeout=5.0, max_seconds=30.0, max_bytes=MAX_BYTES,
                allow_ports=(site.port,) if site is not None else ())
    base.update(kw)
    return CrawlSettings(**base)


def endless_html():
    yield b"<!DOCTYPE html><html><body>"
    chunk = b"<p>" + b"x" * 65_000 + b"</p>\n"
    sent = 0
    while sent < STREAM_LIMIT:
        yield chunk
        sent += len(chunk)


DUP_BODY = html_page("Same content", [], "<p>identical bytes under two URLs</p>")


def build_main_site(site: CrawlSite) -> None:
    site.add("/robots.txt", Route(200, {"Content-Type": "text/plain"}, "User-agent: *\nDisallow: /private/\n"))
    site.add(
        "/",
        html_page(
            "Start",
            [
                "/a",
                "b",  # relative link
                "/private/secret",
                "/redirect-in",
                "/redirect-out",
                "/redirect-dup",
                "/missing",
                "/doc.pdf",
                "/big-declared",
                "/big-stream",
                "/dup1",
                "/dup2",
                "/d1",
                "/a#section",  # same page as /a once the fragment is dropped
                site.url("/a").replace("http://", "HTTP://"),  # same page after normalisation
                "file:///etc/passwd",
                "mailto:someone@example.invalid",
                "javascript:void(0)",
                site.url("/offsite", host="localhost"),  # another host name => off-domain
            ],
        ),
    )
    site.add("/a", html_page("A", ["/b", "/"]))
    site.add("/b", html_page("B", ["/a"]))  # loop A -> B -> A
    site.add("/private/secret", html_page("Secret", []))
    site.add("/redirect-in", Route(302, {"Location": "/target"}, b""))
    site.add("/target", html_page("Redirect target", []))
    site.add("/redirect-out", Route(301, {"Location": site.url("/elsewhere", host="localhost")}, b""))
    site.add("/elsewhere", html_page("Elsewhere", []))
    site.add("/offsite", html_page("Offsite", []))
    site.add("/redirect-dup", Route(302, {"Location": "/a"}, b""))
    site.add("/missing", Route(404, {"Content-Type": "text/html"}, "<h1>gone</h1>"))
    site.add("/doc.pdf", Route(200, {"Content-Type": "application/pdf"}, b"%PDF-1.4\n%fake\n" * 100))
    site.add("/big-declared", Route(200, {"Content-Type": "text/html"}, b"<p>" + b"y" * 5_000_000))
    site.add("/big-stream", Route(200, {"Content-Type": "text/html; charset=utf-8"}, endless_html))
    site.add("/dup1", DUP_BODY)
    site.add("/dup2", DUP_BODY)
    site.add("/d1", html_page("Depth 1", ["/d2"]))
    site.add("/d2", html_page("Depth 2", ["/d3"]))
    site.add("/d3", html_page("Depth 3", []))


@pytest.fixture(scope="module")
def main_crawl(tmp_path_factory):
    out = tmp_path_factory.mktemp("crawl") / "pages"  # does not exist yet: crawl creates it
    messages: list[str] = []
    with CrawlSite() as site:
        build_main_site(site)
        report = crawl(site.url("/"), out, make_settings(site), progress=messages.append)
        assert site.wait_idle()
        yield site, report, out, messages


def rel(site: CrawlSite, url: str) -> str:
    return url[len(site.base_url):] if url.startswith(site.base_url) else url


# --------------------------------------------------------------------------- #
# The main fixture site
# --------------------------------------------------------------------------- #


def test_saved_set_is_exact(main_crawl):
    site, report, out, _ = main_crawl
    assert {rel(site, p.final_url) for p in report.saved} == {"/", "/a", "/b", "/target", "/dup1", "/d1", "/d2"}
    by_final = {rel(site, p.final_url): p for p in report.saved}
    assert rel(site, by_final["/target"].url) == "/redirect-in"  # redirect within the domain
    assert {k: p.depth for k, p in by_final.items()} == {
        "/": 0, "/a": 1, "/b": 1, "/target": 1, "/dup1": 1, "/d1": 1, "/d2": 2,
    }


def test_skip_reasons(main_crawl):
    site, report, _, _ = main_crawl
    got = {rel(site, s.url): s.reason for s in report.skipped}
    assert got == {
        "file:///etc/passwd": "scheme",
        "mailto:someone@example.invalid": "scheme",
        "javascript:void(0)": "scheme",
        site.url("/offsite", host="localhost"): "off-domain",
        "/private/secret": "robots",
        "/redirect-out": "redirect-off-domain",
        "/redirect-dup": "duplicate-url",
        "/missing": "http-404",
        "/doc.pdf": "not-html",
        "/big-declared": "too-large",
        "/big-stream": "too-large",
        "/dup2": "duplicate-content",
    }
    assert len(report.skipped) == len(got)  # nothing reported twice


def test_server_log(main_crawl):
    site, _, _, _ = main_crawl
    paths = site.paths()
    counts = Counter(paths)
    assert paths[0] == "/robots.txt"
    assert all(n == 1 for n in counts.values()), counts  # loop and duplicate links fetched once
    for never in ("/private/secret", "/elsewhere", "/offsite", "/d3"):
        assert never not in counts, never
    assert set(counts) == {
        "/robots.txt", "/", "/a", "/b", "/redirect-in", "/target", "/redirect-out",
        "/redirect-dup", "/missing", "/doc.pdf", "/big-declared", "/big-stream", "/dup1", "/dup2",
        "/d1", "/d2",
    }


def test_user_agent_on_every_request(main_crawl):
    site, _, _, _ = main_crawl
    assert site.requests
    for rec in site.requests:
        assert rec.header("User-Agent") == DEFAULT_USER_AGENT, rec.path
        assert rec.client == "127.0.0.1"


def test_oversized_bodies_not_read(main_crawl):
    site, report, out, _ = main_crawl
    (stream_req,) = site.requests_for("/big-stream")
    assert not stream_req.completed  # the crawler hung up ...
    assert stream_req.bytes_sent < STREAM_LIMIT  # ... long before the end
    for p in out.glob("*.html"):
        assert p.stat().st_size <= MAX_BYTES
        assert b"x" * 1000 not in p.read_bytes() and b"y" * 1000 not in p.read_bytes()


def test_sidecars(main_crawl):
    site, report, out, _ = main_crawl
    for page in report.saved:
        key = hashlib.sha1(page.final_url.encode()).hexdigest()[:16]
        assert page.path == out / f"{key}.html"
        body = page.path.read_bytes()
        assert hashlib.sha256(body).hexdigest() == page.sha256
        meta = json.loads((out / f"{key}.json").read_text(encoding="utf-8"))
        assert set(meta) == SIDECAR_KEYS
        assert meta["url"] == page.url and meta["final_url"] == page.final_url
        assert meta["sha256"] == page.sha256 and meta["depth"] == page.depth
        assert meta["status"] == 200
        assert meta["content_type"].startswith("text/html")
        ts = datetime.fromisoformat(meta["fetched_at"])
        assert ts.utcoffset() == timedelta(0) and meta["fetched_at"] == page.fetched_at
    start = next(p for p in report.saved if rel(site, p.final_url) == "/")
    assert start.path.read_bytes() == site.routes["/"].encode()  # raw bytes as served


def test_no_temp_files_left(main_crawl):
    _, report, out, _ = main_crawl
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2 * len(report.saved)
    assert all(n.endswith((".html", ".json")) and not n.startswith(".") for n in names), names


def test_progress_messages(main_crawl):
    _, report, _, messages = main_crawl
    assert len(messages) >= len(report.saved) + len(report.skipped)
    assert all(isinstance(m, str) and "\n" not in m for m in messages)
    assert report.seconds > 0


# --------------------------------------------------------------------------- #
# Safety
# --------------------------------------------------------------------------- #


def test_private_address_refused(local_site, tmp_path):
    local_site.add("/", html_page("Home", ["/a"]))
    local_site.add("/a", html_page("A", []))
    report = crawl(local_site.url("/"), tmp_path / "out", make_settings(local_site, allow_private=False))
    assert report.saved == []
    assert [(s.url, s.reason) for s in report.skipped] == [(local_site.url("/"), "private-address")]
    assert local_site.requests == []  # not even robots.txt
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_dns_rebinding_guard(local_site, tmp_path, monkeypatch):
    """The name server tells the pre-request check 'public', but the connection reaches 127.0.0.1:
    the peer check refuses the socket before a byte is sent."""
    local_site.add("/", html_page("Home", []))
    monkeypatch.setattr(addresses, "lookup", lambda host, port: ["93.184.216.34"])  # never contacted
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site, allow_private=False))
    assert report.saved == []
    assert [(s.reason, s.detail) for s in report.skipped] == [
        ("private-address", "connected peer 127.0.0.1 is not a public address"),
    ]
    assert local_site.requests == []


def pretend_loopback_is_public(monkeypatch) -> None:
    """Let the local test server stand in for a public host, for the pre-request and the peer check."""
    real = addresses.is_blocked_ip
    monkeypatch.setattr(addresses, "is_blocked_ip", lambda ip: ip != "127.0.0.1" and real(ip))


def test_private_redirect_hop_refused(local_site, tmp_path, monkeypatch):
    """Every redirect hop is re-checked: a hop to a host resolving to a private address is refused.

    The local server stands in for a public host; ``internal.invalid`` resolves (fake DNS) to
    10.0.0.1, which must be refused before any connection is attempted.
    """
    local_site.add("/", html_page("Home", ["/go"]))
    local_site.add("/go", Route(302, {"Location": "http://internal.invalid/admin"}, b""))
    looked_up = []

    def fake_lookup(host, port):
        looked_up.append(host)
        return ["10.0.0.1"] if host == "internal.invalid" else addresses.system_lookup(host, port)

    pretend_loopback_is_public(monkeypatch)
    monkeypatch.setattr(addresses, "lookup", fake_lookup)
    report = crawl(
        local_site.url("/"), tmp_path,
        make_settings(local_site, allow_private=False, allow_domains=("127.0.0.1", "internal.invalid")),
    )
    assert [rel(local_site, p.final_url) for p in report.saved] == ["/"]
    assert [(rel(local_site, s.url), s.reason) for s in report.skipped] == [("/go", "private-address")]
    assert "internal.invalid" in looked_up


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.invalid/x", "mailto:a@example.invalid", "javascript:alert(1)",
     "data:text/html,hi", "not a url", "", "http://"],
)
def test_non_http_start_raises(url, tmp_path):
    with pytest.raises(ValueError) as excinfo:
        crawl(url, tmp_path, make_settings())
    assert str(excinfo.value)  # readable message


def test_start_outside_allow_list_raises(local_site, tmp_path):
    with pytest.raises(ValueError, match="allowed domains"):
        crawl(local_site.url("/"), tmp_path, make_settings(local_site, allow_domains=("example.invalid",)))
    assert local_site.requests == []


def test_only_default_ports_unless_allowed(local_site, tmp_path):
    """A high port is refused at the start and as a link or redirect target, unless allowed explicitly;
    allowing private addresses does not allow other ports."""
    with pytest.raises(ValueError, match="--allow-port"):
        crawl(local_site.url("/"), tmp_path, make_settings(allow_private=True))
    assert local_site.requests == []
    with CrawlSite() as other:
        other.add("/", html_page("Other port", []))
        other.add("/page", html_page("Other page", []))
        local_site.add("/", html_page("Home", [other.url("/"), "/hop"]))
        local_site.add("/hop", Route(302, {"Location": other.url("/page")}, b""))
        report = crawl(local_site.url("/"), tmp_path / "one", make_settings(local_site))
        assert [rel(local_site, p.final_url) for p in report.saved] == ["/"]
        assert {rel(local_site, s.url): s.reason for s in report.skipped} == {other.url("/"): "port", "/hop": "port"}
        assert other.requests == []
        both = make_settings(local_site, allow_ports=(local_site.port, other.port), allow_domains=("127.0.0.1",))
        report = crawl(local_site.url("/"), tmp_path / "both", both)
        assert {p.final_url for p in report.saved} == {local_site.url("/"), other.url("/"), other.url("/page")}


def test_cli_allow_port(local_site, tmp_path, capsys):
    local_site.add("/", html_page("Home", []))
    args = ["crawl", local_site.url("/"), "--out", str(tmp_path), "--allow-private", "--delay", "0"]
    assert cli.main(args) == 2
    assert f"start URL port {local_site.port} is not allowed" in capsys.readouterr().err
    assert local_site.requests == []
    assert cli.main(args + ["--allow-port", str(local_site.port)]) == 0
    assert capsys.readouterr().out.startswith(f"crawled 1 pages into {tmp_path}, skipped 0,")
    with pytest.raises(SystemExit):
        cli.main(args + ["--allow-port", "99999"])


# --------------------------------------------------------------------------- #
# Bounded crawl state
# --------------------------------------------------------------------------- #


def test_url_cap_bounds_seen_and_queue(local_site, tmp_path):
    """A page with more links than the URL cap: the excess is counted, one skip and one line say so."""
    cap = crawl_mod.url_cap(2)
    links = [f"/p{i}" for i in range(cap + 500)]
    local_site.add("/", html_page("Many links", links))
    for link in links[:3]:
        local_site.add(link, html_page(link, []))
    messages: list[str] = []
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site, max_pages=2, max_bytes=10_000_000),
                   progress=messages.append)
    assert [rel(local_site, p.final_url) for p in report.saved] == ["/", "/p0"]
    reasons = Counter(s.reason for s in report.skipped)
    assert reasons == {"max-urls": 1, "max-pages": cap - 2}  # the start page and /p0 were among the cap
    assert report.dropped == len(links) - (cap - 1)
    assert len([m for m in messages if "URL cap" in m or "max-urls" in m]) == 2  # the first drop, the total
    assert f"dropped {report.dropped} new links past the URL cap of {cap}" in messages


def test_overlong_urls_skipped(local_site, tmp_path):
    long_path = "/" + "a" * 3000
    local_site.add("/", html_page("Home", [long_path, long_path + "?again", long_path, "/ok"]))
    local_site.add("/ok", Route(302, {"Location": "/" + "b" * 3000}, b""))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site))
    assert [rel(local_site, p.final_url) for p in report.saved] == ["/"]
    assert [(s.reason, len(s.url) <= 2048) for s in report.skipped] == [
        ("url-too-long", True), ("url-too-long", True), ("url-too-long", True),
    ]
    assert not any(len(path) > 2048 for path in local_site.paths())


# --------------------------------------------------------------------------- #
# Terminal safety
# --------------------------------------------------------------------------- #

HOSTILE_TEXT = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202egnp.exe\u2028"


def test_progress_lines_escape_control_characters(local_site, tmp_path, capsys):
    """ESC, other C0/C1 controls and bidi overrides in hrefs and headers reach neither the progress
    callback nor the `indexer crawl` output raw."""
    local_site.add("/", html_page("Home", [f"mailto:x{HOSTILE_TEXT}@example.invalid", f"/doc{HOSTILE_TEXT}",
                                           "/typed", f"http://other{HOSTILE_TEXT}.invalid/"]))
    local_site.add("/typed", Route(200, {"Content-Type": f"application/x-{HOSTILE_TEXT[:8]}"}, b"data"))
    messages: list[str] = []
    report = crawl(local_site.url("/"), tmp_path / "lib", make_settings(local_site), progress=messages.append)
    assert len(report.skipped) == 4
    assert any("\x1b" in s.url or "\x1b" in s.detail for s in report.skipped)  # the report keeps the raw text
    assert messages and all(m.isprintable() for m in messages), [m for m in messages if not m.isprintable()]
    assert any("\\x1b]0;owned\\x07" in m for m in messages)  # escaped, still readable
    assert cli.main(["crawl", local_site.url("/"), "--out", str(tmp_path / "cli"), "--allow-private",
                     "--allow-port", str(local_site.port), "--delay", "0"]) == 0
    out = capsys.readouterr()
    for stream in (out.out, out.err):
        assert stream and all(line.isprintable() for line in stream.splitlines())
        assert "\x1b" not in stream and "\u202e" not in stream and "\x9b" not in stream


def test_unparsable_start_url_is_named_in_one_safe_line(tmp_path, capsys):
    """urlsplit's own ValueError ("does not appear to be an IPv4 or IPv6 address") gets the start URL named."""
    assert cli.main(["crawl", f"gopher://x{HOSTILE_TEXT}/", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid start URL 'gopher://x") and all(line.isprintable() for line in err.splitlines())


def test_terminal_safe():
    assert terminal_safe("plain æøå URL https://x/?a=1") == "plain æøå URL https://x/?a=1"
    escaped = terminal_safe(HOSTILE_TEXT)
    assert escaped == "\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202egnp.exe\\u2028"
    assert terminal_safe(escaped) == escaped


# --------------------------------------------------------------------------- #
# Name lookups are bounded
# --------------------------------------------------------------------------- #


@pytest.fixture
def hung_dns(monkeypatch):
    """A resolver that never answers for *.hang.invalid (until the test ends) and answers truly otherwise."""
    release = threading.Event()
    asked: list[str] = []

    def make(real):
        def lookup(host, port):
            if host.endswith("hang.invalid"):
                asked.append(host)
                release.wait(30)
                raise socket.gaierror("released")
            return real(host, port)
        return lookup

    yield make, asked
    release.set()


def test_dns_lookup_timeout(local_site, tmp_path, monkeypatch, hung_dns):
    make, asked = hung_dns
    pretend_loopback_is_public(monkeypatch)
    monkeypatch.setattr(addresses, "lookup", make(addresses.system_lookup))
    local_site.add("/", html_page("Home", ["http://www.hang.invalid/", "/a"]))
    local_site.add("/a", html_page("A", []))
    t0 = time.monotonic()
    report = crawl(local_site.url("/"), tmp_path, make_settings(
        local_site, allow_private=False, timeout=0.5, allow_domains=("127.0.0.1", "hang.invalid")))
    assert time.monotonic() - t0 < 3.0
    assert [(s.url, s.reason) for s in report.skipped] == [("http://www.hang.invalid/", "error: DNS lookup timed out")]
    assert {rel(local_site, p.final_url) for p in report.saved} == {"/", "/a"}
    assert asked == ["www.hang.invalid"]


def test_connection_lookup_timeout(local_site, tmp_path, monkeypatch, hung_dns):
    """The connection's own lookup is bounded too (here with private addresses allowed, so no pre-check)."""
    make, asked = hung_dns
    monkeypatch.setattr(addresses, "system_lookup", make(addresses.system_lookup))
    local_site.add("/", html_page("Home", ["http://www.hang.invalid/"]))
    t0 = time.monotonic()
    report = crawl(local_site.url("/"), tmp_path, make_settings(
        local_site, timeout=0.5, allow_domains=("127.0.0.1", "hang.invalid")))
    assert time.monotonic() - t0 < 3.0
    assert [(s.url, s.reason) for s in report.skipped] == [("http://www.hang.invalid/", "robots")]
    assert report.skipped[0].detail == "robots.txt unreachable (error: DNS lookup timed out): disallowing all"
    assert asked == ["www.hang.invalid"]


def test_resolve_gives_up_after_timeout():
    release = threading.Event()
    t0 = time.monotonic()
    with pytest.raises(addresses.DNSLookupTimeout):
        addresses.resolve("x.invalid", 80, 0.2, lambda host, port: release.wait(30) and [])
    assert time.monotonic() - t0 < 1.0
    release.set()
    assert addresses.resolve("x", 80, 1.0, lambda host, port: ["192.0.2.1"]) == ["192.0.2.1"]
    with pytest.raises(socket.gaierror):
        addresses.resolve("x", 80, 1.0, lambda host, port: (_ for _ in ()).throw(socket.gaierror("nx")))


# --------------------------------------------------------------------------- #
# Limits and politeness
# --------------------------------------------------------------------------- #


def test_max_pages(local_site, tmp_path):
    local_site.add("/", html_page("Home", [f"/p{i}" for i in range(1, 6)]))
    for i in range(1, 6):
        local_site.add(f"/p{i}", html_page(f"P{i}", []))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site, max_pages=3))
    assert [rel(local_site, p.final_url) for p in report.saved] == ["/", "/p1", "/p2"]
    assert [(rel(local_site, s.url), s.reason) for s in report.skipped] == [
        ("/p3", "max-pages"), ("/p4", "max-pages"), ("/p5", "max-pages"),
    ]
    assert not {"/p3", "/p4", "/p5"} & set(local_site.paths())
    assert len(list(tmp_path.glob("*.html"))) == 3


def test_max_seconds(local_site, tmp_path):
    local_site.add("/", html_page("Home", [f"/slow{i}" for i in range(5)]))
    for i in range(5):
        local_site.add(f"/slow{i}", Route(200, {}, html_page(f"Slow {i}", []), 0.4))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site, max_seconds=0.7))
    assert report.seconds < 0.7 + 0.4
    assert len(report.saved) < 6
    reasons = {rel(local_site, s.url): s.reason for s in report.skipped}
    assert "max-seconds" in reasons.values()
    assert set(reasons.values()) <= {"max-seconds", "timeout"}
    accounted = {rel(local_site, p.url) for p in report.saved} | set(reasons)
    assert accounted == {"/"} | {f"/slow{i}" for i in range(5)}


def test_zero_budget_fetches_nothing(local_site, tmp_path):
    local_site.add("/", html_page("Home", []))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site, max_seconds=0))
    assert report.saved == [] and [s.reason for s in report.skipped] == ["max-seconds"]
    assert local_site.requests == []


def test_delay_between_requests_to_same_host(local_site, tmp_path):
    local_site.add("/", html_page("Home", ["/a"]))
    local_site.add("/a", html_page("A", []))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site, delay=0.2))
    assert len(report.saved) == 2
    times = [r.time for r in local_site.requests]
    assert [r.path for r in local_site.requests] == ["/robots.txt", "/", "/a"]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= 0.2 for g in gaps), gaps
    assert all(g < 1.0 for g in gaps), gaps


def test_request_timeout(local_site, tmp_path):
    local_site.add("/", html_page("Home", ["/slow", "/fast"]))
    local_site.add("/slow", Route(200, {}, html_page("Slow", []), 3.0))
    local_site.add("/fast", html_page("Fast", []))
    t0 = time.monotonic()
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site, timeout=0.3))
    assert time.monotonic() - t0 < 2.0
    assert {rel(local_site, s.url): s.reason for s in report.skipped} == {"/slow": "timeout"}
    assert {rel(local_site, p.final_url) for p in report.saved} == {"/", "/fast"}


def test_redirect_loop_gives_up(local_site, tmp_path):
    local_site.add("/", html_page("Home", ["/loop1"]))
    local_site.add("/loop1", Route(302, {"Location": "/loop2"}, b""))
    local_site.add("/loop2", Route(302, {"Location": "/loop1"}, b""))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site))
    assert [(rel(local_site, s.url), s.reason) for s in report.skipped] == [("/loop1", "error: too many redirects")]
    assert sum(p.startswith("/loop") for p in local_site.paths()) == 6  # first request + 5 redirects


# --------------------------------------------------------------------------- #
# robots.txt as RFC 9309 reads it
# --------------------------------------------------------------------------- #


def test_robots_wildcards_and_longest_match(local_site, tmp_path):
    """`*` and `$` patterns apply, and the longest matching rule wins (Allow on a tie)."""
    local_site.add("/robots.txt", Route(200, {"Content-Type": "text/plain"}, (
        "User-agent: *\nDisallow: /*/private\nAllow: /docs/private/ok\nDisallow: /*.pdf$\n"
    )))
    links = ["/a/private", "/a/private/x", "/docs/private/ok", "/file.pdf", "/file.pdf?page=1", "/public"]
    local_site.add("/", html_page("Home", links))
    for link in links:
        local_site.add(link.split("?")[0], html_page(link, [], f"<p>{link}</p>"))
    local_site.add("/file.pdf?page=1", html_page("pdf page 1", [], "<p>page one</p>"))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site))
    assert {rel(local_site, p.final_url) for p in report.saved} == {"/", "/docs/private/ok", "/file.pdf?page=1", "/public"}
    assert {rel(local_site, s.url): s.reason for s in report.skipped} == {
        "/a/private": "robots", "/a/private/x": "robots", "/file.pdf": "robots",
    }
    assert not {"/a/private", "/a/private/x", "/file.pdf"} & set(local_site.paths())


def test_robots_crawl_delay(local_site, tmp_path):
    local_site.add("/robots.txt", Route(200, {"Content-Type": "text/plain"}, "User-agent: *\nCrawl-delay: 0.3\n"))
    local_site.add("/", html_page("Home", ["/a"]))
    local_site.add("/a", html_page("A", []))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site, delay=0.0))
    assert len(report.saved) == 2
    times = [r.time for r in local_site.requests]
    assert [b - a >= 0.3 for a, b in zip(times, times[1:])] == [True, True]


@pytest.mark.parametrize("status,allowed", [
    (404, True), (410, True), (401, True), (403, True),  # 4xx: "unavailable", everything allowed
    (500, False), (503, False),  # 5xx: "unreachable", everything disallowed
])
def test_robots_status_decides(local_site, tmp_path, status, allowed):
    local_site.add("/robots.txt", Route(status, {"Content-Type": "text/plain"}, "Disallow: /x\n"))
    local_site.add("/", html_page("Home", ["/x"]))
    local_site.add("/x", html_page("X", []))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site))
    if allowed:
        assert len(report.saved) == 2 and report.skipped == []
    else:
        assert report.saved == []
        assert [(rel(local_site, s.url), s.reason) for s in report.skipped] == [("/", "robots")]
        assert f"robots.txt {status}" in report.skipped[0].detail
        assert local_site.paths() == ["/robots.txt"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_robots_disallows_all(local_site, tmp_path):
    """RFC 9309 §2.3.1.4: a robots.txt that cannot be reached (timeout, refused connection) disallows all."""
    local_site.add("/", html_page("Home", []))
    local_site.add("/robots.txt", Route(200, {"Content-Type": "text/plain"}, "", delay=2.0))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site, timeout=0.3))
    assert report.saved == [] and [s.reason for s in report.skipped] == ["robots"]
    assert "timeout" in report.skipped[0].detail

    dead = closed_port()
    local_site.add("/robots.txt", Route(302, {"Location": f"http://127.0.0.1:{dead}/robots.txt"}, b""))
    local_site.clear_log()
    settings = make_settings(local_site, allow_ports=(local_site.port, dead))
    report = crawl(local_site.url("/"), tmp_path / "again", settings)
    assert report.saved == [] and [s.reason for s in report.skipped] == ["robots"]
    assert "ConnectionError" in report.skipped[0].detail
    assert local_site.paths() == ["/robots.txt"]


@pytest.mark.parametrize("hops,followed", [(5, True), (6, False)])
def test_robots_redirects(local_site, tmp_path, hops, followed):
    """robots.txt redirects are followed up to five hops; past that the file counts as unavailable."""
    names = ["/robots.txt"] + [f"/r{i}" for i in range(1, hops)] + ["/rules.txt"]
    for here, there in zip(names, names[1:]):
        local_site.add(here, Route(301, {"Location": there}, b""))
    local_site.add("/rules.txt", Route(200, {"Content-Type": "text/plain"}, "User-agent: *\nDisallow: /x\n"))
    local_site.add("/", html_page("Home", ["/x"]))
    local_site.add("/x", html_page("X", []))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site))
    skipped = [(rel(local_site, s.url), s.reason) for s in report.skipped]
    assert skipped == ([("/x", "robots")] if followed else [])
    assert ("/rules.txt" in local_site.paths()) is followed


def test_robots_rules_for_our_user_agent(local_site, tmp_path):
    local_site.add(
        "/robots.txt",
        Route(200, {"Content-Type": "text/plain"},
              "User-agent: DenmarkDigitalHealthKB-crawler\nDisallow: /no-kb\n\nUser-agent: *\nDisallow: /\n"),
    )
    local_site.add("/", html_page("Home", ["/no-kb/page", "/yes"]))
    local_site.add("/yes", html_page("Yes", []))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site))
    assert {rel(local_site, p.final_url) for p in report.saved} == {"/", "/yes"}
    assert [(rel(local_site, s.url), s.reason) for s in report.skipped] == [("/no-kb/page", "robots")]
    assert "/no-kb/page" not in local_site.paths()


def test_depth_zero_fetches_only_start(local_site, tmp_path):
    local_site.add("/", html_page("Home", ["/a"]))
    local_site.add("/a", html_page("A", []))
    report = crawl(local_site.url("/"), tmp_path, make_settings(local_site, depth=0))
    assert [rel(local_site, p.final_url) for p in report.saved] == ["/"]
    assert "/a" not in local_site.paths()


def test_allow_domains_and_directory_site(tmp_path):
    """Serving a directory (how a rendered corpus can be crawled) with an explicit allow-list."""
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text(html_page("Index", ["page.html", "sub/", "data.pdf", "nope.html"]))
    (root / "page.html").write_text(html_page("Page", ["index.html"]))
    (root / "sub" / "index.html").write_text(html_page("Sub", ["../page.html"]))
    (root / "data.pdf").write_bytes(b"%PDF-1.4\n")
    with CrawlSite(directory=root) as site:
        report = crawl(site.url("/"), tmp_path / "out", make_settings(site, allow_domains=("127.0.0.1",)))
        assert {rel(site, p.final_url) for p in report.saved} == {"/", "/page.html", "/sub/"}
        assert {rel(site, s.url): s.reason for s in report.skipped} == {
            "/data.pdf": "not-html", "/nope.html": "http-404", "/index.html": "duplicate-content",
        }


def test_crawl_site_helper_basics():
    with CrawlSite({"/q?x=1": "query route", "/raw": Route(200, {"Content-Type": None}, b"\x00")}) as site:
        import requests

        s = requests.Session()
        s.trust_env = False
        assert s.get(site.url("/q?x=1")).text == "query route"
        r = s.get(site.url("/raw"))
        assert "Content-Type" not in r.headers and r.content == b"\x00"
        assert s.get(site.url("/nothing")).status_code == 404
        assert site.wait_idle()
        assert [r.path for r in site.requests] == ["/q?x=1", "/raw", "/nothing"]
        assert all(r.completed for r in site.requests)


# --------------------------------------------------------------------------- #
# Units
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("HTTP://Example.COM:80/a#frag", "http://example.com/a"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/x?q=1#y", "https://example.com:8443/x?q=1"),
        ("http://user:pw@Example.com/p", "http://example.com/p"),
        ("http://example.com/a b", "http://example.com/a%20b"),
        ("http://example.com/a%20b", "http://example.com/a%20b"),
        ("http://sundhed.dk./", "http://sundhed.dk/"),
        ("http://[::1]:8080/", "http://[::1]:8080/"),
    ],
)
def test_normalize_url(raw, expected):
    assert normalize_url(raw) == expected


def test_normalize_url_rejects_bad_port():
    with pytest.raises(ValueError):
        normalize_url("http://example.com:99999/")


def test_host_allowed():
    allowed = ("sundhed.dk",)
    assert host_allowed("sundhed.dk", allowed)
    assert host_allowed("www.SUNDHED.dk", allowed)
    assert not host_allowed("notsundhed.dk", allowed)
    assert not host_allowed("sundhed.dk.evil.example", allowed)
    assert not host_allowed("www.sundhed.dk", allowed, exact=True)


@pytest.mark.parametrize(
    "ip,blocked",
    [
        ("127.0.0.1", True), ("10.1.2.3", True), ("192.168.0.1", True), ("172.16.5.5", True),
        ("169.254.169.254", True), ("0.0.0.0", True), ("224.0.0.1", True), ("240.0.0.1", True),
        ("100.64.0.1", True), ("::1", True), ("fe80::1%eth0", True), ("fc00::1", True), ("::", True),
        ("::ffff:127.0.0.1", True), ("2002:7f00:1::", True), ("garbage", True),
        ("93.184.216.34", False), ("2606:2800:220:1:248:1893:25c8:1946", False),
    ],
)
def test_is_blocked_ip(ip, blocked):
    assert is_blocked_ip(ip) is blocked



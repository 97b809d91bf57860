"""The web surface (search_app/security.py): headers on every response, the rate limit, debug off."""
from __future__ import annotations

import runpy
from dataclasses import fields, replace

import pytest

from kb.search.live import LiveIndex
from search_app import create_app
from search_app.security import CONTENT_SECURITY_POLICY, SECURITY_HEADERS
from search_app.settings import WebSettings
from tests.conftest import ROOT

CLIENT_ADDRESS = "203.0.113.77"  # TEST-NET-3: an address no real client has


def _app(settings, corpus_index_dir, embedder, **overrides):
    web_fields = {f.name for f in fields(WebSettings)}
    s = replace(settings, **{k: v for k, v in overrides.items() if k not in web_fields})
    web = WebSettings(**{k: v for k, v in overrides.items() if k in web_fields})
    return create_app({"TESTING": True, "SETTINGS": s, "WEB_SETTINGS": web,
                       "LIVE_INDEX": LiveIndex(corpus_index_dir, s, embedder)})


def _assert_headers(r) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, name


def test_the_policy_forbids_inline_code_and_framing():
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert directives == {
        "default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "img-src": "'self' data:",
        "object-src": "'none'", "base-uri": "'none'", "frame-ancestors": "'none'", "form-action": "'self'",
    }
    assert SECURITY_HEADERS["X-Frame-Options"] == "DENY" and SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert SECURITY_HEADERS["Referrer-Policy"] in ("strict-origin-when-cross-origin", "no-referrer")


def test_headers_on_pages_api_static_files_and_every_kind_of_error(settings, corpus_index_dir, embedder):
    app = _app(settings, corpus_index_dir, embedder)

    def boom():
        raise RuntimeError("internal detail that must not leak")

    app.add_url_rule("/api/boom", "boom", boom)
    app.add_url_rule("/boom", "boom_page", boom)
    client = app.test_client()
    responses = {
        "page": client.get("/"),
        "document": client.get("/doc/medcom"),
        "api": client.get("/api/documents/medcom"),
        "health": client.get("/healthz"),
        "css": client.get("/static/style.css"),
        "js": client.get("/static/app.js"),
        "400": client.get("/api/search"),
        "404": client.get("/api/nothing"),
        "404-page": client.get("/nothing"),
        "405": client.delete("/api/search"),
        "413": client.post("/api/search", data=b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)),
        "414": client.get("/api/search", query_string={"q": "x" * 9000}),
        "500": client.get("/api/boom"),
        "500-page": client.get("/boom"),
    }
    for name, r in responses.items():
        _assert_headers(r)
    assert [r.status_code for r in responses.values()] == [200, 200, 200, 200, 200, 200, 400, 404, 404, 405, 413, 414,
                                                          500, 500]
    for name in ("500", "500-page"):
        body = responses[name].get_data(as_text=True)
        assert "internal detail" not in body and "Traceback" not in body
    assert responses["500"].get_json()["error"]["code"] == "internal_error"
    assert responses["405"].headers["Allow"]  # kept when the error body is replaced


def test_no_rate_limit_unless_configured(client, app):
    assert "kb_rate_limiter" not in app.extensions
    r = client.get("/api/documents/medcom")
    assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers


def test_rate_limit_per_client_with_429_json_and_exempt_health(settings, corpus_index_dir, embedder):
    app = _app(settings, corpus_index_dir, embedder, rate_limit="3/minute")
    client = app.test_client()
    me = {"REMOTE_ADDR": CLIENT_ADDRESS}
    assert [client.get("/api/documents/medcom", environ_base=me).status_code for _ in range(3)] == [200, 200, 200]

    r = client.get("/api/documents/medcom", environ_base=me)
    assert r.status_code == 429 and r.mimetype == "application/json"
    err = r.get_json()["error"]
    assert err["code"] == "too_many_requests" and "3 per 1 minute" in err["message"]
    assert int(r.headers["Retry-After"]) > 0 and r.headers["X-RateLimit-Limit"] == "3"
    _assert_headers(r)

    page = client.get("/", environ_base=me)  # one budget per client across the whole site
    assert page.status_code == 429 and page.mimetype == "text/html" and "Too many requests" in page.get_data(as_text=True)
    assert all(client.get("/healthz", environ_base=me).status_code == 200 for _ in range(10))
    assert client.get("/static/style.css", environ_base=me).status_code == 200
    other = client.get("/api/documents/medcom", environ_base={"REMOTE_ADDR": "198.51.100.5"})
    assert other.status_code == 200  # another client has its own budget


def test_a_malformed_rate_limit_stops_the_app_at_start(settings, corpus_index_dir, embedder):
    with pytest.raises(ValueError, match="KB_RATE_LIMIT"):
        _app(settings, corpus_index_dir, embedder, rate_limit="lots per minute")
    with pytest.raises(ValueError, match="KB_RATE_LIMIT_STORAGE='nosuch://x'"):
        _app(settings, corpus_index_dir, embedder, rate_limit="3/minute", rate_limit_storage="nosuch://x")
    with pytest.raises(ValueError, match="KB_TRUSTED_PROXIES"):
        WebSettings.from_env({"KB_TRUSTED_PROXIES": "-1"})


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_forwarded_addresses_count_only_behind_a_trusted_proxy(settings, corpus_index_dir, embedder, trusted_proxies):
    """Behind one trusted proxy each forwarded client has its own budget; without the setting a
    client cannot escape its budget by sending X-Forwarded-For itself."""
    app = _app(settings, corpus_index_dir, embedder, rate_limit="2/minute", trusted_proxies=trusted_proxies)
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}

    def get(forwarded_for: str) -> int:
        return client.get("/api/documents/medcom", environ_base=proxy,
                          headers={"X-Forwarded-For": forwarded_for}).status_code

    first = [get("203.0.113.1") for _ in range(3)]
    second = get("203.0.113.2")
    assert first == [200, 200, 429]
    assert second == (200 if trusted_proxies else 429)


def test_a_shared_redis_store_counts_across_app_instances(settings, corpus_index_dir, embedder, redis_url):
    """Two app instances (two gunicorn workers, or two hosts) with KB_RATE_LIMIT_STORAGE pointing
    at one Redis share one budget per client; with memory:// each would allow the full rate."""
    import redis

    first, second = (_app(settings, corpus_index_dir, embedder, rate_limit="3/minute", rate_limit_storage=redis_url)
                     .test_client() for _ in range(2))
    me = {"REMOTE_ADDR": CLIENT_ADDRESS}
    statuses = [client.get("/api/documents/medcom", environ_base=me).status_code
                for client in (first, second, first, second)]
    assert statuses == [200, 200, 200, 429]
    assert first.get("/api/documents/medcom", environ_base=me).status_code == 429
    other = second.get("/api/documents/medcom", environ_base={"REMOTE_ADDR": "198.51.100.5"})
    assert other.status_code == 200 and other.headers["X-RateLimit-Remaining"] == "2"
    keys = redis.Redis.from_url(redis_url).keys("*")
    assert sorted(keys) == [f"LIMITS:LIMITER/kb/{ip}/global/3/1/minute".encode()  # the counters live in Redis
                            for ip in ("198.51.100.5", CLIENT_ADDRESS)]
    alone = [_app(settings, corpus_index_dir, embedder, rate_limit="3/minute").test_client() for _ in range(2)]
    assert [c.get("/api/documents/medcom", environ_base=me).status_code for c in alone * 2] == [200] * 4


def test_the_client_address_never_reaches_the_query_log(settings, corpus_index_dir, embedder, tmp_path):
    log_path = tmp_path / "querylog.sqlite"
    app = _app(settings, corpus_index_dir, embedder, rate_limit="100/minute", query_log_enabled=True,
               query_log_path=str(log_path))
    r = app.test_client().get("/api/search", query_string={"q": "registry", "k": 3},
                              environ_base={"REMOTE_ADDR": CLIENT_ADDRESS})
    assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "99"
    qlog = app.extensions["kb_query_log"]
    qlog.close()
    rows = qlog.read()
    assert [row.query for row in rows] == ["registry"]
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(log_path.name))
    assert CLIENT_ADDRESS.encode() not in stored


@pytest.fixture()
def production_env(monkeypatch, tmp_path):
    """The environment `make serve` would see, with debug asked for and no index to warm up."""
    for name in ("KB_RATE_LIMIT", "KB_ADMIN_TOKEN", "KB_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setenv("KB_INDEX_DIR", str(tmp_path / "no-index"))
    monkeypatch.setenv("KB_QUERY_LOG_ENABLED", "0")
    monkeypatch.setenv("KB_QUERY_LOG", str(tmp_path / "querylog.sqlite"))


@pytest.mark.parametrize("entry", ["factory", "wsgi"])
def test_debug_mode_is_off_in_the_served_app_even_with_flask_debug(production_env, entry):
    """`make serve` runs gunicorn on the factory (or search_app/wsgi.py): FLASK_DEBUG=1 is ignored,
    and an unexpected error is a JSON 500 with no traceback."""
    if entry == "wsgi":
        app = runpy.run_path(str(ROOT / "search_app" / "wsgi.py"))["app"]
    else:
        app = create_app()
    assert app.debug is False and app.jinja_env.auto_reload is False

    def boom():
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/api/boom", "boom", boom)
    r = app.test_client().get("/api/boom")
    assert r.status_code == 500 and r.get_json()["error"]["code"] == "internal_error"
    assert "secret internal detail" not in r.get_data(as_text=True) and "Traceback" not in r.get_data(as_text=True)
    unavailable = app.test_client().get("/api/search?q=registry")
    assert unavailable.status_code == 503 and unavailable.get_json()["error"]["code"] == "index_unavailable"

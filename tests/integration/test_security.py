"""The web surface (search_app/security.py): headers on every response, the rate limit, debug off."""
from __future__ import annotations

import io
import os
import re
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import fields, replace
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from kb.search.live import LiveIndex
from search_app import create_app
from search_app.security import CONTENT_SECURITY_POLICY, SECURITY_HEADERS
from search_app.settings import WebSettings
from tests.conftest import ROOT

CLIENT_ADDRESS = "203.0.113.77"  # TEST-NET-3: an address no real client has


def _app(settings, corpus_index_dir, encoders, **overrides):
    web_fields = {f.name for f in fields(WebSettings)}
    s = replace(settings, **{k: v for k, v in overrides.items() if k not in web_fields})
    web = WebSettings(**{k: v for k, v in overrides.items() if k in web_fields})
    return create_app({"TESTING": True, "SETTINGS": s, "WEB_SETTINGS": web,
                       "LIVE_INDEX": LiveIndex(corpus_index_dir, s, encoders)})


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


def test_headers_on_pages_api_static_files_and_every_kind_of_error(settings, corpus_index_dir, encoders):
    app = _app(settings, corpus_index_dir, encoders)

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


def test_rate_limit_per_client_with_429_json_and_exempt_health(settings, corpus_index_dir, encoders):
    app = _app(settings, corpus_index_dir, encoders, rate_limit="3/minute")
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


def test_a_malformed_rate_limit_stops_the_app_at_start(settings, corpus_index_dir, encoders):
    with pytest.raises(ValueError, match="KB_RATE_LIMIT"):
        _app(settings, corpus_index_dir, encoders, rate_limit="lots per minute")
    with pytest.raises(ValueError, match="KB_RATE_LIMIT_STORAGE='nosuch://x'"):
        _app(settings, corpus_index_dir, encoders, rate_limit="3/minute", rate_limit_storage="nosuch://x")
    with pytest.raises(ValueError, match="KB_TRUSTED_PROXIES"):
        WebSettings.from_env({"KB_TRUSTED_PROXIES": "-1"})


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_forwarded_addresses_count_only_behind_a_trusted_proxy(settings, corpus_index_dir, encoders, trusted_proxies):
    """Behind one trusted proxy each forwarded client has its own budget; without the setting a
    client cannot escape its budget by sending X-Forwarded-For itself."""
    app = _app(settings, corpus_index_dir, encoders, rate_limit="2/minute", trusted_proxies=trusted_proxies)
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}

    def get(forwarded_for: str) -> int:
        return client.get("/api/documents/medcom", environ_base=proxy,
                          headers={"X-Forwarded-For": forwarded_for}).status_code

    first = [get("203.0.113.1") for _ in range(3)]
    second = get("203.0.113.2")
    assert first == [200, 200, 429]
    assert second == (200 if trusted_proxies else 429)


def test_a_shared_redis_store_counts_across_app_instances(settings, corpus_index_dir, encoders, redis_url):
    """Two app instances (two gunicorn workers, or two hosts) with KB_RATE_LIMIT_STORAGE pointing
    at one Redis share one budget per client; with memory:// each would allow the full rate."""
    import redis

    first, second = (_app(settings, corpus_index_dir, encoders, rate_limit="3/minute", rate_limit_storage=redis_url)
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
    alone = [_app(settings, corpus_index_dir, encoders, rate_limit="3/minute").test_client() for _ in range(2)]
    assert [c.get("/api/documents/medcom", environ_base=me).status_code for c in alone * 2] == [200] * 4


def test_the_client_address_never_reaches_the_query_log(settings, corpus_index_dir, encoders, tmp_path):
    log_path = tmp_path / "querylog.sqlite"
    app = _app(settings, corpus_index_dir, encoders, rate_limit="100/minute", query_log_enabled=True,
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


# ---- bodies however they are framed -----------------------------------------------------------

MEGABYTE = b"x" * 1_000_000


def _chunked_environ() -> dict:
    """What a server hands the app for `Transfer-Encoding: chunked`: no usable Content-Length and a
    stream it has terminated (Werkzeug's server and gunicorn both set wsgi.input_terminated)."""
    return {"wsgi.input_terminated": True}


def test_a_chunked_body_over_the_limit_is_413_even_where_no_view_reads_it(client, app):
    r = client.get("/api/documents/medcom", input_stream=io.BytesIO(MEGABYTE),
                   headers={"Transfer-Encoding": "chunked"}, environ_overrides=_chunked_environ())
    assert r.status_code == 413 and r.get_json()["error"]["code"] == "request_entity_too_large"
    _assert_headers(r)
    limit = app.config["MAX_CONTENT_LENGTH"]
    at_limit = client.get("/api/documents/medcom", input_stream=io.BytesIO(b"x" * limit),
                          headers={"Transfer-Encoding": "chunked"}, environ_overrides=_chunked_environ())
    assert at_limit.status_code == 200


def _serve(app):
    """A real threaded Werkzeug server on 127.0.0.1 (it decodes chunked bodies itself)."""
    class Quiet(WSGIRequestHandler):
        def log(self, *args, **kwargs) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _chunked_request(port: int, method: str, path: str, body: bytes, content_type: str = "") -> tuple[int, bytes]:
    """Send `body` with Transfer-Encoding: chunked over a raw socket; (status, response bytes).

    The answer is read while the body is still being sent, since a server that refuses the body
    answers early and closes."""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\n"
            + (f"Content-Type: {content_type}\r\n" if content_type else "") + "Connection: close\r\n\r\n")
    reply = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        def read() -> None:
            try:
                while chunk := sock.recv(65_536):
                    reply.extend(chunk)
            except OSError:
                pass

        reader = threading.Thread(target=read)
        reader.start()
        try:
            sock.sendall(head.encode("ascii"))
            for i in range(0, len(body), 8192):
                piece = body[i:i + 8192]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before taking the whole body
        reader.join(30)
    return int(bytes(reply).split(b" ", 2)[1]), bytes(reply)


def test_a_real_server_refuses_a_chunked_megabyte_and_keeps_small_chunked_forms(settings, corpus_index_dir, embedder):
    token = "chunked-test-admin-token-0123456789abcdef"
    app = _app(settings, corpus_index_dir, embedder, admin_token=token)
    server = _serve(app)
    try:
        status, reply = _chunked_request(server.port, "GET", "/api/documents/medcom", MEGABYTE)
        assert status == 413 and b"request_entity_too_large" in reply
        status, reply = _chunked_request(server.port, "POST", "/admin/login", MEGABYTE,
                                         "application/x-www-form-urlencoded")
        assert status == 413
        form = f"token={token}&next=/admin/questions".encode()
        status, reply = _chunked_request(server.port, "POST", "/admin/login", form, "application/x-www-form-urlencoded")
        assert status == 303 and b"Location: /admin/questions" in reply  # a small chunked form still reaches the view
    finally:
        server.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode(errors="replace")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {seconds} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the server and any child it made
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_gunicorn_refuses_a_chunked_megabyte(production_env):
    """`make serve`'s server: gunicorn decodes the chunks and sends no Content-Length, so only the
    bounded read can see the size (without it this GET would reach /healthz and answer 503)."""
    port = _free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "search_app:create_app()"], cwd=ROOT, env={**os.environ, "FLASK_DEBUG": "0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for(port, process)
        status, reply = _chunked_request(port, "GET", "/healthz", MEGABYTE)
        assert status == 413 and b"request_entity_too_large" in reply
    finally:
        _stop(process)


# ---- `make dev` with FLASK_DEBUG=1 --------------------------------------------------------------

def test_make_dev_with_flask_debug_starts_no_werkzeug_debugger(production_env):
    """The Makefile's `dev` command (Flask's development server; `make run` is gunicorn), as written
    there, with FLASK_DEBUG=1: the Werkzeug debugger (its /console page, its tracebacks) and the
    reloader must stay off, as the app's warning says."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    app_spec = re.search(r"^dev:.*\n\t.*-m flask --app '([^']+)' run", makefile, re.M).group(1)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", app_spec, "run", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for(port, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            raise AssertionError(f"no index here, yet /healthz answered {r.status}")
    except urllib.error.HTTPError as exc:
        assert exc.code == 503  # the app answers, and says it has no index
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/console", timeout=10) as r:
            body = r.read().decode(errors="replace")
            raise AssertionError(f"/console answered {r.status}: the debugger is on ({body[:80]!r})")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404 and b"Werkzeug" not in exc.read()
    finally:
        _stop(process)
        stderr = process.stderr.read().decode(errors="replace")
    assert "FLASK_DEBUG is set but ignored" in stderr and "Debugger is active" not in stderr
    assert "Restarting with" not in stderr  # no reloader either

"""The web surface's defences, registered from the factory with one call: `security.register(app)`.

What it does, and why each part lives here rather than in a view:

- Security headers on every response — pages, API, error pages and static files alike — because a
  header that only some responses carry protects nothing: a strict Content-Security-Policy (no
  inline script or style anywhere in the templates, so no 'unsafe-inline'), nosniff, a referrer
  policy that never sends a search address (a health question) to another site, and frame denial.
- Request hygiene before any view runs: a body over MAX_CONTENT_LENGTH (KB_MAX_REQUEST_BYTES) is
  refused with 413 even on routes that never read a body, however it is framed: a body sent with
  `Transfer-Encoding: chunked` has no Content-Length to check, so `BoundedBody` (WSGI middleware)
  reads at most limit + 1 bytes of it and hands it on with the length it found; an address longer
  than MAX_URL_BYTES gets 414; a query string that is not UTF-8 gets 400 instead of failing deep
  inside Werkzeug. All use the usual error shape (JSON under /api/, a readable page elsewhere).
- A per-client rate limit (Flask-Limiter, keyed by the client address) when KB_RATE_LIMIT is set:
  one budget per client shared by every route except the probes (/healthz, /readyz), /metrics
  and static files. Counters
  live in KB_RATE_LIMIT_STORAGE (per process by default); the query log never sees the address.
- Behind KB_TRUSTED_PROXIES reverse proxies, the client address and scheme come from their
  X-Forwarded-For/-Proto headers (werkzeug ProxyFix); never trusted by default, since any client
  can send those headers.
- Debug mode off in any app the factory builds, so neither `make run` (gunicorn) nor `make dev`
  (`flask run`) can expose the Werkzeug debugger or tracebacks, whatever FLASK_DEBUG says. The
  Flask CLI decides on its debugger and reloader from FLASK_DEBUG *after* the factory returns, so
  the factory resets FLASK_DEBUG to 0 in its own process environment; only an explicit
  `flask run --debugger` on a developer's command line still starts the debugger.
"""
from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterable

import limits
from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import RequestEntityTooLarge, RequestURITooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.utils import get_content_length

from search_app.errors import error_response
from search_app.params import BadParameter
from search_app.settings import WebSettings

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
))
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}
# Path plus query string, in bytes as sent (percent-encoded). A 1000-character query of Danish
# text is about 6000 bytes encoded; gunicorn refuses request lines above 8190 bytes, so the app's
# own limit sits just below and answers with the usual error shape instead.
MAX_URL_BYTES = 8_000
# Endpoints outside the rate limit: probes and scrapes must never be throttled (a load balancer
# or Prometheus asks from one address, often), static files are cheap.
RATE_LIMIT_EXEMPT_ENDPOINTS = frozenset({"api.healthz", "readiness.readyz", "metrics", "static"})


def register(app: Flask) -> None:
    """Install headers, request checks, the rate limit (if configured) and switch debug off."""
    settings: WebSettings = app.config["WEB_SETTINGS"]
    _switch_debug_off(app)
    app.wsgi_app = BoundedBody(app.wsgi_app, lambda: app.config.get("MAX_CONTENT_LENGTH"))
    app.before_request(check_request)
    app.after_request(add_security_headers)
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)
    limiter = rate_limiter(app, settings.rate_limit, settings.rate_limit_storage)
    if limiter is not None:
        app.extensions["kb_rate_limiter"] = limiter


def _switch_debug_off(app: Flask) -> None:
    """Debug off now, and for the Flask CLI that reads FLASK_DEBUG again once the factory returns."""
    if app.debug or os.environ.get("FLASK_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}:
        log.warning("FLASK_DEBUG is set but ignored: the app never runs in debug mode, and `flask run` "
                    "starts neither the Werkzeug debugger nor the reloader.")
    if "FLASK_DEBUG" in os.environ:
        os.environ["FLASK_DEBUG"] = "0"
    app.debug = False


class BoundedBody:
    """WSGI middleware: a body without a Content-Length (chunked) is read up to `limit() + 1` bytes
    and passed on with CONTENT_LENGTH set to what was read, so `check_request` refuses it like any
    other oversized body and the views read it as usual.

    Only streams the server has terminated (`wsgi.input_terminated`, set by gunicorn and Werkzeug's
    server for chunked bodies) are read: reading an unterminated stream could block forever.
    """

    def __init__(self, app: Callable, limit: Callable[[], int | None]) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        limit = self.limit()
        unframed = get_content_length(environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING")) is None
        if limit is not None and unframed and environ.get("wsgi.input_terminated"):
            body = _read_at_most(environ["wsgi.input"], limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)


def _read_at_most(stream, size: int) -> bytes:
    """Up to `size` bytes: streams may return fewer than asked for before they end."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, 65_536))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def check_request() -> None:
    """Refuse oversized bodies and addresses, and query strings that are not UTF-8, before any view."""
    limit = request.max_content_length
    if limit is not None and request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"Request bodies are limited to {limit} bytes; this one is larger.")
    url_bytes = len(request.environ.get("PATH_INFO", "")) + len(request.query_string)
    if url_bytes > MAX_URL_BYTES:
        raise RequestURITooLarge(
            f"The address is {url_bytes} bytes long; the limit is {MAX_URL_BYTES} "
            f"(a query may have up to 1000 characters)."
        )
    try:
        request.query_string.decode("utf-8")
    except UnicodeDecodeError:
        raise BadParameter("invalid_encoding", "The query string is not valid UTF-8; percent-encode it as UTF-8.") from None


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def too_many_requests(exc: RateLimitExceeded):
    return error_response(429, "too_many_requests",
                          f"Too many requests from your address (limit: {exc.description}); try again shortly.")


def _exempt_from_rate_limit() -> bool:
    return request.endpoint in RATE_LIMIT_EXEMPT_ENDPOINTS


def rate_limiter(app: Flask, rate: str, storage_uri: str = "memory://") -> Limiter | None:
    """A Flask-Limiter for `rate` (e.g. "60/minute", or "10/second;300/hour"); None when empty.

    With memory:// storage each process counts on its own, so with W gunicorn workers a client may
    get up to W times the rate; a shared store (KB_RATE_LIMIT_STORAGE=redis://...) fixes that.
    Behind a reverse proxy every client shares the proxy's address unless KB_TRUSTED_PROXIES is set.
    """
    rate = (rate or "").strip()
    if not rate:
        return None
    try:
        limits.parse_many(rate)
    except ValueError as exc:
        raise ValueError(f"KB_RATE_LIMIT={rate!r} is not a rate such as '60/minute' or '10/second;300/hour' ({exc}).") from exc
    limits_storage(storage_uri)
    return Limiter(
        get_remote_address,
        app=app,
        application_limits=[rate],
        application_limits_exempt_when=_exempt_from_rate_limit,
        storage_uri=storage_uri,
        strategy="moving-window",
        headers_enabled=True,
        key_prefix="kb",
    )


def limits_storage(storage_uri: str) -> limits.storage.Storage:
    """The `limits` store KB_RATE_LIMIT_STORAGE names (the rate limit and the admin sign-in
    throttle count there); a value that cannot be used stops the app at start."""
    try:
        return limits.storage.storage_from_string(storage_uri)
    except Exception as exc:  # unknown scheme, or the scheme's client library is not installed
        raise ValueError(f"KB_RATE_LIMIT_STORAGE={storage_uri!r} cannot be used: {exc}. "
                         f"Use memory:// or a limits storage URI such as redis://host:6379.") from exc

"""A tiny local web site for crawler tests (and for serving rendered corpora).

``CrawlSite`` runs a ``http.server.ThreadingHTTPServer`` on 127.0.0.1 with an
ephemeral port in a background thread.  It serves

* ``routes``: a dict ``{path: response}``; ``path`` may include a query string
  (an exact ``path?query`` match wins, then the bare path).  A response is a
  ``Route``, a tuple ``(status, headers, body)`` / ``(status, headers, body, delay)``,
  or a callable ``fn(RecordedRequest) -> Route | tuple`` for dynamic answers;
* ``directory``: files under a directory (``index.html`` for directories,
  content type from the extension), used when no route matches;
* otherwise a plain-text 404.

Bodies are ``bytes``, ``str`` (UTF-8 encoded) or a callable returning an
iterable of ``bytes`` chunks (streamed without Content-Length; the connection
is closed at the end).  ``str``/``bytes`` bodies get a Content-Length and, if
no Content-Type header is given, ``text/html; charset=utf-8``.  A header whose
value is ``None`` is omitted (so ``{"Content-Type": None}`` sends none).

Every request is recorded (method, path, headers, monotonic + wall time,
bytes sent, whether the body was completely written), see ``site.requests``;
call ``site.wait_idle()`` before inspecting ``completed``/``bytes_sent``.

Usage::

    with CrawlSite({"/": "<a href='/a'>a</a>", "/a": "<p>A</p>"}) as site:
        crawl(site.url("/"), ...)
        assert site.paths() == ["/robots.txt", "/", "/a"]

    # or as a pytest fixture: ``from crawl_site import local_site``

    # serve a directory from the command line (Ctrl-C to stop):
    python tests/crawl_site.py path/to/html --port 8000
"""

from __future__ import annotations

import argparse
import html
import mimetypes
import posixpath
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Union
from urllib.parse import unquote, urlsplit

__all__ = ["Route", "RecordedRequest", "CrawlSite", "html_page", "local_site"]

Body = Union[bytes, str, Callable[[], Iterable[bytes]]]


@dataclass
class Route:
    status: int = 200
    headers: Mapping[str, str | None] | list[tuple[str, str]] = field(default_factory=dict)
    body: Body = b""
    delay: float = 0.0  # seconds to wait before answering (interrupted when the site stops)


@dataclass
class RecordedRequest:
    method: str
    path: str  # as sent, including any query string
    headers: dict[str, str]
    time: float  # time.monotonic() when the request line + headers were parsed
    wall_time: float  # time.time() at the same moment
    client: str
    status: int | None = None
    bytes_sent: int = 0  # body bytes written
    completed: bool = False  # True once the whole body was written
    error: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return default


def html_page(title: str, links: Iterable[str] = (), body: str = "") -> str:
    """A small HTML document with a title, optional text and a list of links."""
    items = "\n".join(f'<li><a href="{html.escape(href, quote=True)}">{html.escape(href)}</a></li>' for href in links)
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title></head>\n<body><h1>{html.escape(title)}</h1>\n"
        f"{body}\n<ul>\n{items}\n</ul>\n</body></html>\n"
    )


def _as_route(value: Any) -> Route:
    if isinstance(value, Route):
        return value
    if isinstance(value, (str, bytes)):
        return Route(200, {}, value)
    if isinstance(value, tuple) and 3 <= len(value) <= 4:
        return Route(*value)
    raise TypeError(f"unsupported route value: {value!r}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    site: "CrawlSite"

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        import sys

        self.site.errors.append(repr(sys.exc_info()[1]))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection; close-delimited streams work

    def do_GET(self) -> None:  # noqa: N802
        self.server.site._handle(self, head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self.server.site._handle(self, head=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        pass


class CrawlSite:
    """Local test web server; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        routes: Mapping[str, Any] | None = None,
        directory: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("CrawlSite only binds to loopback addresses")
        self.routes: dict[str, Any] = dict(routes or {})
        self.directory = Path(directory).resolve() if directory is not None else None
        self.host = "127.0.0.1" if host == "localhost" else host
        self._port = port
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._inflight = 0
        self._requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------ #

    def start(self) -> "CrawlSite":
        if self._server is not None:
            return self
        self._stop.clear()
        server = _Server((self.host, self._port), _Handler)
        server.site = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="CrawlSite", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "CrawlSite":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------ #

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("site is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        """Absolute URL for ``path``; ``host="localhost"`` gives an alias that a
        crawler treats as a different host while still reaching this server."""
        if not path.startswith("/"):
            path = "/" + path
        if host is None:
            return self.base_url + path
        return f"http://{host}:{self.port}{path}"

    # -- routes --------------------------------------------------------------- #

    def add(self, path: str, value: Any = None, **kwargs: Any) -> None:
        """``site.add("/x", "<html>...")`` or ``site.add("/x", status=301, headers={...})``."""
        self.routes[path] = Route(**kwargs) if value is None else value

    def __setitem__(self, path: str, value: Any) -> None:
        self.routes[path] = value

    # -- request log ---------------------------------------------------------- #

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def requests_for(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being answered (the client may see a response
        before the server thread has finished bookkeeping). False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout)

    def clear_log(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- serving -------------------------------------------------------------- #

    def _lookup(self, rec: RecordedRequest) -> Route | None:
        path_only = urlsplit(rec.path).path
        for key in (rec.path, path_only):
            if key in self.routes:
                value = self.routes[key]
                if callable(value) and not isinstance(value, Route):
                    value = value(rec)
                return _as_route(value)
        if self.directory is not None:
            return self._from_directory(path_only)
        return None

    def _from_directory(self, url_path: str) -> Route | None:
        assert self.directory is not None
        rel = posixpath.normpath(unquote(url_path)).lstrip("/")
        target = (self.directory / rel).resolve()
        try:
            target.relative_to(self.directory)
        except ValueError:
            return Route(403, {"Content-Type": "text/plain"}, b"forbidden")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            return None
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/xhtml+xml", "application/json"):
            ctype += "; charset=utf-8"
        return Route(200, {"Content-Type": ctype}, target.read_bytes())

    def _handle(self, handler: _Handler, *, head: bool) -> None:
        rec = RecordedRequest(
            method=handler.command,
            path=handler.path,
            headers={k: v for k, v in handler.headers.items()},
            time=time.monotonic(),
            wall_time=time.time(),
            client=handler.client_address[0],
        )
        with self._lock:
            self._requests.append(rec)
            self._inflight += 1
        try:
            route = self._lookup(rec)
            if route is None:
                route = Route(404, {"Content-Type": "text/plain; charset=utf-8"}, b"not found\n")
            if route.delay and self._stop.wait(route.delay):
                rec.error = "site stopped during delay"
                return
            headers = list(route.headers.items()) if isinstance(route.headers, Mapping) else list(route.headers)
            names = {k.lower() for k, _ in headers}
            body = route.body
            chunks: Iterable[bytes]
            if isinstance(body, str):
                body = body.encode("utf-8")
            if isinstance(body, bytes):
                if "content-length" not in names:
                    headers.append(("Content-Length", str(len(body))))
                chunks = [body]
            else:
                chunks = body()
            if "content-type" not in names:
                headers.append(("Content-Type", "text/html; charset=utf-8"))
            rec.status = route.status
            handler.send_response(route.status)
            for name, value in headers:
                if value is not None:
                    handler.send_header(name, value)
            handler.send_header("Connection", "close")
            handler.end_headers()
            if not head:
                for chunk in chunks:
                    if self._stop.is_set():
                        rec.error = "site stopped"
                        return
                    handler.wfile.write(chunk)
                    rec.bytes_sent += len(chunk)
            rec.completed = True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            rec.error = f"client went away: {exc.__class__.__name__}"
        except Exception as exc:  # keep serving; surface in site.errors
            rec.error = repr(exc)
            self.errors.append(repr(exc))
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()


try:  # pytest fixture (optional)
    import pytest

    @pytest.fixture
    def local_site():
        """An empty running CrawlSite; add routes with ``local_site.add(...)``."""
        with CrawlSite() as site:
            yield site

except ImportError:  # pragma: no cover
    local_site = None  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a directory on 127.0.0.1 for local crawling.")
    parser.add_argument("directory")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with CrawlSite(directory=args.directory, port=args.port) as site:
        print(f"serving {args.directory} at {site.url('/')}  (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

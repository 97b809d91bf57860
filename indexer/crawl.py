"""Polite, safety-first breadth-first web crawler for the knowledge base.

``crawl(start_url, out_dir, settings)`` fetches HTML pages breadth-first from
``start_url`` and saves each one as ``out_dir/<key>.html`` (raw bytes) plus a
``<key>.json`` sidecar, where ``key`` is the first 16 hex digits of the SHA-1
of the page's final URL.

Rules (see ``CrawlSettings``):

* only ``http``/``https``; links are resolved with ``urljoin``, the fragment
  is dropped, scheme/host are lower-cased, default ports and userinfo removed;
* only hosts in ``allow_domains`` (a domain also allows its subdomains; empty
  means "the start URL's host only");
* robots.txt is honoured per origin (including ``Crawl-delay`` when it is
  larger than ``delay``);
* every request carries ``user_agent``; requests to one host are at least
  ``delay`` seconds apart; each request has a ``timeout``; the whole crawl
  stops after ``max_seconds`` or ``max_pages`` saved pages;
* redirects are followed by hand (at most 5 hops) and every hop is re-checked
  against the allow-list, the private-address rule and robots.txt;
* unless ``allow_private`` is set, a host whose addresses include any
  private/loopback/link-local/multicast/reserved/unspecified (or otherwise
  non-global) IP is refused, both before the request (DNS check) and on the
  socket actually connected (closes the DNS-rebinding gap);
* only ``text/html`` and ``application/xhtml+xml`` are saved; bodies are
  streamed and abandoned once they pass ``max_bytes``;
* pages are de-duplicated by final URL and by SHA-256 of the body.

Skip reasons (``SkippedURL.reason``) are short stable codes:

``scheme``, ``off-domain``, ``redirect-off-domain``, ``robots``,
``private-address``, ``duplicate-url``, ``duplicate-content``, ``not-html``,
``too-large``, ``http-<status>``, ``timeout`` (a single request timed out),
``max-pages`` (left in the queue when the page cap was reached),
``max-seconds`` (left unfetched when the crawl's time budget ran out) and
``error: <ExceptionName or short text>`` (details in ``SkippedURL.detail``).

The network is only reached directly (``Session.trust_env`` is off, so proxy
environment variables are ignored): the connected-peer check needs to see the
real server address.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import requests
import urllib3
from bs4 import BeautifulSoup
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from kb.core.fsutil import atomic_write_bytes

__all__ = [
    "CrawlSettings",
    "SkippedURL",
    "SavedPage",
    "CrawlReport",
    "crawl",
    "normalize_url",
    "host_allowed",
    "is_blocked_ip",
    "PrivateAddressError",
    "DEFAULT_USER_AGENT",
]

DEFAULT_USER_AGENT = (
    "DenmarkDigitalHealthKB-crawler/1.0 (+https://github.com/; research knowledge base)"
)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
ROBOTS_MAX_BYTES = 512 * 1024  # like Google: ignore robots.txt content past 500 KiB
READ_CHUNK = 64 * 1024
MAX_URL_CHARS_IN_REPORT = 2000


# --------------------------------------------------------------------------- #
# Public data types
# --------------------------------------------------------------------------- #


@dataclass
class CrawlSettings:
    depth: int = 2
    allow_domains: tuple[str, ...] = ()  # empty => only the start URL's host; a domain allows its subdomains
    max_pages: int = 200
    max_bytes: int = 2_000_000  # per page; the body is streamed and abandoned past the cap
    max_seconds: float = 600.0  # whole crawl wall-clock budget
    delay: float = 1.0  # min seconds between two requests to the same host
    timeout: float = 10.0  # connect+read timeout per request
    user_agent: str = DEFAULT_USER_AGENT
    allow_private: bool = False  # tests set True to crawl 127.0.0.1


@dataclass
class SkippedURL:
    url: str
    reason: str
    detail: str = ""  # free text (e.g. redirect target, content type, exception message)


@dataclass
class SavedPage:
    url: str
    final_url: str
    fetched_at: str  # ISO-8601, UTC
    path: Path
    sha256: str
    depth: int


@dataclass
class CrawlReport:
    saved: list[SavedPage] = field(default_factory=list)
    skipped: list[SkippedURL] = field(default_factory=list)
    seconds: float = 0.0


class PrivateAddressError(Exception):
    """Raised (deliberately not an OSError, so urllib3/requests don't wrap or
    retry it) when a connection would reach a non-public address."""


# --------------------------------------------------------------------------- #
# URL helpers
# --------------------------------------------------------------------------- #


def _normalize_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    if host and not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return host


def normalize_url(url: str) -> str:
    """Canonical form of an absolute URL.

    http/https: lower-case scheme and host, IDNA host, default port and
    userinfo removed, empty path -> "/", fragment dropped, percent-encoding
    made canonical.  Other schemes: returned with only the fragment dropped.
    Raises ValueError for a malformed http(s) URL (no host, bad port).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        return urlunsplit((scheme, parts.netloc, parts.path, parts.query, ""))
    host = _normalize_host(parts.hostname or "")
    if not host:
        raise ValueError(f"URL has no host: {url!r}")
    port = parts.port  # raises ValueError for a malformed port
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return requote_uri(urlunsplit((scheme, netloc, parts.path or "/", parts.query, "")))


def _normalize_domain(domain: str) -> str:
    domain = domain.strip()
    if "://" in domain:
        domain = urlsplit(domain).hostname or ""
    return _normalize_host(domain.lstrip("."))


def host_allowed(host: str, allowed: Iterable[str], *, exact: bool = False) -> bool:
    """True if ``host`` equals one of ``allowed`` or (unless ``exact``) is a subdomain of one."""
    host = _normalize_host(host or "")
    if not host:
        return False
    for domain in allowed:
        if host == domain or (not exact and host.endswith("." + domain)):
            return True
    return False


def is_blocked_ip(address: str) -> bool:
    """True if the address is not a plain public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and is_blocked_ip(str(embedded)):
            return True
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def _resolve(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to (module-level so tests can fake DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


# --------------------------------------------------------------------------- #
# Connection-level guard: check the peer we actually connected to
# --------------------------------------------------------------------------- #


class _PeerCheckMixin:
    def _new_conn(self) -> socket.socket:  # type: ignore[override]
        sock = super()._new_conn()  # type: ignore[misc]
        try:
            peer = sock.getpeername()[0]
        except OSError as exc:  # pragma: no cover - extremely unusual
            sock.close()
            raise PrivateAddressError(f"cannot determine peer address: {exc}") from exc
        if is_blocked_ip(peer):
            sock.close()
            raise PrivateAddressError(f"connected peer {peer} is not a public address")
        return sock


class _GuardedHTTPConnection(_PeerCheckMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_PeerCheckMixin, HTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:  # type: ignore[override]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }


def _make_session(settings: CrawlSettings) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies / netrc from the environment
    session.headers["User-Agent"] = settings.user_agent
    session.headers["Accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
    adapter_cls = HTTPAdapter if settings.allow_private else _GuardedAdapter
    session.mount("http://", adapter_cls(max_retries=0))
    session.mount("https://", adapter_cls(max_retries=0))
    return session


# --------------------------------------------------------------------------- #
# Internal control flow
# --------------------------------------------------------------------------- #


class _Skip(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class _BudgetExhausted(Exception):
    pass


@dataclass
class _Page:
    url: str
    final_url: str
    status: int
    content_type: str
    body: bytes


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _in_chain(exc: BaseException, wanted: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of a type in `wanted` anywhere in exc's cause/context/args chain.

    requests and urllib3 wrap the error that matters (a timeout, our own private-address refusal)
    several layers deep, in causes, contexts and constructor arguments.
    """
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, wanted):
            return e
        for nxt in (e.__cause__, e.__context__, *[a for a in e.args if isinstance(a, BaseException)]):
            if nxt is not None:
                stack.append(nxt)
    return None


_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError, socket.timeout)


def _utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def page_key(final_url: str) -> str:
    return hashlib.sha1(final_url.encode("utf-8")).hexdigest()[:16]


class _Crawler:
    def __init__(
        self,
        start_url: str,
        out_dir: Path,
        settings: CrawlSettings,
        progress: Callable[[str], None] | None,
    ) -> None:
        self.settings = settings
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.start_url = start_url
        start_host = urlsplit(start_url).hostname or ""
        if settings.allow_domains:
            self.allowed = tuple(d for d in (_normalize_domain(x) for x in settings.allow_domains) if d)
            self.exact_hosts = False
        else:
            self.allowed = (_normalize_host(start_host),)
            self.exact_hosts = True
        if not self._host_ok(start_host):
            raise ValueError(
                f"start URL host {start_host!r} is not within the allowed domains {list(self.allowed)}"
            )
        self.report = CrawlReport()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + max(0.0, float(settings.max_seconds))
        self.session = _make_session(settings)
        self.seen: set[str] = set()  # every URL ever queued or reported from links
        self.saved_final: set[str] = set()
        self.saved_hashes: set[str] = set()
        self.last_request: dict[str, float] = {}  # netloc -> monotonic time
        self.robots: dict[str, RobotFileParser] = {}  # origin -> parser
        self.req_deadline = self.deadline

    # -- small helpers ------------------------------------------------------ #

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _host_ok(self, host: str | None) -> bool:
        return host_allowed(host or "", self.allowed, exact=self.exact_hosts)

    def _say(self, message: str) -> None:
        if self.progress is not None:
            try:
                self.progress(message)
            except Exception:  # a broken progress callback must not kill the crawl
                pass

    def _skip(self, url: str, reason: str, detail: str = "") -> None:
        self.report.skipped.append(SkippedURL(url[:MAX_URL_CHARS_IN_REPORT], reason, _short(detail)))
        self._say(f"skip {reason}: {url[:200]}" + (f" ({_short(detail, 120)})" if detail else ""))

    # -- main loop ----------------------------------------------------------- #

    def run(self) -> CrawlReport:
        s = self.settings
        queue: deque[tuple[str, int]] = deque([(self.start_url, 0)])
        self.seen.add(self.start_url)
        try:
            while queue:
                if len(self.report.saved) >= s.max_pages:
                    for url, _ in queue:
                        self._skip(url, "max-pages")
                    break
                if self._remaining() <= 0:
                    for url, _ in queue:
                        self._skip(url, "max-seconds")
                    break
                url, depth = queue.popleft()
                try:
                    page = self._fetch_page(url)
                except _Skip as skip:
                    self._skip(url, skip.reason, skip.detail)
                    continue
                except _BudgetExhausted:
                    self._skip(url, "max-seconds")
                    for rest, _ in queue:
                        self._skip(rest, "max-seconds")
                    break
                except Exception as exc:  # one odd URL/server must not end the crawl
                    self._skip(url, f"error: {type(exc).__name__}", str(exc))
                    continue
                if not self._save(page, depth):
                    continue
                if depth < s.depth and len(self.report.saved) < s.max_pages:
                    try:
                        links = self._extract_links(page.body, page.final_url)
                    except Exception as exc:  # pragma: no cover - parser failure on hostile HTML
                        self._say(f"could not parse links in {page.final_url}: {_short(str(exc), 120)}")
                        links = []
                    for link in links:
                        self._consider_link(link, depth + 1, queue)
        finally:
            self.session.close()
        self.report.seconds = time.monotonic() - self.t0
        return self.report

    def _consider_link(self, href_abs: str, depth: int, queue: deque[tuple[str, int]]) -> None:
        try:
            url = normalize_url(href_abs)
        except ValueError as exc:
            if href_abs not in self.seen:
                self.seen.add(href_abs)
                self._skip(href_abs, "error: invalid URL", str(exc))
            return
        if url in self.seen:
            return
        self.seen.add(url)
        parts = urlsplit(url)
        if parts.scheme not in ALLOWED_SCHEMES:
            self._skip(url, "scheme")
            return
        if not self._host_ok(parts.hostname):
            self._skip(url, "off-domain")
            return
        queue.append((url, depth))

    @staticmethod
    def _extract_links(body: bytes, base_url: str) -> list[str]:
        soup = BeautifulSoup(body, "html.parser")
        base = base_url
        base_tag = soup.find("base", href=True)
        if base_tag is not None:
            try:
                base = urljoin(base_url, str(base_tag["href"]).strip())
            except ValueError:
                base = base_url
        links: list[str] = []
        for a in soup.find_all("a", href=True):
            href = str(a["href"]).strip()
            if not href:
                continue
            try:
                links.append(urljoin(base, href))
            except ValueError:
                links.append(href)
        return links

    # -- checks ---------------------------------------------------------------- #

    def _check_address(self, url: str) -> None:
        if self.settings.allow_private:
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
        try:
            addresses = _resolve(host, port)
        except (socket.gaierror, UnicodeError, OSError) as exc:
            raise _Skip("error: DNS lookup failed", f"{host}: {exc}") from None
        blocked = [a for a in addresses if is_blocked_ip(a)]
        if blocked or not addresses:
            raise _Skip("private-address", f"{host} -> {', '.join(blocked) or 'no address'}")

    def _precheck(self, url: str, *, redirect: bool) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ALLOWED_SCHEMES:
            raise _Skip("scheme", url if redirect else "")
        if not self._host_ok(parts.hostname):
            raise _Skip("redirect-off-domain" if redirect else "off-domain", url)
        if url in self.saved_final:
            raise _Skip("duplicate-url", url)
        self._check_address(url)
        if not self._robots_allows(url):
            raise _Skip("robots", url if redirect else "")

    # -- robots.txt ------------------------------------------------------------ #

    def _robots_allows(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        rp = self.robots.get(origin)
        if rp is None:
            rp = self._load_robots(origin)
            self.robots[origin] = rp
        return rp.can_fetch(self.settings.user_agent, url)

    def _load_robots(self, origin: str) -> RobotFileParser:
        robots_url = origin + "/robots.txt"
        rp = RobotFileParser(robots_url)
        try:
            status, text = self._fetch_robots(robots_url)
        except _Skip as skip:
            if skip.reason == "private-address":
                raise
            self._say(f"robots.txt unavailable ({skip.reason}) for {origin}: allowing all")
            rp.allow_all = True
            return rp
        if 200 <= status < 300:
            rp.parse(text.splitlines())
        elif status in (401, 403):  # urllib.robotparser convention
            rp.disallow_all = True
        else:  # 404 and other errors: allow all
            rp.allow_all = True
        self._say(f"robots.txt {status} for {origin}")
        return rp

    def _fetch_robots(self, robots_url: str) -> tuple[int, str]:
        """Fetch robots.txt following redirects (any allowed-scheme public host)."""
        current = robots_url
        for _hop in range(MAX_REDIRECTS + 1):
            if urlsplit(current).scheme not in ALLOWED_SCHEMES:
                raise _Skip("scheme", current)
            self._check_address(current)
            requested = current
            resp = self._request(requested)
            try:
                location = resp.headers.get("Location")
                if resp.status_code in REDIRECT_STATUSES and location:
                    try:
                        current = normalize_url(urljoin(current, location))
                    except ValueError as exc:
                        raise _Skip("error: invalid redirect", str(exc)) from None
                    continue
                if not 200 <= resp.status_code < 300:
                    return resp.status_code, ""
                body = self._read_body(resp, ROBOTS_MAX_BYTES, truncate=True)
                return resp.status_code, body.decode("utf-8", errors="replace")
            finally:
                self._finish(resp, requested)
        raise _Skip("error: too many redirects")

    def _host_delay(self, netloc: str, scheme: str) -> float:
        delay = max(0.0, float(self.settings.delay))
        rp = self.robots.get(f"{scheme}://{netloc}")
        if rp is not None:
            try:
                crawl_delay = rp.crawl_delay(self.settings.user_agent)
            except Exception:
                crawl_delay = None
            if crawl_delay:
                delay = max(delay, float(crawl_delay))
        return delay

    # -- HTTP ------------------------------------------------------------------ #

    def _request(self, url: str) -> requests.Response:
        parts = urlsplit(url)
        netloc = parts.netloc
        last = self.last_request.get(netloc)
        if last is not None:
            wait = last + self._host_delay(netloc, parts.scheme) - time.monotonic()
            if wait > 0:
                if wait >= self._remaining():
                    raise _BudgetExhausted()
                time.sleep(wait)
        remaining = self._remaining()
        if remaining <= 0:
            raise _BudgetExhausted()
        timeout = max(0.001, min(float(self.settings.timeout), remaining))
        started = time.monotonic()
        self.last_request[netloc] = started
        self.req_deadline = min(started + float(self.settings.timeout), self.deadline)
        try:
            return self.session.get(url, stream=True, allow_redirects=False, timeout=(timeout, timeout))
        except PrivateAddressError as exc:
            raise _Skip("private-address", str(exc)) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException,
                OSError, ValueError) as exc:
            self.last_request[netloc] = time.monotonic()
            raise self._classify(exc) from None

    def _finish(self, resp: requests.Response, url: str) -> None:
        resp.close()
        self.last_request[urlsplit(url).netloc] = time.monotonic()

    def _classify(self, exc: BaseException) -> _Skip | _BudgetExhausted:
        private = _in_chain(exc, (PrivateAddressError,))
        if private is not None:
            return _Skip("private-address", str(private))
        if _in_chain(exc, _TIMEOUTS) is not None:
            if self._remaining() <= 0.01:
                return _BudgetExhausted()
            return _Skip("timeout", _short(str(exc)))
        return _Skip(f"error: {type(exc).__name__}", _short(str(exc)))

    def _read_body(self, resp: requests.Response, cap: int, *, truncate: bool = False) -> bytes:
        """Stream the (decoded) body, giving up once it exceeds ``cap`` bytes or the request deadline."""
        raw = resp.raw
        buf = bytearray()
        try:
            while True:
                if hasattr(raw, "read1"):
                    chunk = raw.read1(READ_CHUNK, decode_content=True)
                else:  # pragma: no cover - older urllib3
                    chunk = raw.read(READ_CHUNK, decode_content=True)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > cap:
                    if truncate:
                        return bytes(buf[:cap])
                    raise _Skip("too-large", f"body exceeds {cap} bytes")
                if time.monotonic() > self.req_deadline:
                    if self._remaining() <= 0:
                        raise _BudgetExhausted()
                    raise _Skip("timeout", "body not received within the timeout")
        except (_Skip, _BudgetExhausted):
            raise
        except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise self._classify(exc) from None
        return bytes(buf)

    def _fetch_page(self, url: str) -> _Page:
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            self._precheck(current, redirect=hop > 0)
            requested = current
            resp = self._request(requested)
            try:
                status = resp.status_code
                location = resp.headers.get("Location")
                if status in REDIRECT_STATUSES and location:
                    try:
                        current = normalize_url(urljoin(current, location))
                    except ValueError as exc:
                        raise _Skip("error: invalid redirect", str(exc)) from None
                    self._say(f"redirect {status}: {url} -> {current}")
                    continue
                if not 200 <= status < 300:
                    raise _Skip(f"http-{status}", current if current != url else "")
                content_type = resp.headers.get("Content-Type", "")
                mime = content_type.split(";", 1)[0].strip().lower()
                if mime not in HTML_TYPES:
                    raise _Skip("not-html", content_type or "(no content type)")
                length = resp.headers.get("Content-Length")
                if length is not None:
                    try:
                        declared = int(length)
                    except ValueError:
                        declared = -1
                    if declared > self.settings.max_bytes:
                        raise _Skip("too-large", f"Content-Length {declared} > {self.settings.max_bytes}")
                body = self._read_body(resp, self.settings.max_bytes)
                return _Page(url, current, status, content_type, body)
            finally:
                self._finish(resp, requested)
        raise _Skip("error: too many redirects", f"more than {MAX_REDIRECTS} redirects")

    # -- storage --------------------------------------------------------------- #

    def _save(self, page: _Page, depth: int) -> bool:
        if page.final_url in self.saved_final:
            self._skip(page.url, "duplicate-url", page.final_url)
            return False
        digest = hashlib.sha256(page.body).hexdigest()
        if digest in self.saved_hashes:
            self._skip(page.url, "duplicate-content", digest)
            return False
        self.out_dir.mkdir(parents=True, exist_ok=True)
        key = page_key(page.final_url)
        html_path = self.out_dir / f"{key}.html"
        fetched_at = _utc_now_iso()
        meta = {
            "url": page.url,
            "final_url": page.final_url,
            "fetched_at": fetched_at,
            "status": page.status,
            "content_type": page.content_type,
            "sha256": digest,
            "depth": depth,
        }
        atomic_write_bytes(html_path, page.body)
        atomic_write_bytes(
            self.out_dir / f"{key}.json",
            (json.dumps(meta, ensure_ascii=False, indent=2) + "\n").encode("utf-8"),
        )
        self.saved_final.add(page.final_url)
        self.saved_hashes.add(digest)
        self.report.saved.append(SavedPage(page.url, page.final_url, fetched_at, html_path, digest, depth))
        self._say(f"saved [{depth}] {page.final_url} ({len(page.body)} bytes)")
        return True


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def crawl(
    start_url: str,
    out_dir: Path,
    settings: CrawlSettings,
    *,
    progress: Callable[[str], None] | None = None,
) -> CrawlReport:
    """Breadth-first crawl from ``start_url``; see the module docstring for the rules."""
    if not isinstance(start_url, str) or not start_url.strip():
        raise ValueError("start URL must be a non-empty http:// or https:// URL")
    scheme = urlsplit(start_url.strip()).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise ValueError(
            f"start URL must use http:// or https:// (got {start_url!r}); "
            "file:, ftp:, mailto:, javascript: and other schemes are not crawled"
        )
    try:
        start = normalize_url(start_url)
    except ValueError as exc:
        raise ValueError(f"invalid start URL {start_url!r}: {exc}") from None
    if settings.depth < 0:
        raise ValueError("depth must be >= 0")
    if settings.max_pages < 0 or settings.max_bytes < 0:
        raise ValueError("max_pages and max_bytes must be >= 0")
    return _Crawler(start, Path(out_dir), settings, progress).run()

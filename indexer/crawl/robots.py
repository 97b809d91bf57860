"""robots.txt per origin, read as RFC 9309 says.

Rules are parsed by ``protego`` (``*`` and ``$`` wildcards, the longest matching Allow/Disallow wins,
ties go to Allow, Crawl-delay). What a fetch that yields no rules means (RFC 9309 §2.3.1):

* 2xx: the file's rules (only its first 500 KiB are read, like Google);
* 4xx ("unavailable"), or more than five redirects: everything is allowed;
* 5xx, or unreachable (connection error, timeout, a redirect that may not be followed): everything is
  disallowed, and the pages of that origin are skipped as ``robots`` with the cause in the detail.

A robots.txt on, or redirecting to, a private address refuses the page as ``private-address``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from .errors import Skip
from .fetcher import Fetcher
from .redirects import follow
from .urls import ALLOWED_SCHEMES, Scope

__all__ = ["RobotsRules", "ROBOTS_MAX_BYTES"]

ROBOTS_MAX_BYTES = 512 * 1024
_ALLOW_ALL = ""
_DISALLOW_ALL = "User-agent: *\nDisallow: /\n"


@dataclass
class _Verdict:
    parser: Protego
    note: str  # why these rules (said once, and the detail of a page skipped by a blanket disallow)
    blanket_disallow: bool = False


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class RobotsRules:
    """Fetches each origin's robots.txt once (through ``fetcher``) and answers whether a URL may be fetched."""

    def __init__(self, fetcher: Fetcher, scope: Scope, user_agent: str, say: Callable[[str], None]) -> None:
        self._fetcher = fetcher
        self._scope = scope
        self._user_agent = user_agent
        self._say = say
        self._by_origin: dict[str, _Verdict] = {}

    def check(self, url: str, *, redirect: bool = False) -> None:
        """Raise ``Skip("robots")`` if robots.txt of the URL's origin disallows it."""
        verdict = self._verdict(_origin(url))
        if not verdict.parser.can_fetch(url, self._user_agent):
            detail = verdict.note if verdict.blanket_disallow else ""
            raise Skip("robots", url if redirect and not detail else detail)

    def _verdict(self, origin: str) -> _Verdict:
        verdict = self._by_origin.get(origin)
        if verdict is None:
            verdict = self._load(origin)
            self._by_origin[origin] = verdict
            self._say(f"{verdict.note} for {origin}")
            delay = verdict.parser.crawl_delay(self._user_agent)
            if delay:
                self._fetcher.slow_down(urlsplit(origin).netloc, delay)
        return verdict

    def _check_hop(self, url: str, hop: int) -> None:
        if urlsplit(url).scheme not in ALLOWED_SCHEMES:
            raise Skip("scheme", url)
        if not self._scope.port_ok(url):
            raise Skip("port", url)
        self._fetcher.check_address(url)

    def _load(self, origin: str) -> _Verdict:
        try:
            final, resp = follow(origin + "/robots.txt", self._fetcher, self._check_hop)
        except Skip as skip:
            if skip.reason == "private-address":
                raise
            if skip.reason == "error: too many redirects":
                return _Verdict(Protego.parse(_ALLOW_ALL), "robots.txt unavailable (too many redirects): allowing all")
            return _unreachable(skip)
        try:
            status = resp.status_code
            if 200 <= status < 300:
                body = self._fetcher.read_body(resp, ROBOTS_MAX_BYTES, truncate=True)
                return _Verdict(Protego.parse(body.decode("utf-8", errors="replace")), f"robots.txt {status}")
        except Skip as skip:
            return _unreachable(skip)
        finally:
            self._fetcher.finish(resp, final)
        if status >= 500:
            return _Verdict(Protego.parse(_DISALLOW_ALL), f"robots.txt {status} (server error): disallowing all", True)
        return _Verdict(Protego.parse(_ALLOW_ALL), f"robots.txt {status}: allowing all")


def _unreachable(skip: Skip) -> _Verdict:
    return _Verdict(Protego.parse(_DISALLOW_ALL), f"robots.txt unreachable ({skip.reason}): disallowing all", True)

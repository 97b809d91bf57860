"""One guarded HTTP request at a time: address check, per-host delay, timeouts, capped body reads and
error classification into the crawler's skip reasons."""

from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlsplit

import requests
import urllib3
from urllib3.exceptions import NewConnectionError

from . import addresses
from .budget import Budget
from .errors import BudgetExhausted, Skip, in_chain, short
from .session import make_session
from .settings import CrawlSettings
from .urls import effective_port

__all__ = ["Fetcher"]

READ_CHUNK = 64 * 1024
_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError, socket.timeout)
_NETWORK_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


class Fetcher:
    """Sends GET requests (no redirects followed: see ``redirects.follow``) and reads their bodies."""

    def __init__(self, settings: CrawlSettings, budget: Budget) -> None:
        self.settings = settings
        self.budget = budget
        self.session = make_session(settings)
        self._last_request: dict[str, float] = {}  # netloc -> monotonic time
        self._host_delay: dict[str, float] = {}  # netloc -> Crawl-delay from robots.txt
        self._request_deadline = budget.deadline

    def close(self) -> None:
        self.session.close()

    def _timeout(self) -> float:
        return max(0.001, min(float(self.settings.timeout), self.budget.remaining()))

    def slow_down(self, netloc: str, seconds: float) -> None:
        """Wait at least ``seconds`` between requests to ``netloc`` (robots.txt Crawl-delay)."""
        self._host_delay[netloc] = max(self._host_delay.get(netloc, 0.0), float(seconds))

    def check_address(self, url: str) -> None:
        """Skip ``private-address`` unless every address of the URL's host is public."""
        if self.settings.allow_private:
            return
        host = urlsplit(url).hostname or ""
        try:
            addresses.public_addresses(host, effective_port(url), self._timeout())
        except addresses.PrivateAddressError as exc:
            raise Skip("private-address", str(exc)) from None
        except addresses.DNSLookupTimeout as exc:
            if self.budget.remaining() <= 0.01:
                raise BudgetExhausted() from None
            raise Skip("error: DNS lookup timed out", str(exc)) from None
        except (UnicodeError, OSError) as exc:
            raise Skip("error: DNS lookup failed", f"{host}: {exc}") from None

    def _wait_turn(self, netloc: str) -> None:
        last = self._last_request.get(netloc)
        if last is not None:
            delay = max(0.0, float(self.settings.delay), self._host_delay.get(netloc, 0.0))
            wait = last + delay - time.monotonic()
            if wait > 0:
                if wait >= self.budget.remaining():
                    raise BudgetExhausted()
                time.sleep(wait)
        if self.budget.remaining() <= 0:
            raise BudgetExhausted()

    def request(self, url: str) -> requests.Response:
        """GET ``url`` with the body left unread; call ``finish`` when done with the response."""
        netloc = urlsplit(url).netloc
        self._wait_turn(netloc)
        timeout = self._timeout()
        started = time.monotonic()
        self._last_request[netloc] = started
        self._request_deadline = min(started + float(self.settings.timeout), self.budget.deadline)
        try:
            return self.session.get(url, stream=True, allow_redirects=False, timeout=(timeout, timeout))
        except (addresses.PrivateAddressError, addresses.DNSLookupTimeout, *_NETWORK_ERRORS, ValueError) as exc:
            self._last_request[netloc] = time.monotonic()
            raise self._classify(exc) from None

    def finish(self, resp: requests.Response, url: str) -> None:
        resp.close()
        self._last_request[urlsplit(url).netloc] = time.monotonic()

    def _classify(self, exc: BaseException) -> Skip | BudgetExhausted:
        private = in_chain(exc, (addresses.PrivateAddressError,))
        if private is not None:
            return Skip("private-address", str(private))
        dns = in_chain(exc, (addresses.DNSLookupTimeout,))
        # urllib3 2 derives NewConnectionError (refused, unreachable) from its TimeoutError: not a timeout
        timed_out = in_chain(exc, _TIMEOUTS) is not None and in_chain(exc, (NewConnectionError,)) is None
        if dns is not None or timed_out:
            if self.budget.remaining() <= 0.01:
                return BudgetExhausted()
            if dns is not None:
                return Skip("error: DNS lookup timed out", short(str(dns)))
            return Skip("timeout", short(str(exc)))
        return Skip(f"error: {type(exc).__name__}", short(str(exc)))

    def read_body(self, resp: requests.Response, cap: int, *, truncate: bool = False) -> bytes:
        """The (decoded) body, given up on past ``cap`` bytes (or cut there if ``truncate``) or the deadline."""
        buf = bytearray()
        try:
            while chunk := resp.raw.read1(READ_CHUNK, decode_content=True):
                buf += chunk
                if len(buf) > cap:
                    if truncate:
                        return bytes(buf[:cap])
                    raise Skip("too-large", f"body exceeds {cap} bytes")
                if time.monotonic() > self._request_deadline:
                    if self.budget.remaining() <= 0:
                        raise BudgetExhausted()
                    raise Skip("timeout", "body not received within the timeout")
        except _NETWORK_ERRORS as exc:
            raise self._classify(exc) from None
        return bytes(buf)

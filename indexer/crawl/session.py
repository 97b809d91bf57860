"""The requests session the crawler talks through: direct connections only, lookups with a timeout,
and (unless private addresses are allowed) a check of the peer each socket actually reached.

urllib3 resolves names itself with a plain ``getaddrinfo``; our connection classes resolve first
(``addresses.resolve``, bounded by the connect timeout) and hand urllib3 one numeric address at a time.
"""

from __future__ import annotations

import socket

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from . import addresses
from .settings import CrawlSettings

__all__ = ["make_session"]

FALLBACK_LOOKUP_TIMEOUT = 10.0  # only if urllib3 ever hands a connection no numeric timeout


class _CrawlConnectionMixin:
    """Resolve with a timeout, connect to each address in turn, then (if ``peer_check``) verify the peer."""

    peer_check = True
    _dns_host: str
    port: int
    timeout: object

    def _new_conn(self) -> socket.socket:  # type: ignore[override]
        name = self._dns_host
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else FALLBACK_LOOKUP_TIMEOUT
        try:
            ips = addresses.resolve(name, self.port, float(timeout), addresses.system_lookup)
        except socket.gaierror as exc:
            raise NameResolutionError(name, self, exc) from exc  # type: ignore[arg-type]
        failure: NewConnectionError | None = None
        for ip in ips:
            self._dns_host = ip  # numeric: urllib3's own getaddrinfo returns at once
            try:
                sock = super()._new_conn()  # type: ignore[misc]
            except NewConnectionError as exc:  # refused/unreachable: try the next address
                failure = exc
                continue
            finally:
                self._dns_host = name
            if self.peer_check:
                addresses.check_peer(sock)
            return sock
        raise failure or NewConnectionError(self, f"{name}: no address")  # type: ignore[arg-type]


def _pool_classes(peer_check: bool) -> dict[str, type]:
    classes: dict[str, type] = {}
    for scheme, conn_base, pool_base in (
        ("http", HTTPConnection, HTTPConnectionPool),
        ("https", HTTPSConnection, HTTPSConnectionPool),
    ):
        conn = type(f"Crawl{conn_base.__name__}", (_CrawlConnectionMixin, conn_base), {"peer_check": peer_check})
        classes[scheme] = type(f"Crawl{pool_base.__name__}", (pool_base,), {"ConnectionCls": conn})
    return classes


class _CrawlAdapter(HTTPAdapter):
    def __init__(self, *, peer_check: bool) -> None:
        self._pool_classes = _pool_classes(peer_check)
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs) -> None:  # type: ignore[override]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(self._pool_classes)


def make_session(settings: CrawlSettings) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies / netrc from the environment: the peer check needs the real server
    session.headers["User-Agent"] = settings.user_agent
    session.headers["Accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
    adapter = _CrawlAdapter(peer_check=not settings.allow_private)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

"""URL rules: canonical form, the crawl's scope (schemes, allowed hosts, allowed ports), page keys."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from requests.utils import requote_uri

__all__ = [
    "ALLOWED_SCHEMES", "DEFAULT_PORTS", "MAX_URL_LENGTH", "Scope",
    "normalize_url", "normalize_host", "normalize_domain", "host_allowed", "page_key", "effective_port",
]

ALLOWED_SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
STANDARD_PORTS = frozenset(DEFAULT_PORTS.values())
# Longer URLs are skipped ("url-too-long"): browsers and sitemaps keep to about 2,000 characters,
# and a cap keeps one hostile href from costing more memory than a page.
MAX_URL_LENGTH = 2048


def normalize_host(host: str) -> str:
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
    host = normalize_host(parts.hostname or "")
    if not host:
        raise ValueError(f"URL has no host: {url!r}")
    port = parts.port  # raises ValueError for a malformed port
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return requote_uri(urlunsplit((scheme, netloc, parts.path or "/", parts.query, "")))


def normalize_domain(domain: str) -> str:
    domain = domain.strip()
    if "://" in domain:
        domain = urlsplit(domain).hostname or ""
    return normalize_host(domain.lstrip("."))


def host_allowed(host: str, allowed: Iterable[str], *, exact: bool = False) -> bool:
    """True if ``host`` equals one of ``allowed`` or (unless ``exact``) is a subdomain of one."""
    host = normalize_host(host or "")
    if not host:
        return False
    for domain in allowed:
        if host == domain or (not exact and host.endswith("." + domain)):
            return True
    return False


def effective_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or DEFAULT_PORTS.get(parts.scheme, 80)


def page_key(final_url: str) -> str:
    """File name stem of a saved page: the first 16 hex digits of the SHA-1 of its final URL."""
    return hashlib.sha1(final_url.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Scope:
    """Which normalised URLs the crawl may fetch: scheme, host (allow-list) and port."""

    domains: tuple[str, ...]
    exact: bool  # True when the allow-list is the start URL's host alone (no subdomains)
    ports: frozenset[int]

    @classmethod
    def for_start(cls, start_url: str, allow_domains: Iterable[str], allow_ports: Iterable[int]) -> Scope:
        """The scope of a crawl from ``start_url``; ValueError if the start URL is outside it."""
        return cls.for_starts([start_url], allow_domains, allow_ports)

    @classmethod
    def for_starts(cls, start_urls: Sequence[str], allow_domains: Iterable[str], allow_ports: Iterable[int]) -> Scope:
        """The scope of a crawl from several start URLs (without ``allow_domains``: their hosts
        exactly); ValueError naming the first start URL outside it."""
        start_hosts = [urlsplit(u).hostname or "" for u in start_urls]
        domains = tuple(d for d in (normalize_domain(x) for x in allow_domains) if d)
        own = tuple(dict.fromkeys(normalize_host(h) for h in start_hosts))
        scope = cls(domains or own, not domains, STANDARD_PORTS | frozenset(allow_ports))
        for start_url, start_host in zip(start_urls, start_hosts):
            if not scope.host_ok(start_host):
                raise ValueError(
                    f"start URL host {start_host!r} is not within the allowed domains {list(scope.domains)}"
                )
            if not scope.port_ok(start_url):
                raise ValueError(
                    f"start URL port {effective_port(start_url)} is not allowed: only 80 and 443 are crawled "
                    "unless the port is allowed explicitly (--allow-port)"
                )
        return scope

    def host_ok(self, host: str | None) -> bool:
        return host_allowed(host or "", self.domains, exact=self.exact)

    def port_ok(self, url: str) -> bool:
        return effective_port(url) in self.ports

    def refusal(self, url: str, *, redirect: bool = False) -> tuple[str, str] | None:
        """``(reason, detail)`` if ``url`` is out of scope, else None. Reached by a redirect, the
        detail names the target and an off-domain host is ``redirect-off-domain``."""
        parts = urlsplit(url)
        if parts.scheme not in ALLOWED_SCHEMES:
            return "scheme", url if redirect else ""
        if not self.host_ok(parts.hostname):
            return ("redirect-off-domain" if redirect else "off-domain"), url
        if not self.port_ok(url):
            return "port", url
        return None

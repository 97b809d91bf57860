"""Polite, safety-first breadth-first web crawler for the knowledge base.

``crawl(start_url, out_dir, settings)`` fetches HTML pages breadth-first from
``start_url`` and saves each one as ``out_dir/<key>.html`` (raw bytes) plus a
``<key>.json`` sidecar, where ``key`` is the first 16 hex digits of the SHA-1
of the page's final URL.

Rules (see ``CrawlSettings``):

* only ``http``/``https``; links are resolved with ``urljoin``, the fragment
  is dropped, scheme/host are lower-cased, default ports and userinfo removed;
  URLs longer than 2,048 characters are skipped;
* only hosts in ``allow_domains`` (a domain also allows its subdomains; empty
  means "the start URL's host only"), and only ports 80 and 443 unless
  ``allow_ports`` names others;
* robots.txt is honoured per origin as RFC 9309 reads it (wildcards, longest
  match, ``Crawl-delay`` when it is larger than ``delay``; a 5xx or an
  unreachable robots.txt disallows the origin, a 4xx allows it);
* every request carries ``user_agent``; requests to one host are at least
  ``delay`` seconds apart; each request and each name lookup has a
  ``timeout``; the whole crawl stops after ``max_seconds`` or ``max_pages``
  saved pages; at most ``url_cap(max_pages)`` distinct URLs are remembered;
* redirects are followed by hand (at most 5 hops) and every hop is re-checked
  against the allow-list, the port rule, the private-address rule and robots.txt;
* unless ``allow_private`` is set, a host whose addresses include any
  private/loopback/link-local/multicast/reserved/unspecified (or otherwise
  non-global) IP is refused, both before the request (DNS check) and on the
  socket actually connected (closes the DNS-rebinding gap);
* only ``text/html`` and ``application/xhtml+xml`` are saved; bodies are
  streamed and abandoned once they pass ``max_bytes``;
* pages are de-duplicated by final URL and by SHA-256 of the body;
* progress lines have control characters escaped (``indexer.terminal``).

Skip reasons (``SkippedURL.reason``) are short stable codes:

``scheme``, ``off-domain``, ``redirect-off-domain``, ``port``, ``robots``,
``private-address``, ``duplicate-url``, ``duplicate-content``, ``not-html``,
``too-large``, ``url-too-long``, ``http-<status>``, ``timeout`` (a single
request timed out), ``max-pages`` (left in the queue when the page cap was
reached), ``max-seconds`` (left unfetched when the crawl's time budget ran
out), ``max-urls`` (the first new link past the URL cap; the rest are counted
in ``CrawlReport.dropped``) and ``error: <ExceptionName or short text>``
(``error: DNS lookup timed out``, ``error: DNS lookup failed``, ...; details in
``SkippedURL.detail``).

The network is only reached directly (``Session.trust_env`` is off, so proxy
environment variables are ignored): the connected-peer check needs to see the
real server address.

Parts: ``urls`` (canonical form, scope), ``addresses`` (public-address rule,
bounded lookups), ``session`` and ``fetcher`` (the guarded network),
``redirects`` (the one redirect follower), ``robots``, ``page``, ``links``,
``frontier`` (bounded queue), ``store`` (saved pages), ``report`` and
``crawler`` (the queue loop).
"""

from .addresses import PrivateAddressError, is_blocked_ip
from .crawler import crawl
from .report import CrawlReport, SavedPage, SkippedURL
from .settings import DEFAULT_USER_AGENT, CrawlSettings, url_cap
from .urls import host_allowed, normalize_url

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
    "url_cap",
]

"""The one redirect follower, used for pages and for robots.txt alike.

Redirects are followed by hand so that every hop is checked (by the caller's ``check``) before it is
requested: for pages the allow-list, port, duplicate, address and robots rules; for robots.txt the
scheme, port and address rules (RFC 9309 lets robots.txt redirect to another host).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urljoin

import requests

from .errors import Skip
from .fetcher import Fetcher
from .urls import MAX_URL_LENGTH, normalize_url

__all__ = ["MAX_REDIRECTS", "REDIRECT_STATUSES", "follow"]

MAX_REDIRECTS = 5  # RFC 9309 asks robots.txt fetchers to follow at least five
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def _target(current: str, location: str) -> str:
    try:
        target = normalize_url(urljoin(current, location))
    except ValueError as exc:
        raise Skip("error: invalid redirect", str(exc)) from None
    if len(target) > MAX_URL_LENGTH:
        raise Skip("url-too-long", f"redirect target of {len(target)} characters")
    return target


def follow(
    url: str,
    fetcher: Fetcher,
    check: Callable[[str, int], None],
    on_redirect: Callable[[int, str], None] | None = None,
) -> tuple[str, requests.Response]:
    """Request ``url``, following up to ``MAX_REDIRECTS`` redirects.

    ``check(url, hop)`` runs before each request (hop 0 is ``url`` itself) and raises ``Skip`` to
    refuse it; ``on_redirect(status, target)`` is told about each redirect followed. Returns the final
    URL and its response, body unread: the caller must ``fetcher.finish`` it.
    """
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        check(current, hop)
        resp = fetcher.request(current)
        location = resp.headers.get("Location")
        if resp.status_code not in REDIRECT_STATUSES or not location:
            return current, resp
        fetcher.finish(resp, current)
        current = _target(current, location)
        if on_redirect is not None:
            on_redirect(resp.status_code, current)
    raise Skip("error: too many redirects", f"more than {MAX_REDIRECTS} redirects")

"""Fetching one HTML page: redirects followed (each hop checked by the caller), status, type and size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import Skip
from .fetcher import Fetcher
from .redirects import follow

__all__ = ["Page", "HTML_TYPES", "fetch_page"]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


@dataclass
class Page:
    url: str  # as queued
    final_url: str  # after redirects
    status: int
    content_type: str
    body: bytes


def _declared_length(value: str | None) -> int:
    try:
        return int(value) if value is not None else -1
    except ValueError:
        return -1


def fetch_page(
    url: str,
    fetcher: Fetcher,
    check: Callable[[str, int], None],
    max_bytes: int,
    say: Callable[[str], None],
) -> Page:
    """The HTML page at ``url``; ``Skip`` with the reason otherwise."""
    final, resp = follow(url, fetcher, check, lambda status, target: say(f"redirect {status}: {url} -> {target}"))
    try:
        status = resp.status_code
        if not 200 <= status < 300:
            raise Skip(f"http-{status}", final if final != url else "")
        content_type = resp.headers.get("Content-Type", "")
        if content_type.split(";", 1)[0].strip().lower() not in HTML_TYPES:
            raise Skip("not-html", content_type or "(no content type)")
        declared = _declared_length(resp.headers.get("Content-Length"))
        if declared > max_bytes:
            raise Skip("too-large", f"Content-Length {declared} > {max_bytes}")
        return Page(url, final, status, content_type, fetcher.read_body(resp, max_bytes))
    finally:
        fetcher.finish(resp, final)

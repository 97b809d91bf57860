"""What an operator can set for one crawl, and the limits derived from it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CrawlSettings", "DEFAULT_USER_AGENT", "url_cap"]

DEFAULT_USER_AGENT = (
    "DenmarkDigitalHealthKB-crawler/1.0 (+https://github.com/; research knowledge base)"
)
URLS_PER_PAGE = 100  # distinct URLs remembered per page the crawl may save ...
MIN_URL_CAP = 1_000  # ... but never fewer than this


@dataclass
class CrawlSettings:
    depth: int = 2
    allow_domains: tuple[str, ...] = ()  # empty => only the start URL's host; a domain allows its subdomains
    max_pages: int = 200
    max_bytes: int = 2_000_000  # per page; the body is streamed and abandoned past the cap
    max_seconds: float = 600.0  # whole crawl wall-clock budget
    delay: float = 1.0  # min seconds between two requests to the same host
    timeout: float = 10.0  # connect+read timeout per request, and per name lookup
    user_agent: str = DEFAULT_USER_AGENT
    allow_private: bool = False  # tests set True to crawl 127.0.0.1
    allow_ports: tuple[int, ...] = ()  # ports besides 80 and 443 (local test sites run on high ports)


def url_cap(max_pages: int) -> int:
    """How many distinct URLs one crawl remembers (queued, fetched or skipped).

    A page can link to millions of URLs; past this cap new links are counted, not kept, so memory and
    the report stay proportional to the pages the crawl may save.
    """
    return max(MIN_URL_CAP, URLS_PER_PAGE * max(0, max_pages))

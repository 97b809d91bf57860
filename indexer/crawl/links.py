"""Links of a saved page: every ``<a href>``, resolved against the page URL or its ``<base href>``."""

from __future__ import annotations

from urllib.parse import urljoin

from bs4 import BeautifulSoup

__all__ = ["extract_links"]


def extract_links(body: bytes, base_url: str) -> list[str]:
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

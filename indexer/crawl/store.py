"""Saved pages on disk: ``<key>.html`` (raw bytes) plus a ``<key>.json`` sidecar, written atomically,
de-duplicated by final URL and by SHA-256 of the body."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from kb.core.fsutil import atomic_write_bytes

from .errors import Skip
from .page import Page
from .report import SavedPage
from .urls import page_key

__all__ = ["PageStore"]


class PageStore:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self._final_urls: set[str] = set()
        self._hashes: set[str] = set()

    def has(self, final_url: str) -> bool:
        return final_url in self._final_urls

    def save(self, page: Page, depth: int) -> SavedPage:
        """Write the page and its sidecar; ``Skip`` if the URL or the bytes were saved already."""
        if self.has(page.final_url):
            raise Skip("duplicate-url", page.final_url)
        digest = hashlib.sha256(page.body).hexdigest()
        if digest in self._hashes:
            raise Skip("duplicate-content", digest)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        key = page_key(page.final_url)
        html_path = self.out_dir / f"{key}.html"
        fetched_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
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
        self._final_urls.add(page.final_url)
        self._hashes.add(digest)
        return SavedPage(page.url, page.final_url, fetched_at, html_path, digest, depth)

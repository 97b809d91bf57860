"""An index that follows its folder's CURRENT pointer, for long-running processes.

A request takes one `Index` object at its start and uses it to the end, so a swap never mixes two
versions in one response. A new version is opened in full (checksums verified) before it replaces
the old one; if it cannot be opened, the last good version keeps serving and the failure is logged.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from kb.core.settings import Settings
from kb.models.sentence_transformer import Embedder, load_embedder
from kb.search.index import Index, resolve_version_dir
from kb.index.layout import MANIFEST, IndexError_, IndexLayout

log = logging.getLogger(__name__)


class LiveIndex:
    def __init__(self, root: Path, settings: Settings, embedder: Embedder | None = None) -> None:
        self.root = Path(root)
        self.settings = settings
        self._embedder = embedder
        self._lock = threading.Lock()
        self._index: Index | None = None
        self._state: tuple | None = None
        self._checked_at = 0.0
        self.last_error: str | None = None
        self.swaps = 0

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(
                self.settings.model_path, self.settings.query_cache_size, self.settings.encode_batch_size
            )
        return self._embedder

    def get(self) -> Index:
        """The index to use for one request; raises IndexError_ only if no version was ever good.

        At most one thread looks for (and opens) a new version at a time; the others keep serving
        the version they have instead of queueing behind it, so a reload never stalls traffic.
        Only while no version has been opened yet do requests wait for the first one.
        """
        now = time.monotonic()
        current = self._index
        if current is not None and now - self._checked_at < self.settings.reload_check_seconds:
            return current
        if not self._lock.acquire(blocking=current is None):
            return current  # another thread is checking; serve the version we have
        try:
            if self._index is None or now - self._checked_at >= self.settings.reload_check_seconds:
                self._refresh()
                self._checked_at = time.monotonic()
            if self._index is None:
                raise IndexError_(self.last_error or f"No index at {self.root}.")
            return self._index
        finally:
            self._lock.release()

    def _pointer_state(self) -> tuple:
        """What identifies the version on disk: CURRENT's target and its manifest's mtime."""
        try:
            version_dir = resolve_version_dir(self.root)
            stat = (version_dir / MANIFEST).stat()
            return (str(version_dir), stat.st_mtime_ns, stat.st_size)
        except (IndexError_, OSError) as exc:
            return ("missing", str(exc))

    def _refresh(self) -> None:
        state = self._pointer_state()
        if state == self._state:
            return
        self._state = state
        if state[0] == "missing":
            if self._index is None:
                self.last_error = state[1]
            return
        try:
            # the folder the state names, so the version opened is the version recorded
            fresh = Index.open(Path(state[0]), self.embedder, self.settings)
        except Exception as exc:  # anything wrong with the new version: keep serving the old one
            self.last_error = f"kept version {self._index.version if self._index else None}: {exc}"
            log.error("index reload failed, keeping the last good version: %s", exc)
            return
        if self._index is not None:
            self.swaps += 1
            log.info("switched index %s -> %s", self._index.version, fresh.version)
        self._index = fresh
        self.last_error = None

    def warm_up(self) -> None:
        """Load the model and index, run one query and encode the index's sentences (highlights,
        talking points), so the first real requests are not slow."""
        from kb.insight.sentence_vectors import warm_sentences

        index = self.get()
        index.search("warm up", k=1)
        encoded = warm_sentences(index)
        log.info("warmed up index %s (%d sentences encoded)", index.version, encoded)


def current_version(root: Path) -> str | None:
    return IndexLayout(Path(root)).current_build_id()

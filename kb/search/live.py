"""An index that follows its folder's CURRENT pointer, for long-running processes.

A request takes one `Index` object at its start and uses it to the end, so a swap never mixes two
versions in one response. A new version is opened in full (checksums verified) before it replaces
the old one; if it cannot be opened, the last good version keeps serving and the failure is logged.

The version being served is leased (kb.index.layout.VersionLease): the lease on the new version is
taken before it is opened and the old one's released after the swap, so a build's prune never
deletes the version this process serves.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from collections.abc import Mapping

from kb.core.settings import Settings
from kb.index.layout import MANIFEST, IndexLayout, IndexProblem, VersionLease, resolve_version_dir
from kb.models import Encoder, Encoders, load_encoders
from kb.search.index import Index

log = logging.getLogger(__name__)


class LiveIndex:
    def __init__(self, root: Path, settings: Settings,
                 encoders: Encoder | Mapping[str, Encoder] | None = None) -> None:
        self.root = Path(root)
        self.settings = settings
        self._encoders = Encoders.of(encoders) if encoders is not None else None
        self._lock = threading.Lock()
        self._index: Index | None = None
        self._lease = VersionLease()  # on the version of self._index
        self._state: tuple | None = None
        self._checked_at = 0.0
        self.last_error: str | None = None
        self.swaps = 0

    @property
    def encoders(self) -> Encoders:
        if self._encoders is None:
            self._encoders = load_encoders(self.settings)
        return self._encoders

    def get(self) -> Index:
        """The index to use for one request; raises IndexProblem only if no version was ever good.

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
                raise IndexProblem(self.last_error or f"No index at {self.root}.")
            return self._index
        finally:
            self._lock.release()

    def _pointer_state(self) -> tuple:
        """What identifies the version on disk: CURRENT's target and its manifest's mtime."""
        try:
            version_dir = resolve_version_dir(self.root)
            stat = (version_dir / MANIFEST).stat()
            return (str(version_dir), stat.st_mtime_ns, stat.st_size)
        except (IndexProblem, OSError) as exc:
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
        lease = VersionLease()
        try:
            lease = VersionLease.take(Path(state[0]))  # before opening: a prune must not delete it meanwhile
            # the folder the state names, so the version opened is the version recorded
            fresh = Index.open(Path(state[0]), self.encoders, self.settings)
        except Exception as exc:  # anything wrong with the new version: keep serving the old one
            lease.release()
            self.last_error = f"kept version {self._index.version if self._index else None}: {exc}"
            log.error("index reload failed, keeping the last good version: %s", exc)
            return
        if self._index is not None:
            self.swaps += 1
            log.info("switched index %s -> %s", self._index.version, fresh.version)
        self._index, old_lease, self._lease = fresh, self._lease, lease
        old_lease.release()
        self.last_error = None

    def warm_up(self) -> Index:
        """Load the models and the index and run one query, so the first real request is not slow.
        Returns the index, for callers that warm more (the web app encodes sentences next)."""
        index = self.get()
        for text in ("warm up", "varm op"):  # an English and a Danish query: every model runs once
            index.search(text, k=1)
        return index


def current_version(root: Path) -> str | None:
    return IndexLayout(Path(root)).current_build_id()

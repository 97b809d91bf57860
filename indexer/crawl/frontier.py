"""The breadth-first queue and the set of URLs seen, both bounded by the crawl's URL cap."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator

__all__ = ["Frontier"]


class Frontier:
    """URLs waiting to be fetched, in order, and every URL (or invalid link) ever considered.

    Past ``cap`` remembered URLs a new one is handed to ``on_drop`` instead of being kept, so a page
    with millions of links costs a counter, not memory.
    """

    def __init__(self, start_urls: Iterable[str], cap: int, on_drop: Callable[[str], None]) -> None:
        self.cap = cap
        self._on_drop = on_drop
        starts = list(dict.fromkeys(start_urls))  # in order, each once
        self._seen: set[str] = set(starts)
        self._queue: deque[tuple[str, int]] = deque((url, 0) for url in starts)

    def __bool__(self) -> bool:
        return bool(self._queue)

    def pop(self) -> tuple[str, int]:
        return self._queue.popleft()

    def drain(self) -> Iterator[str]:
        """The URLs still queued, emptying the queue."""
        while self._queue:
            yield self._queue.popleft()[0]

    def remember(self, key: str, url: str | None = None) -> bool:
        """True if ``key`` is new and now remembered; False if seen before or past the cap (dropped)."""
        if key in self._seen:
            return False
        if len(self._seen) >= self.cap:
            self._on_drop(key if url is None else url)
            return False
        self._seen.add(key)
        return True

    def push(self, url: str, depth: int) -> None:
        self._queue.append((url, depth))

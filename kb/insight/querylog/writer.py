"""The query log's background writer: a bounded queue drained by one daemon thread.

What it guarantees, since logging must never slow or break a search: `put` never blocks and
never raises (a full queue drops the item and counts it); the thread survives any error in the
work it is handed; after a fork (a gunicorn worker) the parent's thread is gone, so the child
starts its own with a fresh queue; `close` hands over what is queued before the thread stops,
and runs at interpreter exit once the writer has started.
"""
from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

BATCH_SIZE = 256
_STOP = object()
_NOW = object()  # "run the periodic work now"


@dataclass
class QueryLogStats:
    written: int = 0
    dropped: int = 0  # queue full or log unavailable
    failed: int = 0  # rows lost to a write error
    enrich_failed: int = 0  # rows written without their answer score
    purged: int = 0  # rows past retention
    capped: int = 0  # oldest rows deleted to stay within the caps


# work(items, now): items is a batch (maybe empty, when the thread wakes up idle); now is True
# when `poke` asked for the periodic work to run at once.
Work = Callable[[list, bool], None]


class BackgroundWriter:
    def __init__(self, work: Work, stats: QueryLogStats, *, queue_size: int, idle_seconds: float,
                 name: str = "kb-querylog-writer") -> None:
        self._work = work
        self._stats = stats
        self._queue_size = queue_size
        self._idle_seconds = idle_seconds
        self._name = name
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._exit_hook = False

    def put(self, item) -> bool:
        """Queue `item`; False (counted as dropped) when the queue is full. Never blocks or raises."""
        try:
            self._ensure_thread()
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self._stats.dropped += 1
            if self._stats.dropped == 1 or self._stats.dropped % 1000 == 0:
                log.warning("query log queue full; %d rows dropped so far", self._stats.dropped)
            return False
        except Exception:
            self._stats.dropped += 1
            log.exception("query log: could not queue a row")
            return False

    def poke(self) -> None:
        """Start the thread and have it run the periodic work now; writes what is queued at exit."""
        self._ensure_thread()
        self._queue.put_nowait(_NOW)
        if not self._exit_hook:
            atexit.register(self.close, 2.0)
            self._exit_hook = True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued item is handled; for tests and shutdown."""
        if self._thread is None:
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline or not self._thread.is_alive():
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 5.0) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                return
            thread.join(timeout)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid != os.getpid():  # forked: the parent's thread is gone
                self._pid = os.getpid()
                self._queue = queue.Queue(maxsize=self._queue_size)
                self._thread = None
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            items = [b for b in batch if b is not _STOP and b is not _NOW]
            try:
                self._work(items, any(b is _NOW for b in batch))
            except Exception:  # a bug in the work must not kill the writer
                self._stats.failed += len(items)
                log.exception("query log writer error")
            finally:
                for _ in batch:
                    self._queue.task_done()
            if any(b is _STOP for b in batch):
                return

    def _next_batch(self) -> list:
        try:  # wake up now and then even when idle, so periodic work runs on time
            batch = [self._queue.get(timeout=self._idle_seconds)]
        except queue.Empty:
            return []
        while len(batch) < BATCH_SIZE:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

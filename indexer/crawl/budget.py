"""The crawl's wall-clock budget (``max_seconds``), shared by the queue loop and the network."""

from __future__ import annotations

import time

__all__ = ["Budget"]


class Budget:
    def __init__(self, max_seconds: float) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + max(0.0, float(max_seconds))

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

"""How a fetch ends early: a skip with a stable reason, or the crawl's time budget running out."""

from __future__ import annotations

__all__ = ["Skip", "BudgetExhausted", "short", "in_chain"]


class Skip(Exception):
    """This URL is not saved; ``reason`` is one of the stable codes listed in ``indexer.crawl``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class BudgetExhausted(Exception):
    """The crawl's ``max_seconds`` ran out; the current and every queued URL are ``max-seconds``."""


def short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def in_chain(exc: BaseException, wanted: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first exception of a type in `wanted` anywhere in exc's cause/context/args chain.

    requests and urllib3 wrap the error that matters (a timeout, our own private-address refusal)
    several layers deep, in causes, contexts and constructor arguments.
    """
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, wanted):
            return e
        for nxt in (e.__cause__, e.__context__, *[a for a in e.args if isinstance(a, BaseException)]):
            if nxt is not None:
                stack.append(nxt)
    return None

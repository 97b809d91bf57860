"""Request parameters, validated once for the API and the pages alike.

Every rule here is part of the public contract (README, API reference): a violation becomes
HTTP 400 with `{"error": {"code", "message"}}`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from kb import MODES, Filters

MAX_QUERY_CHARS = 1000
K_DEFAULT, K_MAX = 10, 50
N_DEFAULT, N_MAX = 5, 20  # talking points
# An optional sign and ASCII digits only (`\d` would admit other scripts' digits). Nine digits is
# far beyond every bound here and keeps int() away from inputs like "+-5" or 5000-digit numbers.
WHOLE_NUMBER = re.compile(r"[+-]?[0-9]{1,9}")


class BadParameter(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SearchParams:
    q: str
    k: int
    mode: str
    filters: Filters


def text_param(args: MultiDict, name: str, *, required: bool = True) -> str:
    values = args.getlist(name)
    if len(values) > 1:
        raise BadParameter(f"repeated_{name}", f"Give '{name}' once, not {len(values)} times.")
    value = (values[0] if values else "").strip()
    if "\x00" in value:
        raise BadParameter(f"invalid_{name}", f"'{name}' must not contain NUL characters.")
    if required and not value:
        raise BadParameter(f"missing_{name}", f"'{name}' is required and must not be blank.")
    if len(value) > MAX_QUERY_CHARS:
        raise BadParameter(f"{name}_too_long", f"'{name}' is limited to {MAX_QUERY_CHARS} characters (got {len(value)}).")
    return value


def int_param(args: MultiDict, name: str, default: int, low: int, high: int) -> int:
    values = args.getlist(name)
    if len(values) > 1:
        raise BadParameter(f"repeated_{name}", f"Give '{name}' once, not {len(values)} times.")
    if not values or values[0].strip() == "":
        return default
    raw = values[0].strip()
    if not WHOLE_NUMBER.fullmatch(raw):
        raise BadParameter(f"invalid_{name}", f"'{name}' must be a whole number from {low} to {high}.")
    value = int(raw)
    if not low <= value <= high:
        raise BadParameter(f"invalid_{name}", f"'{name}' must be a whole number from {low} to {high} (got {value}).")
    return value


def choice_param(args: MultiDict, name: str, choices: tuple[str, ...], default: str) -> str:
    values = args.getlist(name)
    if len(values) > 1:
        raise BadParameter(f"repeated_{name}", f"Give '{name}' once, not {len(values)} times.")
    value = (values[0].strip() if values else "") or default
    if value not in choices:
        raise BadParameter(f"invalid_{name}", f"'{name}' must be one of: {', '.join(choices)}.")
    return value


def filter_values(args: MultiDict, name: str, known: list[str]) -> tuple[str, ...]:
    """A filter may repeat (OR within one field); every value must exist in the index."""
    values = tuple(dict.fromkeys(v.strip() for v in args.getlist(name) if v.strip()))
    unknown = [v for v in values if v not in known]
    if unknown:
        shown = ", ".join(known[:20]) + (" …" if len(known) > 20 else "")
        raise BadParameter(f"invalid_{name}", f"Unknown {name} {unknown[0][:100]!r}; known values: {shown}.")
    return values


def search_params(args: MultiDict, source_types: list[str], organisations: list[str], default_mode: str) -> SearchParams:
    return SearchParams(
        q=text_param(args, "q"),
        k=int_param(args, "k", K_DEFAULT, 1, K_MAX),
        mode=choice_param(args, "mode", MODES, default_mode),
        filters=Filters(
            source_types=filter_values(args, "source_type", source_types),
            organisations=filter_values(args, "organisation", organisations),
        ),
    )


@dataclass(frozen=True)
class TalkingPointsParams:
    topic: str
    n: int
    filters: Filters


def talking_points_params(args: MultiDict, source_types: list[str], organisations: list[str]) -> TalkingPointsParams:
    """`topic` follows the rules of `q` (required, not blank, no NUL, at most 1000 characters);
    `n` is a whole number from 1 to 20 (default 5); filters as for search."""
    return TalkingPointsParams(
        topic=text_param(args, "topic"),
        n=int_param(args, "n", N_DEFAULT, 1, N_MAX),
        filters=Filters(
            source_types=filter_values(args, "source_type", source_types),
            organisations=filter_values(args, "organisation", organisations),
        ),
    )

"""Text bound for an operator's terminal, made safe to print.

URLs and server answers reach the crawler's progress lines and the CLI's summary. A hostile page can put
ESC sequences (which move the cursor, rewrite earlier lines or set the window title), other C0/C1
control characters, or bidi overrides (which make a URL read as another) into an href. Every such
character is printed as its Python escape (``\\x1b``, ``\\u202e``); printable text, including non-ASCII
letters, is left alone, and escaping twice changes nothing.
"""

from __future__ import annotations

__all__ = ["terminal_safe"]


def _escape(ch: str) -> str:
    return ch if ch.isprintable() else repr(ch)[1:-1]


def terminal_safe(text: object) -> str:
    """``text`` with every non-printable character (Unicode "Other" and "Separator" categories except
    the space: controls, format characters such as bidi overrides, line separators) escaped."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(_escape(ch) for ch in s)

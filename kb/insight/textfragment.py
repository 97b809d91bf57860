"""Links that open a source page at the cited sentence: URL text fragments (`#:~:text=`).

A text fragment (WICG "Scroll To Text Fragment", shipped in Chromium, Safari and Firefox) makes
the browser scroll to and highlight the quoted words on the original page. It degrades
gracefully: a browser that does not support it, or a page whose wording differs from our clean
text, simply opens at the top. Long sentences use the `textStart,textEnd` form so the link stays
short and survives small differences in the middle of the sentence.

The directive's own syntax characters must be percent-encoded inside each term: `-` (prefix and
suffix markers), `&` (directive separator) and `,` (term separator), plus anything that is not
URL-safe. `urllib.parse.quote` leaves `-` alone (it is unreserved in URLs), so we encode it by hand.
"""
from __future__ import annotations

from urllib.parse import quote, urlsplit

# A quote of up to this many words goes in whole; a longer one as its first and last words.
MAX_WHOLE_WORDS = 10
EDGE_WORDS = 4


def encode_term(text: str) -> str:
    """Percent-encode one text-directive term (spaces, `&`, `,`, `-` and all non-ASCII)."""
    return quote(" ".join(text.split()), safe="").replace("-", "%2D")


def text_fragment(text: str) -> str:
    """The `#:~:text=...` fragment for a quote; empty when the quote has no words."""
    words = text.split()
    if not words:
        return ""
    if len(words) <= MAX_WHOLE_WORDS:
        return "#:~:text=" + encode_term(" ".join(words))
    start = " ".join(words[:EDGE_WORDS])
    end = " ".join(words[-EDGE_WORDS:])
    return f"#:~:text={encode_term(start)},{encode_term(end)}"


def web_url(url: str) -> str:
    """`url` if it is an http(s) address, else "" (show no link).

    Corpus and crawled pages are untrusted: a `javascript:` or `data:` URL in their metadata must
    not become a link that runs code when an advisor clicks it.
    """
    url = (url or "").strip()
    return url if urlsplit(url).scheme.lower() in ("http", "https") else ""


def source_link(url: str, quote_text: str) -> str:
    """`url` with a text fragment for `quote_text` (any fragment already on the URL is replaced);
    "" for anything but an http(s) URL (`web_url`)."""
    base = web_url(url).split("#", 1)[0]
    return base + text_fragment(quote_text) if base else ""

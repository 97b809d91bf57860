"""Text-fragment links (`#:~:text=`): the directive's syntax characters are percent-encoded."""
from urllib.parse import unquote

from kb.insight.textfragment import encode_term, source_link, text_fragment, web_url


def test_reserved_characters_are_encoded():
    assert encode_term("e-health, data & more") == "e%2Dhealth%2C%20data%20%26%20more"
    assert encode_term("Østdanmark  50%") == "%C3%98stdanmark%2050%25"


def test_short_quotes_go_in_whole_and_long_ones_as_start_and_end():
    assert text_fragment("The CPR number was introduced in 1968.") == "#:~:text=The%20CPR%20number%20was%20introduced%20in%201968."
    long = "Researchers who want to use Danish register data have two main access points: the Research Services."
    frag = text_fragment(long)
    start, end = frag.removeprefix("#:~:text=").split(",")
    assert unquote(start) == "Researchers who want to" and unquote(end) == "points: the Research Services."
    assert text_fragment("   ") == ""


def test_source_link_replaces_a_fragment_and_refuses_non_http_urls():
    assert source_link("https://example.org/page#top", "A b c.") == "https://example.org/page#:~:text=A%20b%20c."
    assert source_link("javascript:alert(1)", "x") == "" and source_link("data:text/html,hi", "x") == ""
    assert web_url(" JavaScript:alert(1)") == "" and web_url("vbscript:x") == "" and web_url("") == ""
    assert web_url(" https://a.dk/x#y ") == "https://a.dk/x#y" and web_url("HTTP://a.dk") == "HTTP://a.dk"
    assert source_link("", "x") == ""

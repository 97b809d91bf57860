"""Which language a query is written in, for choosing its route.

Queries are short — often two words — so the detector must decide from little text. Measured on
the dev split of tests/eval/outside_queries.jsonl (docs/RETRIEVAL.md, "Language routing"), the
rule-based and the statistical detector are compared there; `detect_language` is the one the
product uses.
"""
from __future__ import annotations

import re

ENGLISH = "en"
DANISH = "da"

# Words of Danish (and Norwegian/Swedish) queries that English queries do not use, with the
# spellings people type without æ, ø, å ("pa", "ogsa"); one is enough.
_DANISH_WORDS = frozenset(
    """
    og det til af på pa som hvad hvem hvor hvordan hvornår hvornar hvorfor hvilke hvilket hvilken skal må
    blev bliver ikke også ogsa eller fra ved efter siden mellem mod uden sig sin sit sine jeg hun dem deres
    vores findes fungerer giver gør laver danmark danske dansk sundhed sundhedsdata borgere borger
    forskning forsker forskere adgang
    """.split()
)
# Words both languages can produce ("ER visits", "I", "et al.", "for"): two are needed.
_SHARED_WORDS = frozenset("er i en et de den der kan har vi du man her med om".split())
_DANISH_LETTERS = re.compile(r"[æøåÆØÅ]")
_WORD = re.compile(r"\w+", re.UNICODE)

def rule_language(text: str) -> str:
    """Danish when the query has æ, ø or å, a word only Danish uses, or two words Danish shares
    with English; English otherwise."""
    if _DANISH_LETTERS.search(text):
        return DANISH
    words = [w.lower() for w in _WORD.findall(text)]
    if any(w in _DANISH_WORDS for w in words) or sum(w in _SHARED_WORDS for w in words) >= 2:
        return DANISH
    return ENGLISH


def detect_language(text: str) -> str:
    return rule_language(text)

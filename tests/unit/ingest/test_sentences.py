from kb.ingest.sentences import sentence_spans


def split(text):
    return [text[s:e] for s, e in sentence_spans(text)]


def test_splits_on_terminal_punctuation():
    assert split("One sentence. Two sentences! Three? Four.") == ["One sentence.", "Two sentences!", "Three?", "Four."]


def test_keeps_abbreviations_initials_and_numbers_together():
    text = "It was set up by J. Smith et al. in 1968, e.g. for taxes. Prices rose 2.5 percent. Dr. Hansen agreed."
    assert split(text) == [
        "It was set up by J. Smith et al. in 1968, e.g. for taxes.",
        "Prices rose 2.5 percent.",
        "Dr. Hansen agreed.",
    ]


def test_line_breaks_are_boundaries_and_offsets_exact():
    text = "  First line without stop\nSecond line. Third one.  "
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["First line without stop", "Second line.", "Third one."]


def test_quotes_and_danish_capitals_start_sentences():
    assert split('He said "yes." Østdanmark is new. "Quoted" start.') == ['He said "yes."', "Østdanmark is new.", '"Quoted" start.']


# ---- hostile text: linear time is measured in bench/splitter.py; here, the shape of the answer --------

import pytest  # noqa: E402

from kb.ingest.sentences import MAX_SENTENCE_CHARS  # noqa: E402

HOSTILE = {
    "question-run": "?" * 12_000,
    "dot-run": "Start. " + "." * 12_000 + " End.",
    "bang-run": "!" * 12_000 + " Next sentence.",
    "long-token": "a" * 30_000,
    "token-before-stop": "a" * 12_000 + " x. Y follows.",
    "initials": "A. " * 4_000,
    "lower-a": "a. " * 4_000,
    "spaces": "word" + " " * 5_000 + "word.",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_text_gives_exact_pieces_no_longer_than_the_cap(name):
    text = HOSTILE[name]
    spans = sentence_spans(text)
    assert all(0 < e - s <= MAX_SENTENCE_CHARS for s, e in spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    pieces = [text[s:e] for s, e in spans]
    assert all(p == p.strip() for p in pieces)
    assert "".join("".join(p.split()) for p in pieces) == "".join(text.split())  # only whitespace is left out


def test_a_sentence_over_the_cap_is_cut_at_word_boundaries():
    text = "Intro here. " + " ".join(f"Word{i:04d}" for i in range(400)) + ". Outro here."
    spans = sentence_spans(text, max_chars=100)
    pieces = [text[s:e] for s, e in spans]
    assert pieces[0] == "Intro here." and pieces[-1] == "Outro here."
    middle = pieces[1:-1]
    assert len(middle) > 1 and all(len(p) <= 100 for p in middle)
    assert all(p.split()[0].startswith("Word") and p.split()[-1].startswith("Word") for p in middle)  # whole words
    assert " ".join(middle) == text[spans[1][0]:spans[-2][1]]


def test_the_cap_leaves_normal_prose_alone():
    text = "It was set up by J. Smith et al. in 1968, e.g. for taxes. " * 3
    assert sentence_spans(text) == sentence_spans(text, max_chars=10**9)


def test_abbreviation_look_back_is_bounded_but_sees_every_abbreviation():
    assert split("See fig. Two shows it.") == ["See fig. Two shows it."]
    assert split("x" * 5_000 + " fig. Two") == ["x" * 1_000] * 5 + ["fig. Two"]  # found after a long token
    assert split("x" * 5_000 + "fig. Two") == ["x" * 1_000] * 5 + ["fig.", "Two"]  # no abbreviation is that long
    assert split("Made in the U.S.A. Then more.") == ["Made in the U.S.A. Then more."]

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

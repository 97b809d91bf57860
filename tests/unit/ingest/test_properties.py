"""Property-based tests: the chunker's spans are exact and complete; no markup crashes the HTML loader."""
from hypothesis import HealthCheck, given, settings, strategies as st

from indexer.loaders import LoaderError, load_html, markdown_blocks, text_blocks
from kb.ingest.chunking import chunk_document, max_chunk_chars
from kb.core.settings import ChunkSettings
from kb.core.records import BlockBuilder, Document
from kb.ingest.sentences import sentence_spans

WORDS = st.sampled_from(
    ["Denmark", "registry", "data", "1968", "e.g.", "Dr.", "CPR", "sundhed.dk", "æøå", "—", "(LPR)", "is", "a",
     "the", "health", "!", "?", ".", "U.S.", "3.5", '"quoted"', "…", "🙂", "Ørsted", "x" * 40]
)
SENTENCE = st.lists(WORDS, min_size=1, max_size=30).map(" ".join)
PARAGRAPH = st.lists(SENTENCE, min_size=1, max_size=12).map(lambda ss: ". ".join(ss) + ".")


@st.composite
def documents(draw):
    builder = BlockBuilder()
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        if draw(st.booleans()):
            builder.heading(draw(SENTENCE), draw(st.integers(min_value=1, max_value=4)))
        builder.paragraph(draw(PARAGRAPH))
    if not builder.text:
        builder.paragraph("fallback text.")
    return Document(id="d", title="T", url="https://x.org", source_type="agency", text=builder.text,
                    blocks=tuple(builder.blocks))


CHUNK_SETTINGS = st.builds(
    ChunkSettings,
    max_tokens=st.integers(min_value=5, max_value=300),
    min_tokens=st.integers(min_value=0, max_value=60),
    overlap_sentences=st.integers(min_value=0, max_value=2),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents(), cfg=CHUNK_SETTINGS)
def test_chunk_spans_are_exact_nonempty_and_cover_every_paragraph(doc, cfg):
    chunks = chunk_document(doc, cfg)
    for c in chunks:
        assert c.text and c.text == doc.text[c.start:c.end] and c.text.strip() == c.text
    covered = [False] * len(doc.text)
    for c in chunks:
        for i in range(c.start, c.end):
            covered[i] = True
    for block in doc.blocks:
        if block.kind == "paragraph":
            # every non-space character of every paragraph is in some chunk
            assert all(covered[i] for i in range(block.start, block.end) if not doc.text[i].isspace())
        else:
            assert not any(covered[block.start:block.end])  # headings are sections, not chunk text
    assert len({c.id for c in chunks}) == len(chunks)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400))
def test_sentence_spans_are_ordered_exact_and_trimmed(text):
    last = 0
    for s, e in sentence_spans(text):
        assert last <= s < e <= len(text)
        piece = text[s:e]
        assert piece == piece.strip() and piece
        last = e


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400), cap=st.integers(min_value=1, max_value=60))
def test_capped_sentence_spans_are_exact_short_and_lose_only_whitespace(text, cap):
    spans = sentence_spans(text, max_chars=cap)
    last = 0
    for s, e in spans:
        assert last <= s < e <= len(text) and e - s <= cap and text[s:e] == text[s:e].strip()
        last = e
    assert "".join("".join(text[s:e].split()) for s, e in spans) == "".join(text.split())


HOSTILE_WORDS = st.sampled_from(["?" * 700, "a" * 1_300, "." * 300, "A.", "x.", "Y", "registry", "!", "e.g.", "\n"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(HOSTILE_WORDS, min_size=1, max_size=40), cfg=CHUNK_SETTINGS)
def test_chunks_stay_under_the_character_cap_whatever_the_text(words, cfg):
    builder = BlockBuilder()
    builder.paragraph(" ".join(words))
    if not builder.text:
        builder.paragraph("fallback text.")
    doc = Document(id="d", title="T", url="https://x.org", source_type="agency", text=builder.text,
                   blocks=tuple(builder.blocks))
    chunks = chunk_document(doc, cfg)
    assert all(len(c.text) <= max_chunk_chars(cfg) and c.text == doc.text[c.start:c.end] for c in chunks)
    covered = [False] * len(doc.text)
    for c in chunks:
        covered[c.start:c.end] = [True] * (c.end - c.start)
    assert all(covered[i] for i in range(len(doc.text)) if not doc.text[i].isspace())


TAGS = st.sampled_from(["p", "div", "span", "h1", "h2", "h3", "ul", "li", "table", "td", "script", "style", "nav",
                        "header", "footer", "main", "article", "a", "b", "pre", "form", "svg", "br", "img", "x-custom"])


@st.composite
def markup(draw, depth=0):
    parts = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        kind = draw(st.integers(min_value=0, max_value=3))
        if kind == 0 or depth > 3:
            parts.append(draw(st.text(max_size=40)))
        elif kind == 1:
            tag = draw(TAGS)
            attrs = draw(st.sampled_from(["", ' class="cookie-banner"', ' id="main"', ' hidden', ' role="navigation"',
                                          ' onclick="x()"', ' class=']))
            parts.append(f"<{tag}{attrs}>{draw(markup(depth + 1))}</{tag}>")
        elif kind == 2:
            parts.append(draw(st.sampled_from(["<", ">", "&", "&amp;", "<!--", "-->", "<![CDATA[", "</p>", "<p", "\x00",
                                               "<meta name='kb:source_type' content='agency'>", "<title>t</title>"])))
        else:
            parts.append(draw(st.text(alphabet=st.characters(), max_size=20)))
    return "".join(parts)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html=markup(), as_bytes=st.booleans())
def test_html_loader_never_crashes_on_arbitrary_markup(html, as_bytes):
    raw = html.encode("utf-8", "surrogatepass") if as_bytes else html
    try:
        doc = load_html(raw, url="https://example.org/p", defaults={"source_type": "agency"})
    except LoaderError:
        return  # a readable refusal (e.g. nothing left after cleaning) is fine; anything else is a bug
    for block in doc.blocks:
        assert doc.text[block.start:block.end]


@settings(max_examples=100, deadline=None)
@given(body=st.text(max_size=600))
def test_markdown_and_text_parsers_never_crash(body):
    for builder in (markdown_blocks(body), text_blocks(body)):
        for block in builder.blocks:
            assert builder.text[block.start:block.end].strip()

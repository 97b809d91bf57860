"""Chunks are exact spans of the document, follow its sections and never cut a sentence."""
from kb.ingest.chunking import approx_token_count, chunk_document, embedding_text
from kb.core.settings import ChunkSettings
from kb.core.records import Block, BlockBuilder, Document
from kb.ingest.sentences import sentence_spans


def make_doc(builder: BlockBuilder, doc_id: str = "d") -> Document:
    return Document(id=doc_id, title="T", url="https://x.org", source_type="agency", text=builder.text,
                    blocks=tuple(builder.blocks))


def long_paragraph(n: int, word: str = "alpha") -> str:
    return " ".join(f"Sentence number {i} talks about {word} and registries in Denmark." for i in range(n))


def test_offsets_map_back_to_the_exact_text(corpus_docs, embedder):
    for doc in corpus_docs:
        chunks = chunk_document(doc, ChunkSettings(), embedder.count_tokens)
        assert chunks, doc.id
        for c in chunks:
            assert c.text == doc.text[c.start:c.end]
            assert c.text.strip() == c.text and c.text


def test_real_chunks_fit_the_model_window(corpus_docs, embedder):
    """Title, section and chunk together stay within the 256 word pieces the model reads."""
    settings = ChunkSettings()
    for doc in corpus_docs:
        for c in chunk_document(doc, settings, embedder.count_tokens):
            if len(sentence_spans(c.text)) > 1:  # a single over-long sentence is never cut
                assert embedder.count_tokens(embedding_text(doc.title, c)) + 2 <= embedder.max_seq_length, (doc.id, c.section)


def test_chunks_never_cut_a_sentence():
    b = BlockBuilder()
    b.heading("Registries", 2)
    b.paragraph(long_paragraph(40))
    doc = make_doc(b)
    sentences = set(sentence_spans(doc.text))
    starts, ends = {s for s, _ in sentences}, {e for _, e in sentences}
    chunks = chunk_document(doc, ChunkSettings(max_tokens=60, min_tokens=10))
    assert len(chunks) > 3
    for c in chunks:
        assert c.start in starts and c.end in ends


def test_sections_follow_the_heading_path_and_chunks_never_cross_headings():
    b = BlockBuilder()
    b.heading("Top", 1)
    b.paragraph("Intro text that is short.")
    b.heading("Access", 2)
    b.paragraph("How to get access to data.")
    b.heading("Fees", 3)
    b.paragraph("What access costs.")
    b.heading("Other", 2)
    b.paragraph("Unrelated matters.")
    doc = make_doc(b)
    chunks = chunk_document(doc, ChunkSettings(max_tokens=200, min_tokens=40))
    assert [c.section for c in chunks] == ["Top", "Top > Access", "Top > Access > Fees", "Top > Other"]


def test_small_paragraphs_are_merged_up_to_the_budget():
    b = BlockBuilder()
    b.heading("S", 2)
    for i in range(12):
        b.paragraph(f"Short paragraph {i} about telehealth.")
    chunks = chunk_document(make_doc(b), ChunkSettings(max_tokens=40, min_tokens=10))
    assert 1 < len(chunks) < 12
    assert all(approx_token_count(c.text) <= 40 for c in chunks)


def test_tiny_tail_joins_the_previous_chunk():
    b = BlockBuilder()
    b.heading("S", 2)
    b.paragraph(long_paragraph(6))
    b.paragraph("Tail.")
    chunks = chunk_document(make_doc(b), ChunkSettings(max_tokens=80, min_tokens=20))
    assert chunks[-1].text.endswith("Tail.") and chunks[-1].text != "Tail."


def test_chunk_ids_derive_from_content():
    b = BlockBuilder()
    b.heading("S", 2)
    b.paragraph("Same words.")
    b.heading("S", 2)
    b.paragraph("Same words.")
    doc = make_doc(b)
    first = chunk_document(doc)
    assert first == chunk_document(doc)
    assert len({c.id for c in first}) == 2  # identical text twice still gets two ids
    other = make_doc(b, doc_id="other")
    assert {c.id for c in chunk_document(other)}.isdisjoint({c.id for c in first})


def test_overlap_repeats_sentences_between_neighbours():
    b = BlockBuilder()
    b.paragraph(long_paragraph(20))
    doc = make_doc(b)
    chunks = chunk_document(doc, ChunkSettings(max_tokens=60, min_tokens=10, overlap_sentences=1))
    assert len(chunks) > 2
    for a, c in zip(chunks, chunks[1:]):
        assert c.start < a.end  # the next chunk starts inside the previous one


def test_document_without_blocks_is_split_on_blank_lines():
    text = "First paragraph.\n\nSecond paragraph.\n\n\nThird."
    doc = Document(id="p", title="", url="", source_type="promo", text=text)
    chunks = chunk_document(doc, ChunkSettings(max_tokens=4, min_tokens=1))
    assert [c.text for c in chunks] == ["First paragraph.", "Second paragraph.", "Third."]
    assert embedding_text("", chunks[0]) == "First paragraph."


# ---- hostile text: no sentence boundary, or no word pieces to count --------------------------------

import pytest  # noqa: E402

from kb.ingest.chunking import max_chunk_chars  # noqa: E402


def _no_boundary_doc(paragraph: str) -> Document:
    # BlockBuilder collapses whitespace; a hand-made Document (e.g. BEIR text) does not.
    return Document(id="h", title="T", url="https://x.org", source_type="agency", text=paragraph,
                    blocks=(Block(kind="paragraph", start=0, end=len(paragraph)),))


@pytest.mark.parametrize("paragraph", [
    "?" * 50_000,                                   # no boundary, one "word"
    "a" * 200_000,                                  # one unbroken token
    "x" + " " * 100_000 + "y.",                     # three word pieces spread over 100,000 characters
    " ".join(["registry"] * 20_000),                # words, no punctuation at all
], ids=["question-run", "long-token", "whitespace", "no-punctuation"])
@pytest.mark.parametrize("cfg", [ChunkSettings(), ChunkSettings(max_tokens=100_000, min_tokens=0),
                                 ChunkSettings(overlap_sentences=2)], ids=["default", "huge-budget", "overlap"])
def test_no_chunk_exceeds_the_character_cap(paragraph, cfg):
    doc = _no_boundary_doc(paragraph)
    chunks = chunk_document(doc, cfg)
    cap = max_chunk_chars(cfg)
    assert chunks and all(len(c.text) <= cap and c.text == doc.text[c.start:c.end] for c in chunks)
    covered = "".join("".join(c.text.split()) for c in chunks)
    if cfg.overlap_sentences == 0:
        assert covered == "".join(paragraph.split())  # nothing but whitespace is lost or repeated


def test_the_cap_follows_the_budget_and_never_cuts_the_real_corpus(corpus_docs, embedder):
    assert max_chunk_chars(ChunkSettings()) == 2048
    assert max_chunk_chars(ChunkSettings(max_tokens=8)) == 2000
    assert max_chunk_chars(ChunkSettings(max_tokens=100_000)) == 1_600_000  # one vector per document stays possible
    longest = max(len(c.text) for d in corpus_docs for c in chunk_document(d, ChunkSettings(), embedder.count_tokens))
    assert longest < max_chunk_chars(ChunkSettings()) / 2

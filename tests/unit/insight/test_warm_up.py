"""Serving processes warm the sentence cache, so the first highlight or talking point is not slow."""
from kb.insight.highlight import best_sentences
from kb.insight.sentence_vectors import SentenceVectorCache, warm_sentences
from tests.fixtures.fake_embedder import CountingEmbedder


def test_warmed_cache_answers_highlights_without_the_model(corpus_index, embedder):
    cache = SentenceVectorCache()
    encoded = warm_sentences(corpus_index, cache)
    assert encoded == len(cache) > 100
    assert warm_sentences(corpus_index, cache) == 0  # a second warm-up (e.g. a new version) re-encodes nothing

    counting = CountingEmbedder(embedder)
    hits = corpus_index.search("registry data for research", k=10).hits
    best_sentences(counting, "registry data for research", [h.chunk for h in hits], cache)
    assert counting.encoded == 0


def test_warm_up_is_skipped_when_the_cache_cannot_hold_the_index(corpus_index):
    assert warm_sentences(corpus_index, SentenceVectorCache(max_entries=10)) == 0

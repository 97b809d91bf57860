"""Query encoding on the hot path: concurrent queries share model calls, results stay the same,
and the LRU cache answers repeats without the model."""
import threading
import time

import numpy as np
import pytest

from kb.models.batcher import QueryBatcher

QUESTIONS = [
    "When was the CPR number introduced?",
    "Which registry records hospital contacts?",
    "telehealth for COPD patients",
    "What does MedCom do?",
    "How can researchers access Danish health data?",
    "sundhed.dk",
    "biobank samples",
    "heart failure monitoring at home",
]


def _concurrently(fn, args):
    results: dict[int, object] = {}
    start = threading.Barrier(len(args))

    def run(i, a):
        start.wait()
        try:
            results[i] = fn(a)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return [results[i] for i in range(len(args))]


def test_concurrent_queries_share_model_calls_and_each_gets_its_own_vector():
    calls: list[list[str]] = []

    def slow_encode(texts):
        calls.append(list(texts))
        time.sleep(0.05)  # long enough that the other threads arrive while it runs
        return np.array([[float(len(t)), float(i)] for i, t in enumerate(texts)], dtype=np.float32)

    batcher = QueryBatcher(slow_encode, max_batch=32)
    texts = [f"query number {i}" + "x" * i for i in range(12)]
    out = _concurrently(batcher.encode, texts)
    assert [v[0] for v in out] == [float(len(t)) for t in texts]  # each caller got its own row
    assert sorted(t for call in calls for t in call) == sorted(texts)  # each text encoded once
    assert len(calls) < len(texts) and batcher.calls == len(calls) and batcher.texts == len(texts)


def test_batch_size_is_capped_and_a_lone_query_is_encoded_alone():
    sizes: list[int] = []

    def encode(texts):
        sizes.append(len(texts))
        time.sleep(0.02)
        return np.zeros((len(texts), 2), dtype=np.float32)

    batcher = QueryBatcher(encode, max_batch=3)
    _concurrently(batcher.encode, [str(i) for i in range(10)])
    assert max(sizes) <= 3 and sum(sizes) == 10
    sizes.clear()
    batcher.encode("alone")
    assert sizes == [1]


def test_an_encoding_error_reaches_every_waiting_caller_and_the_batcher_recovers():
    fail = threading.Event()
    fail.set()

    def encode(texts):
        time.sleep(0.02)
        if fail.is_set():
            raise RuntimeError("model exploded")
        return np.ones((len(texts), 2), dtype=np.float32)

    batcher = QueryBatcher(encode)
    out = _concurrently(batcher.encode, ["a", "b", "c", "d"])
    assert all(isinstance(r, RuntimeError) for r in out)
    fail.clear()
    assert batcher.encode("e").tolist() == [1.0, 1.0]


def test_real_model_batched_vectors_match_single_encodes(embedder):
    singles = [embedder.encode([q])[0] for q in QUESTIONS]
    batched = _concurrently(embedder.queries.encode, QUESTIONS)
    for single, vector in zip(singles, batched):
        assert vector.shape == (embedder.dim,) and vector.dtype == np.float32
        assert np.dot(single, vector) == pytest.approx(1.0, abs=1e-5)


def test_query_cache_answers_repeats_without_the_model(embedder):
    texts_before = embedder.queries.texts
    first = embedder.encode_query("a question nobody asked before 7f3a")
    assert embedder.queries.texts == texts_before + 1
    again = embedder.encode_query("a question nobody asked before 7f3a")
    assert embedder.queries.texts == texts_before + 1 and again is first
    assert not again.flags.writeable  # shared between requests, so read-only

"""Exact search for small indexes, approximate above a threshold: chosen by size, recorded in the
manifest, applied when the index is opened, and accurate on clustered vectors."""
import json
from dataclasses import replace

import faiss
import numpy as np
import pytest

import kb
from kb.index.layout import IndexLayout
from kb.search.dense import build_faiss_index, configure_search, ivf_nlist_for, search_parameters
from tests.fixtures.fake_embedder import FakeEmbedder


def clustered(n: int, sample_seed: int, dim: int = 64, clusters: int = 200) -> np.ndarray:
    """Unit vectors scattered around fixed random centroids (same centroids for every sample):
    neighbours are close and clusters overlap, as with real text, unlike uniform noise."""
    centroids = np.random.default_rng(0).standard_normal((clusters, dim)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    rng = np.random.default_rng(sample_seed)
    x = centroids[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim)).astype(np.float32) * (1.2 / dim**0.5)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall_at_10(approx: faiss.Index, exact: faiss.Index, queries: np.ndarray) -> float:
    _, got = approx.search(queries, 10)
    _, want = exact.search(queries, 10)
    return float(np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want)]))


@pytest.fixture(scope="module")
def vectors():
    return clustered(4000, sample_seed=1)


@pytest.fixture(scope="module")
def queries():
    return clustered(200, sample_seed=2)  # not in the index, from the same distribution


def test_type_follows_the_size_threshold(vectors, settings):
    small = replace(settings, exact_index_max_vectors=len(vectors))
    index, info = build_faiss_index(vectors, small)
    assert info["type"] == "flat-ip" and index.ntotal == len(vectors) and info["vectors"] == len(vectors)

    over = replace(settings, exact_index_max_vectors=len(vectors) - 1)
    index, info = build_faiss_index(vectors, over)
    assert info["type"] == {"ivf": "ivf-flat-ip", "hnsw": "hnsw-flat-ip"}[settings.approx_index]
    assert index.ntotal == len(vectors)

    index, info = build_faiss_index(vectors, replace(over, approx_index="hnsw"))
    assert info["type"] == "hnsw-flat-ip" and info["params"]["M"] == over.hnsw_m
    index, info = build_faiss_index(vectors, replace(over, approx_index="ivf", ivf_nlist=50, ivf_nprobe=7))
    assert info["type"] == "ivf-flat-ip" and info["params"]["nlist"] == 50 and info["params"]["nprobe"] == 7
    assert faiss.extract_index_ivf(index).nlist == 50 and faiss.extract_index_ivf(index).is_trained
    with pytest.raises(ValueError, match="KB_APPROX_INDEX"):
        build_faiss_index(vectors, replace(over, approx_index="lsh"))


def test_nlist_grows_with_the_collection_and_keeps_enough_training_points():
    assert ivf_nlist_for(1_000_000) == 4000
    assert ivf_nlist_for(100_000) == int(4 * 100_000**0.5)
    assert ivf_nlist_for(3000) == 3000 // 39
    assert ivf_nlist_for(10) == 1


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_recall_against_exact(kind, vectors, queries, settings):
    """With the default parameters, recall@10 on clustered vectors is at least 0.95."""
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    approx, info = build_faiss_index(vectors, replace(settings, exact_index_max_vectors=1000, approx_index=kind))
    assert info["type"] != "flat-ip"
    recall = recall_at_10(approx, exact, queries)
    assert recall >= 0.95, f"{kind} recall@10 {recall:.3f} with {info['params']}"


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_filtered_search_works_on_approximate_indexes(kind, vectors, settings):
    """FAISS refuses plain SearchParameters on IVF/HNSW; ours carry the right type and parameters."""
    index, info = build_faiss_index(vectors, replace(settings, exact_index_max_vectors=1000, approx_index=kind))
    allowed = np.arange(0, len(vectors), 3, dtype=np.int64)
    selector = faiss.IDSelectorBatch(allowed)
    _, ids = index.search(vectors[:20], 10, params=search_parameters(info, selector))
    found = ids[ids >= 0]
    assert len(found) > 0 and set(found.tolist()) <= set(allowed.tolist())
    assert ids[0][0] == 0  # row 0 is allowed and is its own nearest neighbour


def test_parameters_are_recorded_in_the_manifest_and_applied_at_open(tmp_path, corpus_docs, settings):
    fake = FakeEmbedder()
    approx = replace(settings, exact_index_max_vectors=20, approx_index="ivf", ivf_nlist=4, ivf_nprobe=3)
    report = kb.build_index(corpus_docs, tmp_path, fake, approx)
    assert report.chunks > 20
    manifest = json.loads((IndexLayout(tmp_path).current_dir() / "manifest.json").read_text())
    info = manifest["retrievers"]["dense"]["index"]
    assert info["type"] == "ivf-flat-ip"
    assert info["params"]["nlist"] == 4 and info["params"]["nprobe"] == 3
    assert info["vectors"] == report.chunks and info["exact_max"] == 20

    # a reader configured differently still searches the way the index was built
    index = kb.Index.open(tmp_path, fake, replace(approx, ivf_nprobe=1))
    assert faiss.extract_index_ivf(index.dense().faiss_index).nprobe == 3
    hits = index.search("national patient registry", k=5, mode="dense").hits
    assert len(hits) == 5

    small = kb.build_index(corpus_docs, tmp_path / "exact", fake, settings)
    manifest = json.loads((IndexLayout(tmp_path / "exact").current_dir() / "manifest.json").read_text())
    assert small.chunks <= settings.exact_index_max_vectors and manifest["retrievers"]["dense"]["index"]["type"] == "flat-ip"


def test_changing_index_settings_triggers_a_rebuild(tmp_path, corpus_docs, settings):
    fake = FakeEmbedder()
    kb.build_index(corpus_docs[:5], tmp_path, fake, settings)
    again = kb.build_index(corpus_docs[:5], tmp_path, fake, settings)
    assert again.unchanged
    changed = kb.build_index(corpus_docs[:5], tmp_path, fake, replace(settings, approx_index="hnsw"))
    assert not changed.unchanged and changed.encoded == 0


def test_configure_search_reads_the_manifest_params(vectors, settings):
    index, info = build_faiss_index(vectors, replace(settings, exact_index_max_vectors=10, approx_index="hnsw",
                                                     hnsw_ef_search=77))
    faiss.downcast_index(index).hnsw.efSearch = 16
    configure_search(index, info)
    assert faiss.downcast_index(index).hnsw.efSearch == 77

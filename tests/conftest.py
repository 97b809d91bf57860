"""Shared fixtures: the real model and the real corpus, loaded and indexed once per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
EVAL = ROOT / "tests" / "eval"

# Session-scoped PostgreSQL and Redis servers (started on first use, stopped at the end), and
# real gunicorn servers over a small English-only index (tests/fixtures/gunicorn.py).
pytest_plugins = ["tests.fixtures.servers", "tests.fixtures.gunicorn"]


@pytest.fixture(scope="session")
def settings(tmp_path_factory):
    from kb.core.settings import Settings

    base = Settings()
    return Settings(
        index_dir=tmp_path_factory.mktemp("index"),
        query_log_path=str(tmp_path_factory.mktemp("logs") / "querylog.sqlite"),
        query_log_enabled=False,
        chunking=base.chunking,
    )


@pytest.fixture(scope="session")
def embedder():
    """The English model alone: tests that build small indexes of their own use it (no e5 vectors)."""
    import kb

    return kb.load_embedder()


@pytest.fixture(scope="session")
def encoders(settings, embedder):
    """Both models, as the product loads them: the shipped corpus is indexed with both once."""
    import kb

    return kb.load_encoders(settings)


@pytest.fixture(scope="session")
def corpus_docs():
    from indexer.loaders import load_corpus

    return load_corpus(CORPUS)


@pytest.fixture(scope="session")
def corpus_index_dir(settings, encoders, corpus_docs) -> Path:
    """The real corpus, indexed once with both models and calibrated like `make index` does;
    tests must treat it as read-only."""
    import kb
    from kb.answer.calibration import calibration_for_build

    fingerprint, calibrate = calibration_for_build(EVAL / "answerability.jsonl")
    kb.build_index(corpus_docs, settings.index_dir, encoders, settings, post_build=calibrate,
                   extra_fingerprint=fingerprint)
    return settings.index_dir


@pytest.fixture(scope="session")
def corpus_index(corpus_index_dir, encoders, settings):
    import kb

    return kb.Index.open(corpus_index_dir, encoders, settings)


@pytest.fixture(scope="session")
def app(corpus_index_dir, encoders, settings):
    from kb import LiveIndex
    from search_app import create_app
    from search_app.settings import WebSettings

    live = LiveIndex(corpus_index_dir, settings, encoders)
    return create_app({"TESTING": True, "SETTINGS": settings, "WEB_SETTINGS": WebSettings(),
                       "INDEX_DIR": str(corpus_index_dir), "LIVE_INDEX": live})


@pytest.fixture()
def client(app):
    return app.test_client()

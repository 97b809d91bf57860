"""/healthz is liveness, /readyz readiness: 503 with a JSON reason until the warm-up is done."""
from __future__ import annotations

import threading

from kb import LiveIndex
from search_app import create_app
from search_app.readiness import EXTENSION


class SlowWarmUp(LiveIndex):
    """A live index whose warm-up waits until the test lets it go (a model still loading)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.go = threading.Event()

    def warm_up(self):
        assert self.go.wait(60), "the test never released the warm-up"
        return super().warm_up()


def _app(live: LiveIndex, settings, warm_up):
    return create_app({"TESTING": True, "SETTINGS": settings, "LIVE_INDEX": live, "WARM_UP": warm_up})


def test_not_ready_while_warming_up_then_ready(corpus_index_dir, encoders, settings, corpus_index):
    live = SlowWarmUp(corpus_index_dir, settings, encoders)
    app = _app(live, settings, "background")  # `make dev`: serves at once, warms in a thread
    client = app.test_client()
    warming = client.get("/readyz")
    assert warming.status_code == 503 and warming.headers["Retry-After"] == "1"
    assert warming.get_json() == {"status": "starting", "error": {
        "code": "warming_up", "message": "Loading the models and the index and running the warm-up search."}}
    assert client.get("/healthz").status_code == 200  # alive meanwhile: liveness is not readiness
    live.go.set()
    assert app.extensions[EXTENSION].wait(60)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "index_version": corpus_index.version,
                                "retrievers": sorted(corpus_index.retrievers)}


def test_a_failed_warm_up_is_not_ready_and_says_what_to_do(tmp_path, settings, embedder):
    missing = tmp_path / "secret-place" / "index"
    client = _app(LiveIndex(missing, settings, embedder), settings, True).test_client()  # gunicorn's way
    r = client.get("/readyz")
    assert r.status_code == 503 and r.get_json()["status"] == "unavailable"
    assert r.get_json()["error"] == {"code": "warm_up_failed",
                                     "message": "index not found: build it with `python -m indexer build`"}
    assert "secret-place" not in r.get_data(as_text=True)


def test_without_a_warm_up_ready_means_the_index_can_be_served(tmp_path, corpus_index_dir, settings, embedder, encoders):
    assert _app(LiveIndex(corpus_index_dir, settings, encoders), settings, False).test_client().get("/readyz").status_code == 200
    gone = _app(LiveIndex(tmp_path, settings, embedder), settings, False).test_client().get("/readyz")
    assert gone.status_code == 503 and gone.get_json()["error"]["code"] == "index_unavailable"


def test_probes_are_outside_the_rate_limit(corpus_index_dir, encoders, settings):
    from search_app.settings import WebSettings

    app = create_app({"TESTING": True, "SETTINGS": settings, "LIVE_INDEX": LiveIndex(corpus_index_dir, settings, encoders),
                      "WEB_SETTINGS": WebSettings(rate_limit="2/minute")})
    client = app.test_client()
    assert [client.get("/readyz").status_code for _ in range(5)] == [200] * 5
    assert [client.get("/api/search?q=registry").status_code for _ in range(3)] == [200, 200, 429]

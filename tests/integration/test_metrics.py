"""/metrics: scraped after real traffic, in-process and under real gunicorn with two workers.

In-process, the counters are module-wide (other tests' requests count too), so each check compares
a scrape after the traffic with one before it. Under gunicorn the server is fresh: its figures
must add up exactly to the requests sent, whichever worker answered them and whichever one
answers the scrape (prometheus_client's multiprocess mode, folder made by gunicorn_conf.py).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kb import LiveIndex
from kb.index.layout import IndexLayout
from kb.insight import QueryLog, QueryRecord
from search_app import create_app
from search_app.settings import WebSettings
from tests.fixtures.gunicorn import SERVER_ENV, Client, free_port, gunicorn

TOKEN = "metrics-test-admin-token-5b1e-77c2d9a0f3"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DURATION = "kb_http_request_duration_seconds"


def scrape(text: str) -> list[tuple[str, dict, float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples, name: str, **labels) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there is none)."""
    return sum(v for n, ls, v in samples if n == name and all(ls.get(k) == w for k, w in labels.items()))


# ---- in-process ----------------------------------------------------------------------------

@pytest.fixture()
def metered(tmp_path, corpus_index_dir, encoders, settings):
    """An app with the metrics behind the admin token and a query log of its own, on a copy of
    the session index (so its CURRENT can be pointed elsewhere), reloading at every request."""
    index_dir = tmp_path / "index"
    shutil.copytree(corpus_index_dir, index_dir, ignore=shutil.ignore_patterns("*.lock"))
    own = replace(settings, index_dir=index_dir, reload_check_seconds=0.0)
    qlog = QueryLog(tmp_path / "querylog.sqlite", 90)
    app = create_app({"TESTING": True, "SETTINGS": own, "WEB_SETTINGS": WebSettings(admin_token=TOKEN),
                      "LIVE_INDEX": LiveIndex(index_dir, own, encoders), "QUERY_LOG": qlog})
    yield app, index_dir
    qlog.close()


def test_metrics_need_the_admin_token_by_default(app, metered):
    assert app.test_client().get("/metrics").status_code == 404  # no admin token set: no metrics
    client = metered[0].test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthorized"
    assert client.get("/metrics", headers={"Authorization": "Bearer not-the-token"}).status_code == 401
    assert client.get("/metrics", headers=AUTH).status_code == 200


def test_metrics_can_be_open_or_off(corpus_index_dir, encoders, settings):
    def app_with(metrics: str):
        return create_app({"TESTING": True, "SETTINGS": settings, "WEB_SETTINGS": WebSettings(metrics=metrics),
                           "LIVE_INDEX": LiveIndex(corpus_index_dir, settings, encoders)})

    opened = app_with("open").test_client().get("/metrics")
    assert opened.status_code == 200 and opened.mimetype == "text/plain" and DURATION in opened.get_data(as_text=True)
    assert app_with("off").test_client().get("/metrics").status_code == 404


def test_scrape_after_traffic_counts_requests_searches_answers_and_the_index(metered, corpus_index):
    app, _ = metered
    client = app.test_client()
    before = scrape(client.get("/metrics", headers=AUTH).get_data(as_text=True))
    english = "When was the National Patient Registry established?"
    danish = "Hvornår blev Landspatientregisteret oprettet, og hvem ejer det?"
    for path in (f"/api/search?q={english}", f"/api/search?q={english}&mode=dense", f"/api/search?q={danish}",
                 f"/api/search?q={english}&mode=keyword", "/api/search?q=", "/api/documents/no-such-doc"):
        client.get(path)
    briefings = [client.get(f"/api/talking-points?topic={topic}").get_json()["answered"]
                 for topic in ("registry data for research", "What is the corporate tax rate in Denmark?")]
    assert briefings == [True, False]
    app.extensions["kb_query_log"].flush()
    after = scrape(client.get("/metrics", headers=AUTH).get_data(as_text=True))

    def grew(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew(f"{DURATION}_count", endpoint="api.search", method="GET", status="2xx") == 4
    assert grew(f"{DURATION}_count", endpoint="api.search", method="GET", status="4xx") == 1
    assert grew(f"{DURATION}_count", endpoint="api.document", status="4xx") == 1
    assert grew(f"{DURATION}_bucket", endpoint="api.search", status="2xx", le="+Inf") == 4
    assert grew(f"{DURATION}_sum", endpoint="api.search", status="2xx") > 0
    english_route = "+".join(corpus_index.route(english).retrievers)
    danish_route = "+".join(corpus_index.route(danish).retrievers)
    assert "multilingual" in danish_route and english_route != danish_route
    assert grew("kb_searches_total", kind="search", mode="hybrid", language="en", route=english_route) == 1
    assert grew("kb_searches_total", kind="search", mode="hybrid", language="da", route=danish_route) == 1
    assert grew("kb_searches_total", kind="search", mode="dense") == 1
    assert grew("kb_searches_total", kind="search", mode="keyword", route="keyword") == 1
    assert grew("kb_answers_total", kind="search", answered="true") == 4  # the same signal as the body's `answered`
    assert grew("kb_answers_total", kind="search", answered="unknown") == 0
    assert grew("kb_answers_total", kind="talking_points", answered="true") == 1
    assert grew("kb_answers_total", kind="talking_points", answered="false") == 1
    assert value(after, "kb_index_version", version=corpus_index.version) == 1
    assert value(after, "kb_index_chunks", version=corpus_index.version) == corpus_index.chunk_count
    assert grew("kb_querylog_rows_total", outcome="written") == 6  # every answered search, none of the errors
    assert value(after, "kb_querylog_queue_depth") == 0 and grew("kb_querylog_rows_total", outcome="dropped") == 0


def test_query_log_queue_depth_and_drops_follow_the_log(tmp_path, corpus_index_dir, encoders, settings, corpus_index):
    """A writer stuck on a slow row: the rows behind it are the queue depth; with a queue of 3,
    the rest are dropped (QueryLog.stats) and the drop counter grows by as many."""
    qlog = QueryLog(tmp_path / "querylog.sqlite", 90, queue_size=3)
    app = create_app({"TESTING": True, "SETTINGS": settings, "WEB_SETTINGS": WebSettings(metrics="open"),
                      "LIVE_INDEX": LiveIndex(corpus_index_dir, settings, encoders), "QUERY_LOG": qlog})
    client = app.test_client()
    stuck, release = threading.Event(), threading.Event()

    def slow(rec: QueryRecord) -> QueryRecord:
        stuck.set()
        release.wait(30)
        return rec

    row = QueryRecord("search", "registry", "hybrid", {}, 0, None, None, None, (), corpus_index.version)
    try:
        before = scrape(client.get("/metrics").get_data(as_text=True))
        assert qlog.record(row, slow) and stuck.wait(10)  # the writer now holds this row
        queued = [qlog.record(row) for _ in range(5)]
        assert queued == [True, True, True, False, False]
        during = scrape(client.get("/metrics").get_data(as_text=True))
        assert value(during, "kb_querylog_queue_depth") == 3
        assert value(during, "kb_querylog_rows_total", outcome="dropped") - value(
            before, "kb_querylog_rows_total", outcome="dropped") == 2
    finally:
        release.set()
        qlog.flush()
        qlog.close()
    after = scrape(client.get("/metrics").get_data(as_text=True))
    assert value(after, "kb_querylog_queue_depth") == 0


def test_reload_errors_and_swaps_are_counted(metered, corpus_index):
    app, index_dir = metered
    client = app.test_client()
    client.get("/healthz")
    layout = IndexLayout(index_dir)
    live_version = layout.version_dir(corpus_index.version)
    before = scrape(client.get("/metrics", headers=AUTH).get_data(as_text=True))
    damaged = live_version.parent / "20991231T000000Z-damage"
    shutil.copytree(live_version, damaged, ignore=shutil.ignore_patterns("*.lock"))
    with (damaged / "kb.sqlite").open("ab") as f:
        f.write(b"not what the checksum says")
    (index_dir / "CURRENT").write_text(damaged.name + "\n")
    client.get("/api/search?q=registry")  # served by the last good version; the reload failed
    failing = scrape(client.get("/metrics", headers=AUTH).get_data(as_text=True))
    assert value(failing, "kb_index_reload_errors_total") - value(before, "kb_index_reload_errors_total") == 1
    assert value(failing, "kb_index_reload_failing") == 1
    good = live_version.parent / "20991231T000001Z-good"
    shutil.copytree(live_version, good, ignore=shutil.ignore_patterns("*.lock"))
    manifest = json.loads((good / "manifest.json").read_text())
    (good / "manifest.json").write_text(json.dumps({**manifest, "build_id": good.name}))  # a version of its own
    (index_dir / "CURRENT").write_text(good.name + "\n")
    client.get("/api/search?q=registry")
    swapped = scrape(client.get("/metrics", headers=AUTH).get_data(as_text=True))
    assert value(swapped, "kb_index_swaps_total") - value(before, "kb_index_swaps_total") == 1
    assert value(swapped, "kb_index_reload_failing") == 0
    assert value(swapped, "kb_index_version", version=good.name) == 1
    assert value(swapped, "kb_index_version", version=corpus_index.version) == 0


def test_gunicorn_config_never_imports_the_metrics_client_before_the_folder_is_set():
    """prometheus_client picks file-backed values only if PROMETHEUS_MULTIPROC_DIR is set when it is
    first imported; the master must not import it earlier, or forked workers would inherit
    in-memory values and every scrape would show one worker's share."""
    code = ("import runpy, sys; runpy.run_path('search_app/gunicorn_conf.py'); "
            "print('prometheus_client' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


# ---- gunicorn, two workers -----------------------------------------------------------------

def _pids(folder: Path, prefix: str) -> set[str]:
    return {p.stem.rsplit("_", 1)[1] for p in folder.glob(f"{prefix}*.db")}


@pytest.mark.slow
def test_two_gunicorn_workers_add_up_in_one_scrape(english_index, tmp_path):
    parent, metrics_port, sent = tmp_path / "metrics", free_port(), 40
    env = {**SERVER_ENV, "KB_WORKERS": "2", "KB_ADMIN_TOKEN": TOKEN, "KB_METRICS_BIND": f"127.0.0.1:{metrics_port}",
           "PROMETHEUS_MULTIPROC_DIR": str(parent), "KB_QUERY_LOG": str(tmp_path / "querylog.sqlite")}
    with gunicorn(english_index.dir, env=env) as server:
        for n in range(sent):  # a new connection each time, so both workers take a share
            client = Client(server.port)
            status, _ = client.get("/api/search", {"q": f"registry question {n}", "k": 3})
            client.close()
            assert status == 200
        (folder,) = parent.iterdir()  # the fresh folder gunicorn_conf.py made for this start
        workers = _pids(folder, "histogram_")
        assert len(workers) == 2, f"one worker answered everything; cannot show aggregation: {workers}"
        token_scrape = Client(server.port).get("/metrics", headers=AUTH)
        master_scrape = Client(metrics_port).get("/metrics")
        for status, body in (token_scrape, master_scrape):
            samples = scrape(body.decode())
            assert status == 200
            assert value(samples, f"{DURATION}_count", endpoint="api.search", status="2xx") == sent
            assert value(samples, "kb_searches_total", kind="search", language="en", route="dense+keyword") == sent
            assert value(samples, "kb_index_version", version=english_index.version) == 1
        assert Client(server.port).get("/metrics")[0] == 401  # the app port wants the token

        victim = int(sorted(workers)[0])
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while str(victim) in _pids(folder, "gauge_live") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert str(victim) not in _pids(folder, "gauge_live"), "the dead worker's gauges were not removed"
        assert str(victim) in _pids(folder, "histogram_")  # what it counted still counts
        samples = scrape(Client(metrics_port).get("/metrics")[1].decode())
        assert value(samples, f"{DURATION}_count", endpoint="api.search", status="2xx") == sent
    assert not folder.exists(), "the metrics folder outlived the server"

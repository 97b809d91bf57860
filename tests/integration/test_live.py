"""A running app follows the index folder: new builds are served without a restart, broken ones
are not, and requests in flight during a swap all succeed."""
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

import kb
from kb.search.live import LiveIndex
from kb.index.layout import IndexLayout, verify_checksums

VECTORS = "dense.faiss"
from search_app import create_app
from tests.conftest import ROOT
from tests.fixtures.fake_embedder import FakeEmbedder

RELOAD = 0.2  # KB_RELOAD_CHECK_SECONDS for these tests


@pytest.fixture()
def fast_settings(settings, tmp_path):
    return replace(settings, index_dir=tmp_path / "index", reload_check_seconds=RELOAD)


def _docs(corpus_docs, *ids):
    found = [d for d in corpus_docs if d.id in ids]
    assert len(found) == len(ids)
    return found


def _app(index_dir, settings, embedder):
    live = LiveIndex(index_dir, settings, embedder)
    return create_app({"TESTING": True, "SETTINGS": settings, "INDEX_DIR": str(index_dir), "LIVE_INDEX": live}), live


def test_app_serves_a_new_build_without_restart(fast_settings, embedder, corpus_docs):
    """Real model, small corpus: v1 serves; after v2 is built into the same folder the next request
    (once the check interval has passed) answers from v2, and v2's new document is found."""
    index_dir = fast_settings.index_dir
    v1 = kb.build_index(_docs(corpus_docs, "medcom", "sundhed-dk"), index_dir, embedder, fast_settings)
    app, live = _app(index_dir, fast_settings, embedder)
    client = app.test_client()
    question = "When was the National Patient Registry established?"

    first = client.get("/api/search", query_string={"q": question}).get_json()
    assert first["index_version"] == v1.build_id
    assert all(r["doc_id"] != "national-patient-registry" for r in first["results"])

    v2 = kb.build_index(_docs(corpus_docs, "medcom", "sundhed-dk", "national-patient-registry"), index_dir, embedder,
                        fast_settings)
    assert v2.build_id != v1.build_id and v2.encoded < v2.chunks  # v1's chunks were reused
    time.sleep(RELOAD * 1.5)

    second = client.get("/api/search", query_string={"q": question}).get_json()
    assert second["index_version"] == v2.build_id
    assert second["results"][0]["doc_id"] == "national-patient-registry"
    health = client.get("/healthz").get_json()
    assert health["index_version"] == v2.build_id and health["documents"] == 3 and health["chunks"] == v2.chunks
    assert health["last_reload_error"] is None and live.swaps == 1


def test_a_broken_new_version_is_not_switched_to(fast_settings, corpus_docs):
    fake = FakeEmbedder()
    index_dir = fast_settings.index_dir
    v1 = kb.build_index(corpus_docs[:3], index_dir, fake, fast_settings)
    app, live = _app(index_dir, fast_settings, fake)
    client = app.test_client()
    assert client.get("/api/search?q=registry").get_json()["index_version"] == v1.build_id

    v2 = kb.build_index(corpus_docs[:4], index_dir, fake, fast_settings)
    vectors = IndexLayout(index_dir).version_dir(v2.build_id) / VECTORS
    vectors.write_bytes(vectors.read_bytes()[:100])  # truncated after publishing
    time.sleep(RELOAD * 1.5)

    r = client.get("/api/search?q=registry")
    assert r.status_code == 200 and r.get_json()["index_version"] == v1.build_id
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["index_version"] == v1.build_id
    assert v1.build_id in health["last_reload_error"] and VECTORS in health["last_reload_error"]
    assert str(index_dir) not in health["last_reload_error"]  # the file's name, not where it lives

    v3 = kb.build_index(corpus_docs[:5], index_dir, fake, fast_settings)
    time.sleep(RELOAD * 1.5)
    assert client.get("/api/search?q=registry").get_json()["index_version"] == v3.build_id
    assert client.get("/healthz").get_json()["last_reload_error"] is None


def test_requests_in_flight_during_swaps_all_succeed(fast_settings, corpus_docs):
    fake = FakeEmbedder()
    index_dir = fast_settings.index_dir
    settings = replace(fast_settings, reload_check_seconds=0.0)  # look at every request
    first = kb.build_index(corpus_docs[:3], index_dir, fake, settings)
    app, live = _app(index_dir, settings, fake)
    built = [first.build_id]
    seen: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def hammer():
        client = app.test_client()
        while not stop.is_set():
            r = client.get("/api/search?q=health+registry&k=3")
            seen.append((r.status_code, (r.get_json() or {}).get("index_version")))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for n in range(4, 8):  # four swaps under traffic
            built.append(kb.build_index(corpus_docs[:n], index_dir, fake, settings).build_id)
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert len(seen) > 20
    assert {status for status, _ in seen} == {200}
    assert {version for _, version in seen} <= set(built)
    assert seen[-1][1] == built[-1] and live.swaps >= 1


def test_one_slow_reload_does_not_hold_up_other_requests(fast_settings, corpus_docs, monkeypatch):
    """While one request opens a new version, the others keep answering from the old one."""
    fake = FakeEmbedder()
    index_dir = fast_settings.index_dir
    v1 = kb.build_index(corpus_docs[:3], index_dir, fake, fast_settings)
    live = LiveIndex(index_dir, fast_settings, fake)
    assert live.get().version == v1.build_id
    v2 = kb.build_index(corpus_docs[:4], index_dir, fake, fast_settings)
    time.sleep(RELOAD * 1.5)

    opening, release = threading.Event(), threading.Event()
    real_open = kb.search.live.Index.open

    def slow_open(*args, **kwargs):
        opening.set()
        assert release.wait(timeout=30)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(kb.search.live.Index, "open", slow_open)
    reloader = threading.Thread(target=live.get)
    reloader.start()
    try:
        assert opening.wait(timeout=30)
        t0 = time.monotonic()
        assert live.get().version == v1.build_id  # served at once, not after the reload
        assert time.monotonic() - t0 < 1.0
    finally:
        release.set()
        reloader.join(timeout=30)
    assert live.get().version == v2.build_id


# ---- the CURRENT pointer is untrusted ---------------------------------------------------------

@pytest.mark.parametrize("pointer", ["../outside", "OUTSIDE_ABSOLUTE", "..", ".", "versions/../../outside", "v1/../..",
                                     "a\\\\b", ""])
def test_current_cannot_lead_out_of_the_versions_folder(fast_settings, corpus_docs, tmp_path, pointer):
    """CURRENT naming an absolute path or `..` is a damaged index, even where a good index waits
    out there: without the check a reader would open it."""
    fake = FakeEmbedder()
    index_dir = fast_settings.index_dir
    v1 = kb.build_index(corpus_docs[:3], index_dir, fake, fast_settings)
    layout = IndexLayout(index_dir)
    outside = tmp_path / "outside"
    shutil.copytree(layout.version_dir(v1.build_id), outside)  # a valid version outside versions/
    shutil.copytree(layout.version_dir(v1.build_id), index_dir / "outside")
    pointer = pointer.replace("OUTSIDE_ABSOLUTE", str(outside))
    layout.current_file.write_text(pointer + "\n", encoding="utf-8")
    if not pointer:
        assert layout.current_build_id() is None
        return
    with pytest.raises(kb.IndexCorruptError, match="CURRENT"):
        kb.Index.open(index_dir, fake, fast_settings)
    app, _ = _app(index_dir, fast_settings, fake)
    r = app.test_client().get("/api/search?q=registry")
    assert r.status_code == 503 and str(tmp_path) not in r.get_data(as_text=True)


# ---- a version being served is never pruned --------------------------------------------------

def _build(docs, index_dir, settings, n: int):
    return kb.build_index(docs[: 3 + n], index_dir, FakeEmbedder(), settings)


def test_pruning_keeps_the_version_a_running_app_still_serves(fast_settings, corpus_docs):
    """v1 serves; four more builds (the pruner keeps 3) must not delete it; once the app moves on,
    the next build prunes it."""
    fake = FakeEmbedder()
    index_dir = fast_settings.index_dir
    layout = IndexLayout(index_dir)
    v1 = kb.build_index(corpus_docs[:3], index_dir, fake, fast_settings)
    app, live = _app(index_dir, fast_settings, fake)
    client = app.test_client()
    assert client.get("/api/search?q=registry").get_json()["index_version"] == v1.build_id
    served = live.get().manifest
    later = [_build(corpus_docs, index_dir, fast_settings, n) for n in range(1, 5)]  # no request meanwhile

    assert layout.version_dir(v1.build_id).is_dir()  # leased: kept
    assert not layout.version_dir(later[0].build_id).exists()  # nobody served it: pruned as before
    verify_checksums(layout.version_dir(v1.build_id), served, list(served["files"]))  # whole, as served
    time.sleep(RELOAD * 1.5)
    assert client.get("/api/search?q=registry").get_json()["index_version"] == later[-1].build_id
    _build(corpus_docs, index_dir, fast_settings, 5)
    assert not layout.version_dir(v1.build_id).exists()  # the lease went with the swap


LEASE_HOLDER = """
import sys, time
from kb.index.layout import VersionLease
lease = VersionLease.take(sys.argv[1])
print("leased", flush=True)
sys.stdin.read()  # until the test closes our stdin
lease.release()
"""


def test_a_lease_held_by_another_process_stops_the_prune(fast_settings, corpus_docs):
    """What a gunicorn worker serving v1 does to a build in another process."""
    index_dir = fast_settings.index_dir
    layout = IndexLayout(index_dir)
    v1 = _build(corpus_docs, index_dir, fast_settings, 0)
    holder = subprocess.Popen([sys.executable, "-c", LEASE_HOLDER, str(layout.version_dir(v1.build_id))],
                              cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "leased"
        for n in range(1, 5):
            _build(corpus_docs, index_dir, fast_settings, n)
        assert layout.version_dir(v1.build_id).is_dir()
    finally:
        holder.stdin.close()
        holder.wait(30)
    _build(corpus_docs, index_dir, fast_settings, 5)
    assert not layout.version_dir(v1.build_id).exists()
    assert len(list(layout.versions.iterdir())) == 3

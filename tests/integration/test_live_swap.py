"""A rebuild is swapped in while 8 clients search a real server: no request fails, and every
response comes wholly from one index version — the version it names.

Real model, a small slice of the real corpus, a real threaded HTTP server on 127.0.0.1. The index
starts as a copy of the session index, so only the edited page's chunks are encoded. The rebuild
runs in this process while the clients search, with its own model instance (as `indexer build` in
its own process would have); the server notices the new CURRENT within KB_RELOAD_CHECK_SECONDS.
"""
from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server

import kb
from indexer.loaders import load_corpus
from kb.models import SentenceTransformerEncoder as Embedder
from kb.search.live import LiveIndex
from kb.index.layout import IndexLayout
from kb.index.store import DATABASE
from search_app import create_app
from tests.conftest import CORPUS

PAGES = ("medcom.md", "national-patient-registry.md", "cancer-registry.md", "telehealth-wounds.md",
         "civil-registration-system.md", "medical-birth-register.md")
EDIT = ("\n\n## Message catalogue in this test build\n\nIn this test build the MedCom message catalogue "
        "lists 417 standard message types for hospitals, general practitioners and municipalities.\n")
QUERIES = (
    "How many standard message types does the MedCom message catalogue list?",
    "What does MedCom do for Danish health data exchange?",
    "When was the National Patient Registry established?",
    "When was the Danish personal identification number introduced?",
    "Which cancers are reported to the cancer registry?",
    "How is telehealth used for wound care?",
    "What does the Medical Birth Register record?",
    "MedCom standards for general practitioners and municipalities",
)
CLIENTS = 8
RELOAD_SECONDS = 0.1
WARM_SECONDS = 1.5  # load on the old version before the rebuild starts
AFTER_SECONDS = 3.0  # load after the new version is published
SWAP_GRACE_SECONDS = 2.0  # a request starting this long after publishing must see the new version
MAX_REQUESTS = 20000
MAX_SECONDS = 60.0  # hard stop, whatever happens


@dataclass
class Outcome:
    started: float
    status: int | None = None
    version: str | None = None
    results: list[tuple[str, str]] = field(default_factory=list)  # (chunk_id, text)
    error: str | None = None


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # thousands of access-log lines help nobody
        pass


def _version_chunks(index_dir: Path, build_id: str) -> dict[str, str]:
    path = IndexLayout(index_dir).version_dir(build_id) / DATABASE
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return dict(conn.execute("SELECT chunk_id, text FROM chunks"))


@pytest.fixture()
def corpus_copy(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in PAGES:
        shutil.copy(CORPUS / name, folder / name)
    return folder


def test_rebuild_swapped_in_under_load(tmp_path, corpus_copy, corpus_index_dir, embedder, settings):
    index_dir = tmp_path / "index"
    shutil.copytree(corpus_index_dir, index_dir, ignore=shutil.ignore_patterns(".staging-*", ".build.lock"))
    s = replace(settings, index_dir=index_dir, reload_check_seconds=RELOAD_SECONDS)
    v1 = kb.build_index(load_corpus(corpus_copy), index_dir, embedder, s)
    assert v1.encoded == 0  # every vector came from the copied session index

    app = create_app({"TESTING": True, "SETTINGS": s, "LIVE_INDEX": LiveIndex(index_dir, s, embedder)})
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    base = f"http://127.0.0.1:{server.server_port}/api/search"
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    for q in QUERIES:  # encode each query once before the clock starts
        assert requests.get(base, params={"q": q, "k": 5}, timeout=60).status_code == 200

    outcomes: list[Outcome] = []
    lock = threading.Lock()
    stop = threading.Event()
    t0 = time.monotonic()

    def client(n: int) -> None:
        session = requests.Session()
        i = n
        while not stop.is_set() and time.monotonic() - t0 < MAX_SECONDS:
            with lock:
                if len(outcomes) >= MAX_REQUESTS:
                    return
            out = Outcome(started=time.monotonic())
            try:
                r = session.get(base, params={"q": QUERIES[i % len(QUERIES)], "k": 5}, timeout=30)
                out.status = r.status_code
                body = r.json()
                out.version = body.get("index_version")
                out.results = [(hit["chunk_id"], hit["text"]) for hit in body.get("results", [])]
            except Exception as exc:  # a refused connection or a broken body is a failed request
                out.error = repr(exc)
            with lock:
                outcomes.append(out)
            i += 1

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        time.sleep(WARM_SECONDS)
        (corpus_copy / "medcom.md").write_text((CORPUS / "medcom.md").read_text(encoding="utf-8") + EDIT,
                                               encoding="utf-8")
        # The rebuild's own model instance, as a separate `indexer build` process would have.
        builder = Embedder(s.model_path, cache_size=0, batch_size=s.encode_batch_size)
        v2 = kb.build_index(load_corpus(corpus_copy), index_dir, builder, s)
        published = time.monotonic()
        time.sleep(AFTER_SECONDS)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        server.shutdown()
        serving.join(timeout=30)

    assert v2.build_id != v1.build_id and 0 < v2.encoded < v2.chunks
    chunks = {v1.build_id: _version_chunks(index_dir, v1.build_id), v2.build_id: _version_chunks(index_dir, v2.build_id)}
    new_chunks = set(chunks[v2.build_id]) - set(chunks[v1.build_id])
    assert new_chunks  # the edit changed at least one chunk, so the versions are told apart by content

    failures = [o for o in outcomes if o.error or o.status != 200]
    per_version = Counter(o.version for o in outcomes if not o.error)
    mixed = [o for o in outcomes if not o.error and any(chunks.get(o.version, {}).get(cid) != text
                                                         for cid, text in o.results)]
    late_old = [o for o in outcomes if o.started > published + SWAP_GRACE_SECONDS and o.version != v2.build_id]
    new_seen = sum(1 for o in outcomes if o.version == v2.build_id and any(cid in new_chunks for cid, _ in o.results))
    print(f"\nlive swap: {len(outcomes)} requests from {CLIENTS} clients in {time.monotonic() - t0:.1f} s; "
          f"v1 {per_version[v1.build_id]}, v2 {per_version[v2.build_id]}, failures {len(failures)}, "
          f"mixed-version responses {len(mixed)}, v2 responses citing the edited chunk {new_seen}; "
          f"rebuild encoded {v2.encoded} of {v2.chunks} chunks")

    assert not failures, failures[:3]
    assert set(per_version) == {v1.build_id, v2.build_id}
    assert per_version[v1.build_id] >= CLIENTS and per_version[v2.build_id] >= CLIENTS
    assert all(o.results for o in outcomes)
    assert not mixed, mixed[:3]  # every chunk id exists in the named version, with that version's text
    assert not late_old, late_old[:3]
    assert new_seen > 0

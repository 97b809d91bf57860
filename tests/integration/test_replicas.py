"""Two replicas, one truth: two gunicorn servers on two ports share one index folder, one
PostgreSQL query log and one Redis rate-limit store, as docs/DEPLOY.md lays them out.

* questions asked of either replica appear on /admin/questions of both;
* a rebuild is picked up by both while clients search both, with no failed request, every
  response naming one of the two builds, and the shared query log holding every search;
* a client's rate limit is one budget across both replicas.

Real servers throughout (tests/fixtures/servers.py, tests/fixtures/gunicorn.py): in CI a missing
PostgreSQL or Redis fails these tests. Each client request carries an X-Forwarded-For address
of its own (KB_TRUSTED_PROXIES=1, as behind a load balancer), so load from this one test
process counts as many clients; only the rate-limit test reuses one address on purpose.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import psycopg
import pytest
import redis

from tests.fixtures.gunicorn import SERVER_ENV, Client, EnglishIndex, Server, build_english_index, gunicorn
from tests.fixtures.servers import create_database, drop_database

pytestmark = pytest.mark.slow

TOKEN = "replica-test-admin-token-0e6b-4cd1f2a987"
RATE = 20  # per minute per client, counted in Redis
CLIENTS_PER_REPLICA = 2
WARM_SECONDS = 2.0  # load on the first build before the rebuild
SWAP_GRACE_SECONDS = 3.0  # a request starting this long after publishing must see the new build
AFTER_SECONDS = 1.5  # load after both replicas serve the new build
MAX_SECONDS = 120.0  # hard stop for the load, whatever happens
MAX_REQUESTS = 5_000
QUESTIONS = {
    "a": ("When was the National Patient Registry established?", "Which cancers are reported to the cancer registry?",
          "What does the Medical Birth Register record?"),
    "b": ("What does MedCom do for Danish health data exchange?", "How is telehealth used for wound care?",
          "When was the Danish personal identification number introduced?"),
}
EDIT = ("\n\n## Message catalogue in this test build\n\nIn this test build the MedCom message catalogue "
        "lists 417 standard message types for hospitals, general practitioners and municipalities.\n")
_addresses = itertools.count(1)


def new_client_address() -> dict:
    """A header making the next request come from a client of its own (198.18.0.0/15, the range
    set aside for benchmarks; only a header value, nothing is sent there)."""
    n = next(_addresses)
    return {"X-Forwarded-For": f"198.18.{n // 250 % 250}.{n % 250 + 1}"}


@dataclass
class Pair:
    a: Server
    b: Server
    index: EnglishIndex
    query_log: str  # the PostgreSQL URL both replicas log to

    @property
    def servers(self) -> dict[str, Server]:
        return {"a": self.a, "b": self.b}

    def logged_rows(self) -> int:
        with psycopg.connect(self.query_log) as conn:
            return conn.execute("SELECT count(*) FROM queries").fetchone()[0]


@pytest.fixture(scope="module")
def pair(tmp_path_factory, settings, embedder, postgresql_server, redis_server):
    index = build_english_index(tmp_path_factory.mktemp("replicas"), settings, embedder)
    query_log = create_database(postgresql_server, "replicas")
    redis.Redis(host="127.0.0.1", port=redis_server).flushall()
    env = {**SERVER_ENV, "KB_QUERY_LOG": query_log, "KB_RATE_LIMIT_STORAGE": f"redis://127.0.0.1:{redis_server}",
           "KB_RATE_LIMIT": f"{RATE}/minute", "KB_TRUSTED_PROXIES": "1", "KB_ADMIN_TOKEN": TOKEN}
    try:
        with ExitStack() as stack:
            a = stack.enter_context(gunicorn(index.dir, env=env))
            b = stack.enter_context(gunicorn(index.dir, env=env))
            assert a.port != b.port
            yield Pair(a, b, index, query_log)
    finally:
        drop_database(postgresql_server, query_log)


def _search(server: Server, q: str, headers: dict | None = None) -> tuple[int, dict | bytes]:
    client = Client(server.port)
    try:
        status, body = client.get("/api/search", {"q": q, "k": 3}, headers or new_client_address())
    finally:
        client.close()
    return status, (json.loads(body) if status == 200 else body)


def _popular(server: Server) -> set[str]:
    client = Client(server.port)
    status, body = client.get("/admin/questions", {"format": "csv", "table": "popular"},
                              {"Authorization": f"Bearer {TOKEN}", **new_client_address()})
    client.close()
    assert status == 200, body[:300]
    return {cell for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))) for cell in row}


def test_questions_asked_of_either_replica_appear_on_both(pair):
    for name, questions in QUESTIONS.items():
        for q in questions:
            status, _ = _search(pair.servers[name], q)
            assert status == 200
    everything = {q for qs in QUESTIONS.values() for q in qs}
    deadline = time.monotonic() + 60
    while True:
        shown = {name: everything - _popular(server) for name, server in pair.servers.items()}
        if not any(shown.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert shown == {"a": set(), "b": set()}, f"questions missing from /admin/questions: {shown}"


@dataclass
class Outcome:
    server: str
    started: float
    status: int | None = None
    version: str | None = None
    error: str | None = None


@dataclass
class Load:
    pair: Pair
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, name: str, seed: int) -> None:
        server, queries = self.pair.servers[name], [q for qs in QUESTIONS.values() for q in qs]
        client, deadline = Client(server.port), time.monotonic() + MAX_SECONDS
        for i in itertools.count(seed):
            if self.stop.is_set() or time.monotonic() > deadline or len(self.outcomes) >= MAX_REQUESTS:
                break
            outcome = Outcome(name, time.monotonic())
            try:
                outcome.status, body = client.get("/api/search", {"q": queries[i % len(queries)], "k": 3},
                                                  new_client_address())
                if outcome.status == 200:
                    outcome.version = json.loads(body)["index_version"]
                else:
                    outcome.error = body[:200].decode("utf-8", "replace")
            except Exception as exc:  # a failed request is a finding, not a reason to stop
                outcome.error = f"{type(exc).__name__}: {exc}"
                client.close()
            with self.lock:
                self.outcomes.append(outcome)
        client.close()

    def served(self, name: str, version: str) -> bool:
        with self.lock:
            return any(o.server == name and o.version == version for o in self.outcomes)


def test_a_rebuild_reaches_both_replicas_without_a_failed_request(pair):
    old, rows_before = pair.index.version, pair.logged_rows()
    load = Load(pair)
    threads = [threading.Thread(target=load.client, args=(name, n), daemon=True)
               for name in ("a", "b") for n in range(CLIENTS_PER_REPLICA)]
    for t in threads:
        t.start()
    try:
        time.sleep(WARM_SECONDS)
        medcom = pair.index.corpus / "medcom.md"
        medcom.write_text(medcom.read_text(encoding="utf-8") + EDIT, encoding="utf-8")
        pair.index.rebuild()
        published, new = time.monotonic(), pair.index.version
        assert new != old
        deadline = published + 60
        while not (load.served("a", new) and load.served("b", new)) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(AFTER_SECONDS)
    finally:
        load.stop.set()
        for t in threads:
            t.join(30)
    outcomes = list(load.outcomes)
    failed = [o for o in outcomes if o.status != 200]
    assert not failed, f"{len(failed)} of {len(outcomes)} requests failed, e.g. {failed[:3]}"
    assert {o.version for o in outcomes} <= {old, new}
    for name in ("a", "b"):
        mine = [o for o in outcomes if o.server == name]
        assert any(o.version == old for o in mine) and any(o.version == new for o in mine), name
        late = [o for o in mine if o.version == old and o.started > published + SWAP_GRACE_SECONDS]
        assert not late, f"replica {name} served the old build {len(late)} times after the grace period"

    expected, deadline = rows_before + len(outcomes), time.monotonic() + 60
    while pair.logged_rows() < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    assert pair.logged_rows() == expected, "the shared query log does not hold every search"


def test_the_rate_limit_is_one_budget_across_both_replicas(pair):
    me = {"X-Forwarded-For": "203.0.113.7"}
    statuses = [_search((pair.a, pair.b)[i % 2], "registry", me)[0] for i in range(RATE + 6)]
    assert statuses[:RATE] == [200] * RATE, statuses
    assert statuses[RATE:] == [429] * 6, f"a replica counted on its own: {statuses}"
    status, body = _search(pair.b, "registry", me)
    assert status == 429 and b'"too_many_requests"' in body
    assert _search(pair.a, "registry")[0] == _search(pair.b, "registry")[0] == 200  # others are not limited

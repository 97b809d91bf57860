"""Readiness for load balancers: `/readyz` says 200 only once this process can answer searches fast.

`/healthz` is liveness: is the process alive and is there an index it could serve. `/readyz` is
readiness: are the models and the index loaded *and* has the warm-up search run, so that a load
balancer sends no traffic to a replica that would make its first visitors wait for the model to
load. Before that it answers 503 with the usual error shape and a `status` saying why.

How the warm-up is run decides what "ready" means (search_app/factory.py):

* `WARM_UP=True` (gunicorn workers): the warm-up runs before the worker takes traffic, so a
  worker that answers at all is ready, unless the warm-up failed (503 `warm_up_failed`).
* `WARM_UP="background"` (`make dev`): the app serves at once; `/readyz` is 503 `warming_up`
  until the warm-up thread is done.
* `WARM_UP=False` (tests, embedding): nothing is warmed ahead; ready when the index can be
  served, which the probe finds out by asking for it.

After the warm-up, the live index must still be able to serve (a deleted index is 503
`index_unavailable`; a failed reload is not: the last good version keeps serving).
"""
from __future__ import annotations

import logging
import threading

from flask import Blueprint, current_app, jsonify

from search_app.errors import public_index_problem
from search_app.views import live_index

bp = Blueprint("readiness", __name__)
log = logging.getLogger(__name__)

EXTENSION = "kb_readiness"


class Readiness:
    """Where this process's warm-up stands: pending, done, or failed with a public reason."""

    def __init__(self, warm_up_expected: bool) -> None:
        self.warm_up_expected = warm_up_expected
        self._done = threading.Event()
        self.failure: str | None = None

    def warmed(self) -> None:
        self._done.set()

    def failed(self, public_reason: str) -> None:
        self.failure = public_reason
        self._done.set()

    @property
    def warming(self) -> bool:
        return self.warm_up_expected and not self._done.is_set()

    def wait(self, timeout: float) -> bool:
        """For tests and scripts: block until the warm-up ended (either way)."""
        return self._done.wait(timeout)


def readiness() -> Readiness:
    return current_app.extensions[EXTENSION]


def _not_ready(status: str, code: str, message: str):
    response = jsonify({"status": status, "error": {"code": code, "message": message}})
    response.status_code = 503
    response.headers["Retry-After"] = "1"
    return response


@bp.get("/readyz")
def readyz():
    state = readiness()
    if state.warming:
        return _not_ready("starting", "warming_up", "Loading the models and the index and running the warm-up search.")
    if state.failure is not None:
        return _not_ready("unavailable", "warm_up_failed", state.failure)
    try:
        index = live_index().get()  # after a warm-up this is the loaded version, at no cost
    except Exception as exc:  # a probe reports, it does not raise; the path goes to the log only
        log.warning("readyz: index unavailable: %s", exc)
        return _not_ready("unavailable", "index_unavailable", public_index_problem(exc))
    return jsonify({"status": "ready", "index_version": index.version, "retrievers": sorted(index.retrievers)})

"""Admin sign-in state: signed, expiring session cookies, sign-outs every worker honours, a throttle.

Why each part is built this way (search_app/admin.py uses it; its docstring has the summary):

- **Session cookie.** An itsdangerous timestamped signature (HMAC-SHA256, keyed by the admin token,
  so a new token signs everyone out) over a random session id. It is refused once older than
  SESSION_SECONDS, whatever the browser kept. The cookie proves the token without holding it.
- **Sign-out.** A signed cookie is valid until it expires, so signing out must be remembered on the
  server, where *every* gunicorn worker (and every replica) looks: a list in one worker's memory
  would let the next request, landing on another worker, use the signed-out cookie. The revoked
  session ids are kept in KB_RATE_LIMIT_STORAGE when that is a shared store (redis://, ...: the
  replicas already share it for the rate limit), otherwise in a small SQLite file beside the query
  log (the folder of KB_QUERY_LOG), which every worker on the host opens for each check. An entry
  is kept only until its cookie would have expired anyway, so the set never grows past one day's
  sign-outs. A per-token "epoch" was the other candidate; it was not taken because one person
  signing out would sign out the whole team that shares the token.
- **Throttle.** Sign-in attempts (the form, and `Authorization: Bearer` on any admin route) are
  limited per client address whatever KB_RATE_LIMIT says: FREE_ATTEMPTS wrong tokens, then each
  further wrong one locks the address out twice as long as the one before (1 s, 2 s, 4 s, ... at
  most MAX_LOCK_SECONDS); a right token clears the count. Counters live in KB_RATE_LIMIT_STORAGE
  (Flask-Limiter's `limits` storage): shared by all workers with a shared store, per worker with
  the default memory:// (W workers then allow W times the attempts, still hopeless against a
  32-character token).
"""
from __future__ import annotations

import hashlib
import logging
import math
import secrets
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from itsdangerous import BadData, URLSafeTimedSerializer
from limits.storage import MemoryStorage, Storage

log = logging.getLogger(__name__)

SESSION_SECONDS = 8 * 3600
FREE_ATTEMPTS = 5
MAX_LOCK_SECONDS = 15 * 60
FAILURE_MEMORY_SECONDS = 24 * 3600  # wrong attempts are counted for a day after the first
SIGN_OUT_FILE = "admin-signouts.sqlite"  # beside the query log
_SALT = "kb-admin-session-v2"
_KEY = "kb-admin"


class SignOuts(Protocol):
    """Where signed-out session ids are remembered until their cookies expire."""

    def revoke(self, sid: str, until: float) -> None: ...

    def revoked(self, sid: str) -> bool: ...


class FileSignOuts:
    """Revoked session ids in a SQLite file that every worker process on the host opens."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        con.execute("CREATE TABLE IF NOT EXISTS signed_out (sid TEXT PRIMARY KEY, until REAL NOT NULL)")
        return con

    def revoke(self, sid: str, until: float) -> None:
        with closing(self._connect()) as con:
            con.execute("DELETE FROM signed_out WHERE until < ?", (time.time(),))
            con.execute("INSERT OR REPLACE INTO signed_out (sid, until) VALUES (?, ?)", (sid, until))

    def revoked(self, sid: str) -> bool:
        if not self.path.exists():
            return False
        try:
            with closing(self._connect()) as con:
                return con.execute("SELECT 1 FROM signed_out WHERE sid = ?", (sid,)).fetchone() is not None
        except sqlite3.Error:
            log.exception("admin sign-outs unreadable at %s; refusing the session", self.path)
            return True  # fail closed: a sign-out we cannot check might have happened


class SharedSignOuts:
    """Revoked session ids in a shared `limits` store (redis, memcached, ...), expiring by themselves."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def revoke(self, sid: str, until: float) -> None:
        self.storage.incr(f"{_KEY}/signed-out/{sid}", max(1, math.ceil(until - time.time())))

    def revoked(self, sid: str) -> bool:
        return self.storage.get(f"{_KEY}/signed-out/{sid}") > 0


class SignInThrottle:
    """Wrong tokens per client address, with a lock-out that doubles after FREE_ATTEMPTS."""

    def __init__(self, storage: Storage, free_attempts: int = FREE_ATTEMPTS,
                 max_lock_seconds: int = MAX_LOCK_SECONDS) -> None:
        self.storage = storage
        self.free_attempts = free_attempts
        self.max_lock_seconds = max_lock_seconds

    def _failures(self, address: str) -> str:
        return f"{_KEY}/signin-failures/{address}"

    def _lock(self, address: str, failures: int) -> str:
        # one key per count, because a counter's expiry is fixed when it is first set
        return f"{_KEY}/signin-lock/{address}/{failures}"

    def lock_seconds(self, failures: int) -> int:
        """How long the address waits after its `failures`-th wrong token (0 while attempts are free)."""
        if failures <= self.free_attempts:
            return 0
        return min(2 ** min(failures - self.free_attempts - 1, 30), self.max_lock_seconds)

    def wait(self, address: str) -> int:
        """Seconds before `address` may try a token again; 0 when it may try now."""
        failures = self.storage.get(self._failures(address))
        if failures <= self.free_attempts:
            return 0
        lock = self._lock(address, failures)
        if self.storage.get(lock) <= 0:
            return 0
        return max(1, math.ceil(self.storage.get_expiry(lock) - time.time()))

    def failed(self, address: str) -> None:
        failures = self.storage.incr(self._failures(address), FAILURE_MEMORY_SECONDS)
        seconds = self.lock_seconds(failures)
        if seconds:
            self.storage.incr(self._lock(address, failures), seconds)

    def succeeded(self, address: str) -> None:
        self.storage.clear(self._failures(address))


@dataclass
class SignIn:
    """Everything the admin blueprint needs to sign people in and out, for one app."""

    token: str
    sign_outs: SignOuts
    throttle: SignInThrottle
    session_seconds: int = SESSION_SECONDS

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.token, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})

    def new_session(self) -> str:
        """A cookie value for a fresh session: signed, timestamped, holding only a random id."""
        return self._serializer().dumps({"sid": secrets.token_urlsafe(18)})

    def _session(self, cookie: str) -> tuple[str, float] | None:
        """(session id, signing time) of a well-signed, unexpired cookie; None otherwise."""
        if not cookie:
            return None
        try:
            data, signed_at = self._serializer().loads(cookie, max_age=self.session_seconds, return_timestamp=True)
        except BadData:
            return None
        sid = data.get("sid") if isinstance(data, dict) else None
        return (sid, signed_at.timestamp()) if isinstance(sid, str) and sid else None

    def session_valid(self, cookie: str) -> bool:
        session = self._session(cookie)
        return session is not None and not self.sign_outs.revoked(session[0])

    def sign_out(self, cookie: str) -> None:
        """Remember the cookie's session as ended, for every worker, until it would have expired."""
        session = self._session(cookie)
        if session is not None:
            self.sign_outs.revoke(session[0], session[1] + self.session_seconds)


def build_sign_in(token: str, storage: Storage, query_log_path: Path) -> SignIn:
    """The sign-in state of one app: the throttle in `storage`; sign-outs in it when it is shared
    between processes, otherwise in SIGN_OUT_FILE beside the query log."""
    shared = not isinstance(storage, MemoryStorage)
    sign_outs: SignOuts = SharedSignOuts(storage) if shared else FileSignOuts(Path(query_log_path).parent / SIGN_OUT_FILE)
    return SignIn(token, sign_outs, SignInThrottle(storage))

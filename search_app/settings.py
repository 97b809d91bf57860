"""The web app's settings rows: the HTTP surface and the gunicorn server (the library's are in kb).

Declared like the library's (`kb.core.settings.setting`), so the same loader validates them at
start and the README table is derived from both.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Mapping
from dataclasses import dataclass

from kb.core import SettingsError, load, setting

# A token people paste, not type: 32 characters of `secrets.token_urlsafe` are ~190 bits, beyond
# guessing even without the sign-in throttle (search_app/signin.py).
ADMIN_TOKEN_MIN_CHARS = 32

# Time, method, path without the query string, protocol, status, bytes, milliseconds.
ACCESS_LOG_FORMAT = '%(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'


@dataclass(frozen=True)
class WebSettings:
    admin_token: str = setting("", "KB_ADMIN_TOKEN", "token for the content team's `/admin/` pages: at least "
                               f"{ADMIN_TOKEN_MIN_CHARS} characters (spaces around it are dropped)", "web.admin",
                               shown_default="*(empty: admin pages off)*")
    rate_limit: str = setting("", "KB_RATE_LIMIT", "per-client rate limit on every route except the probes (`/healthz`, "
                              "`/readyz`), `/metrics` and static files, e.g. `60/minute`; 429 when exceeded", "web.security",
                              shown_default="*(empty: off)*")
    # memory:// is per process (W workers: up to W x the rate); a shared store such as
    # redis://host:6379 makes the limit hold across workers and hosts.
    rate_limit_storage: str = setting("memory://", "KB_RATE_LIMIT_STORAGE",
                                      "where rate-limit and admin sign-in counters live; `memory://` counts per worker "
                                      "process, a shared store such as `redis://host:6379` (needs `redis`) counts across "
                                      "workers and also keeps admin sign-outs (otherwise in a file beside `KB_QUERY_LOG`)",
                                      "web.security")
    trusted_proxies: int = setting(0, "KB_TRUSTED_PROXIES",
                                   "reverse proxies in front of the app whose `X-Forwarded-For`/`-Proto` are trusted "
                                   "for the client address (rate limit); 0 trusts none", "web.security", low=0)
    max_request_bytes: int = setting(16_384, "KB_MAX_REQUEST_BYTES", "largest request body accepted (413 above it)",
                                     "web.security", low=0)
    # What an operations team expects of a metrics endpoint: on, on the port it already scrapes,
    # and not readable by everyone (request counts and index versions are nobody else's business).
    metrics: str = setting("admin", "KB_METRICS",
                           "Prometheus metrics at `/metrics`: `admin` needs the admin token (`Authorization: Bearer`; "
                           "off while `KB_ADMIN_TOKEN` is empty), `open` serves them to anyone who reaches the port, "
                           "`off` removes the route (docs/DEPLOY.md)", "web.metrics", choices=("admin", "open", "off"))
    metrics_bind: str = setting("", "KB_METRICS_BIND",
                                "also serve the metrics of every gunicorn worker, without a token, on this second "
                                "address (e.g. `127.0.0.1:9100`), from the gunicorn master; for a port only the "
                                "monitoring network reaches", "web.metrics", shown_default="*(empty: none)*")
    bind: str = setting("127.0.0.1:5000", "KB_BIND", "address `make run` / `kb-serve` (gunicorn) listens on", "web.server")
    workers: int = setting(0, "KB_WORKERS", "gunicorn worker processes (each loads the model and index once, ~0.7 GB; "
                           "one per core measured twice the throughput of one worker, docs/BENCHMARKS.md)",
                           "web.server", low=0, shown_default="*(cores, at most 4)*")
    threads: int = setting(8, "KB_THREADS", "threads per gunicorn worker", "web.server", low=1)
    worker_timeout: int = setting(60, "KB_WORKER_TIMEOUT", "seconds before gunicorn restarts a stuck worker",
                                  "web.server", low=1)
    torch_threads: int = setting(0, "KB_TORCH_THREADS", "PyTorch threads per gunicorn worker", "web.server", low=0,
                                 shown_default="*(cores ÷ workers)*")
    access_log: str = setting("", "KB_ACCESS_LOG", "gunicorn access log file, `-` for stderr", "web.server",
                              shown_default="*(off)*")
    # Never who asked: no client address (%(h)s), user agent (%(a)s), referrer (%(f)s, which holds
    # the previous search) or query string (%(r)s, %(q)s, %(U)s is the path alone) unless asked for.
    access_log_format: str = setting(ACCESS_LOG_FORMAT, "KB_ACCESS_LOG_FORMAT",
                                     "gunicorn access log line; the default has no client address, user agent, "
                                     "referrer or query string (add `%(h)s`, `%(a)s`, `%(f)s`, `%(q)s` to log them)",
                                     "web.server")

    def __post_init__(self) -> None:
        """Strip the admin token and refuse a short one, however the settings were made.

        Stripped because a token of spaces must mean "off", not a blank password anyone can type;
        refused below ADMIN_TOKEN_MIN_CHARS so a guessable token never reaches a running app.
        The message names the variable and its length, never the token itself.
        """
        _check_address(type(self), "metrics_bind", self.metrics_bind)
        token = self.admin_token.strip()
        object.__setattr__(self, "admin_token", token)
        if token and len(token) < ADMIN_TOKEN_MIN_CHARS:
            name = _env_name(type(self), "admin_token")
            raise SettingsError(
                f"invalid settings: {name} is {len(token)} characters long; it must be at least "
                f"{ADMIN_TOKEN_MIN_CHARS} (or empty to turn the admin pages off). Make one with "
                f"`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "WebSettings":
        return load(cls, environ)

    def replace(self, **changes) -> "WebSettings":
        return dataclasses.replace(self, **changes)

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """KB_METRICS_BIND as (host, port), or None when empty."""
        if not self.metrics_bind:
            return None
        host, _, port = self.metrics_bind.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)

    @property
    def worker_count(self) -> int:
        """One worker per core, at most 4 (one model copy each), unless KB_WORKERS says otherwise."""
        return self.workers or min(multiprocessing.cpu_count(), 4)

    @property
    def torch_thread_count(self) -> int:
        """PyTorch threads per worker: the cores shared out among the workers, unless set."""
        return self.torch_threads or max(1, multiprocessing.cpu_count() // self.worker_count)


def _check_address(cls: type, field_name: str, value: str) -> None:
    """Refuse an address that is not HOST:PORT (or :PORT) with a port from 1 to 65535."""
    if not value:
        return
    _, colon, port = value.rpartition(":")
    if not (colon and port.isdigit() and 1 <= int(port) <= 65_535):
        raise SettingsError(f"invalid settings: {_env_name(cls, field_name)}={value!r} is not HOST:PORT "
                            f"(e.g. 127.0.0.1:9100)")


def _env_name(cls: type, field_name: str) -> str:
    """The variable a field is read from, as its settings row declares it."""
    return next(f.metadata["setting"].env for f in dataclasses.fields(cls) if f.name == field_name)

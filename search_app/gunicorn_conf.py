"""gunicorn settings for `make serve`, sized for a two-core machine; override with environment.

    gunicorn --config search_app/gunicorn_conf.py search_app.wsgi:app

Each worker imports `search_app.wsgi`, which builds the app with WARM_UP: the model and the index
are loaded once per worker and one search runs before the worker takes traffic. Requests are
served from threads (gthread); queries that arrive together share one model call
(`kb.models.sentence_transformer.QueryBatcher`). PyTorch's own thread pool is sized so that workers × PyTorch
threads matches the cores: more threads than cores only adds switching (docs/BENCHMARKS.md).
"""
import multiprocessing
import os

CORES = multiprocessing.cpu_count()

wsgi_app = "search_app.wsgi:app"  # used when the command line names no app
bind = os.environ.get("KB_BIND", "127.0.0.1:5000")
# One worker per core, each with a one-thread PyTorch pool, and 8 request threads per worker.
# Measured on an idle two-core machine, 8 keep-alive clients for 60 s (docs/BENCHMARKS.md):
# 2 workers x 8 threads 126 requests/s, p95 84 ms; 2 x 4 threads 107/s, p95 117 ms (keep-alive
# connections do not split evenly, and a worker with more connections than threads queues them);
# 1 worker x 4 threads with 2 PyTorch threads 54-63/s, p95 153-193 ms (one process serialises
# the model calls and the Python around them on one interpreter lock). Memory: one model copy,
# ~0.7 GB, per worker: at most 4 by default, so a many-core host does not load a model per core.
workers = int(os.environ.get("KB_WORKERS", min(CORES, 4)))
threads = int(os.environ.get("KB_THREADS", 8))
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

"""gunicorn settings for `make serve`, sized for a two-core machine; override with environment.

Each worker loads the model and the index once (create_app with WARM_UP) and then serves requests
from threads; the model releases the GIL while encoding, so threads overlap well.
"""
import multiprocessing
import os

bind = os.environ.get("KB_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("KB_WORKERS", max(1, min(2, multiprocessing.cpu_count()))))
threads = int(os.environ.get("KB_THREADS", 4))
worker_class = "gthread"
timeout = int(os.environ.get("KB_WORKER_TIMEOUT", 60))
graceful_timeout = 30
keepalive = 5
preload_app = False  # each worker loads its own model: torch does not survive fork well
raw_env = ["FLASK_DEBUG=0"]
accesslog = os.environ.get("KB_ACCESS_LOG", None)
errorlog = "-"


def post_worker_init(worker):
    worker.log.info("worker %s ready", worker.pid)

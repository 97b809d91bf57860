"""The application factory: configuration, the shared index, blueprints and error handlers."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from flask import Flask

from kb import LiveIndex, Settings
from kb.insight import QueryLog
from search_app.readiness import Readiness
from search_app.settings import WebSettings


def create_app(config: dict | None = None) -> Flask:
    """Build the app. `config` overrides Flask config keys; `INDEX_DIR` picks the index folder.

    `SETTINGS` (a `kb.Settings`) and `WEB_SETTINGS` (a `search_app.settings.WebSettings`) may be
    passed in config instead of reading them from the environment; either is read once, here.
    """
    app = Flask(__name__)
    settings: Settings = (config or {}).get("SETTINGS") or Settings.from_env()
    web: WebSettings = (config or {}).get("WEB_SETTINGS") or WebSettings.from_env()
    app.config.update(
        INDEX_DIR=str(settings.index_dir),
        MAX_CONTENT_LENGTH=web.max_request_bytes,
        JSON_SORT_KEYS=False,
        WARM_UP=False,
    )
    app.config.update(config or {})
    app.config["SETTINGS"] = settings
    app.config["WEB_SETTINGS"] = web
    app.json.sort_keys = False

    live = app.config.get("LIVE_INDEX") or LiveIndex(Path(app.config["INDEX_DIR"]), settings)
    app.extensions["kb_index"] = live

    from search_app import admin, api, errors, metrics, openapi, pages, readiness, security
    from search_app.querylog_hook import EXTENSION as QUERY_LOG

    # The query log: rows are written by a background thread, never on the request path. Its store
    # (KB_QUERY_LOG: a SQLite path or a postgresql:// URL) is checked here: a bad one stops the app.
    app.extensions[QUERY_LOG] = app.config.get("QUERY_LOG") or QueryLog.from_settings(settings)
    app.extensions[QUERY_LOG].start()  # purges rows past retention at start-up; no-op when disabled

    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(readiness.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(admin.bp)
    errors.register(app)
    metrics.register(app)  # before the request checks, so the requests they refuse are timed too
    security.register(app)  # headers, request limits, rate limit, debug off

    ready = app.extensions[readiness.EXTENSION] = readiness.Readiness(warm_up_expected=bool(app.config["WARM_UP"]))
    if app.config["WARM_UP"] == "background":  # `make dev`: serve at once, warm in the background
        threading.Thread(target=_warm_up, args=(live, ready), name="kb-warm-up", daemon=True).start()
    elif app.config["WARM_UP"]:  # gunicorn workers: warm before taking traffic
        _warm_up(live, ready)
    return app


def _warm_up(live: LiveIndex, ready: Readiness) -> None:
    """Load the models and the index and run one query, so the first real requests are not slow;
    /readyz answers 200 from then on. Sentences need no warming: their vectors were stored when
    the index was built."""
    from search_app.errors import public_index_problem

    log = logging.getLogger(__name__)
    try:
        index = live.warm_up()
        log.info("warmed up index %s", index.version)
    except Exception as exc:  # the app still starts and reports the problem on /healthz and /readyz
        log.error("warm-up failed: %s", exc)
        ready.failed(public_index_problem(exc))
        return
    ready.warmed()

"""Errors: JSON under /api/ (and the probes /healthz, /readyz), readable pages elsewhere; never a stack trace."""
from __future__ import annotations

import logging
import re

from flask import Flask, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from kb import IndexNotFoundError, IndexProblem
from search_app.params import BadParameter

log = logging.getLogger(__name__)

INDEX_NOT_FOUND = "index not found: build it with `python -m indexer build`"
INDEX_UNUSABLE = "index unavailable: rebuild it with `python -m indexer build --force` (the server log says why)"
# The folders of an absolute path ("/srv/kb/var/index/versions/v2/"), not a URL's "//host/" part.
# Outside /api/, the paths that programs read: their errors are JSON too (/metrics is for Prometheus).
JSON_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_FOLDERS = re.compile(r"(?<![\w.~:/-])/(?:[^\s'\"`/]+/)+")


def public_index_problem(exc: Exception) -> str:
    """What a visitor may read about an index that cannot be served: what to do, never where the
    files are (the server log has the full message)."""
    if isinstance(exc, IndexNotFoundError) or "No index at" in str(exc):
        return INDEX_NOT_FOUND
    return INDEX_UNUSABLE


def without_folders(message: str | None) -> str | None:
    """`message` with each absolute path cut to its last part (`dense.faiss`, not `/srv/.../dense.faiss`)."""
    return None if message is None else _FOLDERS.sub("", message)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in JSON_PATHS


def error_response(status: int, code: str, message: str):
    if wants_json():
        response = jsonify({"error": {"code": code, "message": message}})
        response.status_code = status
        return response
    return render_template("error.html", status=status, code=code, message=message), status


def register(app: Flask) -> None:
    @app.errorhandler(BadParameter)
    def bad_parameter(exc: BadParameter):
        return error_response(400, exc.code, exc.message)

    @app.errorhandler(IndexProblem)
    def index_unavailable(exc: IndexProblem):
        log.error("index unavailable: %s", exc)
        return error_response(503, "index_unavailable", public_index_problem(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        response = make_response(error_response(exc.code or 500, code, exc.description or exc.name))
        # Keep the headers the status needs (Allow on 405, Retry-After, WWW-Authenticate); our body
        # replaces Werkzeug's, so its Content-Type does not carry over.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s", request.path)
        return error_response(500, "internal_error", "Something went wrong on our side; the error was logged.")

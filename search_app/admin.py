"""Content-team pages behind a token: topic coverage and what people ask.

Access. `KB_ADMIN_TOKEN` unset or empty: every /admin route answers 404, as if it did not exist.
Set: a request needs `Authorization: Bearer <token>` or the session cookie that /admin/login sets
after a person types the token into its form. Both are compared with `hmac.compare_digest`
(constant time). The cookie holds an HMAC of the token, not the token; it is HttpOnly,
SameSite=Strict, limited to /admin and Secure over HTTPS; changing the token logs everyone out.
Wrong or missing credentials: 401 (JSON for programs, the login form for browsers).

Pages. /admin/coverage: kb.insight.coverage over the topics file (corpus/topics.yaml in the corpus folder),
a sorted table and an SVG bar chart. /admin/questions: kb.insight.question_report over the query log.
Every table exports as CSV with `?format=csv` (and `&table=` on the questions page).
"""
from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import timedelta
from pathlib import Path

from flask import (Blueprint, Response, abort, current_app, jsonify, make_response, redirect, render_template,
                   request, url_for)

from kb.answer import AnswerThresholds, thresholds
from kb.core import Settings
from kb.insight import TABLES, CoverageReport, QuestionReport, TopicsFileError, coverage_report, load_topics
from kb.insight import MAX_GROUPED_WORDINGS, PeriodCounts, QueryLogUnavailable, question_report, utc_now
from search_app.charts import horizontal_bar_chart
from search_app.params import choice_param, int_param
from search_app.querylog_hook import query_log
from search_app.views import current_index

bp = Blueprint("admin", __name__, url_prefix="/admin")

COOKIE = "kb_admin"
COOKIE_MAX_AGE = 8 * 3600
DAYS_DEFAULT, DAYS_MAX = 30, 3650
_cache_lock = threading.Lock()


# ---- access --------------------------------------------------------------------------------

def _token() -> str:
    return current_app.config["WEB_SETTINGS"].admin_token or ""


def _cookie_value(token: str) -> str:
    """What the session cookie holds: proof of the token, not the token itself."""
    return hmac.new(token.encode("utf-8"), b"kb-admin-session-v1", hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def authorised(token: str) -> bool:
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        return scheme.lower() == "bearer" and _same(value.strip(), token)
    cookie = request.cookies.get(COOKIE)
    return bool(cookie) and _same(cookie, _cookie_value(token))


def _wants_html() -> bool:
    if request.headers.get("Authorization") or request.args.get("format") in ("csv", "json"):
        return False
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def _unauthorised(message: str = "This page needs the admin token.") -> Response:
    if _wants_html():
        response = make_response(render_template("admin_login.html", next=_safe_next(request.full_path),
                                                 error=None), 401)
    else:
        response = jsonify({"error": {"code": "unauthorized", "message": message}})
        response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="kb-admin"'
    return response


@bp.before_request
def require_token():
    token = _token()
    if not token:
        abort(404)
    if request.endpoint == "admin.login":
        return None
    if not authorised(token):
        return _unauthorised()
    return None


@bp.after_request
def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _safe_next(target: str | None) -> str:
    """Only a path inside /admin/ (no scheme, no host, no //) may follow a login."""
    target = (target or "").rstrip("?")
    if target.startswith("/admin/") and not target.startswith("//") and "\\" not in target and target != "/admin/login":
        return target
    return url_for("admin.coverage")


@bp.route("/login", methods=["GET", "POST"])
def login():
    token = _token()
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("admin_login.html", next=next_url, error=None)
    given = request.form.get("token", "")
    if not _same(given, token):
        response = make_response(render_template("admin_login.html", next=next_url, error="That token is not right."), 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="kb-admin"'
        return response
    response = redirect(next_url, code=303)
    response.set_cookie(COOKIE, _cookie_value(token), max_age=COOKIE_MAX_AGE, path="/admin", httponly=True,
                        samesite="Strict", secure=request.is_secure)
    return response


@bp.post("/logout")
def logout():
    response = redirect(url_for("admin.login"), code=303)
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="Strict", secure=request.is_secure)
    return response


# ---- coverage ------------------------------------------------------------------------------

def topics_path() -> Path:
    configured = current_app.config.get("ADMIN_TOPICS_FILE")
    if configured:
        return Path(configured)
    settings: Settings = current_app.config["SETTINGS"]
    return settings.corpus_dir / "topics.yaml"


def cached_coverage(index, path: Path) -> CoverageReport:
    """The report for this index version and this state of the topics file (scoring costs ~1 s)."""
    stat = path.stat()
    key = (index.version, str(path), stat.st_mtime_ns, stat.st_size)
    return _cached("kb_admin_coverage", key, lambda: coverage_report(index, load_topics(path)))


def _cached(name: str, key: tuple, compute):
    """One remembered report per page, recomputed when its key (index, inputs) changes."""
    cache = current_app.extensions.setdefault(name, {})
    with _cache_lock:
        if cache.get("key") == key:
            return cache["report"]
    report = compute()
    with _cache_lock:
        cache.update(key=key, report=report)
    return report


@bp.get("/coverage")
def coverage():
    index = current_index()
    fmt = choice_param(request.args, "format", ("html", "csv", "json"), "html")
    path = topics_path()
    try:
        report = cached_coverage(index, path)
    except (TopicsFileError, OSError) as exc:
        if fmt != "html":
            return jsonify({"error": {"code": "topics_unavailable", "message": str(exc)}}), 409
        return render_template("admin_coverage.html", report=None, error=str(exc), topics_file=path, chart=None), 409
    if fmt == "csv":
        return _csv(report.to_csv(), f"coverage-{report.index_version}.csv")
    if fmt == "json":
        return jsonify(report.as_dict())
    by_score = sorted(report.topics, key=lambda t: -t.answer_score)
    cuts = report.thresholds
    chart = horizontal_bar_chart(
        [(t.topic.topic, t.answer_score, t.verdict) for t in by_score],
        [(f"thin {cuts.thin_margin:.2f}", cuts.thin_margin, "cut-thin"), (f"covered {cuts.margin:.2f}", cuts.margin, "cut-covered")],
    )
    return render_template("admin_coverage.html", report=report, error=None, topics_file=path, chart=chart)


# ---- questions -----------------------------------------------------------------------------

def cached_questions(index, days: int, cuts: AnswerThresholds) -> QuestionReport:
    """Rebuilt when a row is written or deleted (the log's oldest and newest ids), the period or
    the index changes; CSV exports reuse the page's work. The database counts; no row is read."""
    qlog = query_log()
    since = utc_now() - timedelta(days=days)
    key = (index.version, days, since.date().isoformat(), qlog.bounds() if qlog is not None else None)

    def compute() -> QuestionReport:
        counts = qlog.period(since, cuts, MAX_GROUPED_WORDINGS) if qlog is not None else PeriodCounts.empty()
        return question_report(index, counts, cuts, since=since.isoformat(timespec="seconds"))

    return _cached("kb_admin_questions", key, compute)


@bp.get("/questions")
def questions():
    index = current_index()
    fmt = choice_param(request.args, "format", ("html", "csv"), "html")
    days = int_param(request.args, "days", DAYS_DEFAULT, 1, DAYS_MAX)
    table = choice_param(request.args, "table", TABLES, "popular")
    cuts = thresholds(index)
    qlog = query_log()
    try:
        report = cached_questions(index, days, cuts)
    except QueryLogUnavailable as exc:
        if fmt != "html":
            return jsonify({"error": {"code": "query_log_unavailable", "message": str(exc)}}), 503
        return render_template("admin_questions.html", report=None, error=str(exc), days=days, cuts=cuts,
                               tables=TABLES, logging_on=bool(qlog and qlog.enabled), retention_days=None), 503
    if fmt == "csv":
        return _csv(report.table_csv(table), f"questions-{table}-{days}d.csv")
    return render_template(
        "admin_questions.html", report=report, error=None, days=days, cuts=cuts, tables=TABLES,
        logging_on=bool(qlog and qlog.enabled), retention_days=qlog.retention_days if qlog else None,
    )


def _csv(text: str, filename: str) -> Response:
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

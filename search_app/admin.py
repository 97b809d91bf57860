"""Content-team pages behind a token: topic coverage and what people ask.

Access. `KB_ADMIN_TOKEN` unset, empty or blank: every /admin route answers 404, as if it did not
exist; a token shorter than 32 characters stops the app at start (search_app/settings.py). Set: a
request needs `Authorization: Bearer <token>` or the session cookie that /admin/login sets after a
person types the token into its form. Tokens are compared with `hmac.compare_digest` (constant
time). Wrong or missing credentials: 401 (JSON for programs, the login form for browsers).

Sessions (search_app/signin.py has the details and the reasons). The cookie is a signed,
timestamped session id (itsdangerous, keyed by the token), not the token and not a fixed HMAC of
it: it stops working after 8 hours, when the token changes, and when its holder signs out. Sign-out
is remembered on the server where every worker looks, because a signed cookie cannot be recalled:
in KB_RATE_LIMIT_STORAGE when that is a shared store (all workers and replicas), otherwise in a
SQLite file beside the query log (all workers on the host). A list in each worker's memory was
rejected: the next request may land on a worker that never heard of the sign-out. The cookie is
HttpOnly, SameSite=Strict, limited to /admin and Secure over HTTPS.

Guessing. Wrong tokens, in the form or a Bearer header, are counted per client address whatever
KB_RATE_LIMIT says: after 5, each further one locks the address out twice as long (429 with
Retry-After), up to 15 minutes. After sign-in the browser goes to `next` only when it is a path
under /admin/ once `.` and `..` are resolved, with no scheme, host, backslash or control character;
anything else goes to /admin/coverage (no open redirect, no header injection).

Pages. /admin/coverage: kb.insight.coverage over the topics file (corpus/topics.yaml in the corpus folder),
a sorted table and an SVG bar chart; below it, stale content (kb.insight.staleness: old pages, pages whose
sources changed since, dated facts) and the last builds (kb.insight.build_history). /admin/questions: kb.insight.question_report over the query log.
Every table exports as CSV with `?format=csv` (and `&table=` on the questions page).
"""
from __future__ import annotations

import hmac
import posixpath
import re
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from flask import (Blueprint, Response, abort, current_app, jsonify, make_response, redirect, render_template,
                   request, url_for)
from flask.blueprints import BlueprintSetupState
from flask_limiter.util import get_remote_address

from kb.answer import AnswerThresholds, thresholds
from kb.core import Settings
from kb.insight import TABLES, CoverageReport, QuestionReport, TopicsFileError, coverage_report, load_topics
from kb.insight import StalenessReport, build_history, read_source_events, staleness_report
from kb.insight import MAX_GROUPED_WORDINGS, PeriodCounts, QueryLogUnavailable, question_report, utc_now
from search_app.charts import horizontal_bar_chart
from search_app.params import choice_param, int_param
from search_app.querylog_hook import query_log
from search_app.security import limits_storage
from search_app.signin import SESSION_SECONDS, SignIn, build_sign_in
from search_app.views import current_index

bp = Blueprint("admin", __name__, url_prefix="/admin")

COOKIE = "kb_admin"
EXTENSION = "kb_admin_sign_in"
DAYS_DEFAULT, DAYS_MAX = 30, 3650
_cache_lock = threading.Lock()
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# ---- access --------------------------------------------------------------------------------

@bp.record_once
def _set_up_sign_in(state: BlueprintSetupState) -> None:
    """One sign-in state per app, made at start so a bad KB_RATE_LIMIT_STORAGE stops the app."""
    web = state.app.config["WEB_SETTINGS"]
    if web.admin_token:
        settings: Settings = state.app.config["SETTINGS"]
        state.app.extensions[EXTENSION] = build_sign_in(web.admin_token, limits_storage(web.rate_limit_storage),
                                                        settings.query_log_path)


def _token() -> str:
    return current_app.config["WEB_SETTINGS"].admin_token or ""


def _sign_in() -> SignIn:
    return current_app.extensions[EXTENSION]


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _wants_html() -> bool:
    if request.headers.get("Authorization") or request.args.get("format") in ("csv", "json"):
        return False
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


def _refuse(status: int, code: str, message: str, retry_after: int = 0) -> Response:
    """401 or 429: the login form for browsers (saying `message` after a sign-in attempt), the JSON
    error shape for programs."""
    on_login = request.endpoint == "admin.login"
    if on_login or _wants_html():
        next_url = _safe_next(request.values.get("next") if on_login else request.full_path)
        response = make_response(render_template("admin_login.html", next=next_url, error=message if on_login else None,
                                                 hours=SESSION_SECONDS // 3600), status)
    else:
        response = jsonify({"error": {"code": code, "message": message}})
        response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="kb-admin"'
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _check_token(given: str, token: str) -> Response | None:
    """None when `given` is the token; otherwise the refusal, counting the wrong attempt. While the
    address is locked out even the right token is refused, so guessing cannot go on meanwhile."""
    address, throttle = get_remote_address(), _sign_in().throttle
    wait = throttle.wait(address)
    if wait:
        return _refuse(429, "too_many_attempts", f"Too many wrong tokens from your address; try again in {wait} s.",
                       retry_after=wait)
    if _same(given, token):
        throttle.succeeded(address)
        return None
    throttle.failed(address)
    return _refuse(401, "unauthorized", "That token is not right.")


@bp.before_request
def require_token():
    token = _token()
    if not token:
        abort(404)
    if request.endpoint == "admin.login":
        return None
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        return _check_token(value.strip() if scheme.lower() == "bearer" else "", token)
    if _sign_in().session_valid(request.cookies.get(COOKIE, "")):
        return None
    return _refuse(401, "unauthorized", "This page needs the admin token.")


@bp.after_request
def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _safe_next(target: str | None) -> str:
    """A path under /admin/ (`.` and `..` resolved, its query kept) to go to after sign-in, else
    /admin/coverage: never another site, never a way out of /admin, never a header break."""
    fallback = url_for("admin.coverage")
    target = target or ""
    if _CONTROL.search(target) or "\\" in target:
        return fallback
    parts = urlsplit(target)
    path = unquote(parts.path)  # %2e%2e is `..` to a browser, %0d a CR once decoded
    if parts.scheme or parts.netloc or _CONTROL.search(path) or "\\" in path or not path.startswith("/"):
        return fallback
    path = posixpath.normpath(path)
    if not path.startswith("/admin/") or path in ("/admin/login", "/admin/logout"):
        return fallback
    query = quote(parts.query, safe="=&;%+/?:@!$'()*,~") if parts.query else ""
    return quote(path, safe="/") + (f"?{query}" if query else "")


@bp.route("/login", methods=["GET", "POST"])
def login():
    token = _token()
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("admin_login.html", next=next_url, error=None, hours=SESSION_SECONDS // 3600)
    refused = _check_token(request.form.get("token", "").strip(), token)
    if refused is not None:
        return refused
    response = redirect(next_url, code=303)
    response.set_cookie(COOKIE, _sign_in().new_session(), max_age=SESSION_SECONDS, path="/admin", httponly=True,
                        samesite="Strict", secure=request.is_secure)
    return response


@bp.post("/logout")
def logout():
    """End the session for every worker (a Bearer request has none), then drop the cookie."""
    _sign_in().sign_out(request.cookies.get(COOKIE, ""))
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


def cached_staleness(index) -> StalenessReport:
    """Stale content for this index version, today, and this state of the refresh's events file."""
    settings: Settings = current_app.config["SETTINGS"]
    events_file = settings.refresh_dir / "source_events.json"
    try:
        stat = events_file.stat()
        seen = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        seen = None
    today = utc_now().date()
    key = (index.version, str(events_file), seen, today, settings.stale_after_days, settings.stale_fact_after_years)
    return _cached("kb_admin_staleness", key, lambda: staleness_report(
        index.store.documents(), read_source_events(settings.refresh_dir), today,
        stale_after_days=settings.stale_after_days, fact_after_years=settings.stale_fact_after_years))


def keeping_it_true(index) -> dict:
    """The coverage page's sections below the topics: stale content and the last five builds."""
    folder = index.version_dir
    builds = build_history(folder.parents[1])[:5] if folder.parent.name == "versions" else []
    return {"stale": cached_staleness(index), "builds": builds}


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
        return render_template("admin_coverage.html", report=None, error=str(exc), topics_file=path, chart=None,
                               **keeping_it_true(index)), 409
    if fmt == "csv":
        return _csv(report.to_csv(), f"coverage-{report.index_version}.csv")
    if fmt == "json":
        return jsonify({**report.as_dict(), "staleness": cached_staleness(index).as_dict()})
    by_score = sorted(report.topics, key=lambda t: -t.answer_score)
    cuts = report.thresholds
    chart = horizontal_bar_chart(
        [(t.topic.topic, t.answer_score, t.verdict) for t in by_score],
        [(f"thin {cuts.thin_margin:.2f}", cuts.thin_margin, "cut-thin"), (f"covered {cuts.margin:.2f}", cuts.margin, "cut-covered")],
    )
    return render_template("admin_coverage.html", report=report, error=None, topics_file=path, chart=chart,
                           **keeping_it_true(index))


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

"""Hostile input against every route and every parameter: the app answers 2xx or 4xx, never 5xx.

Two kinds of hostile input: requests (most of this file), and content — pages an attacker wrote,
crawled and indexed beside the real corpus (tests/fixtures/hostile_corpus.py; the last part of
this file), which must neither break a route nor slow it, forge a citation or give a document an
id that climbs a path.

The routes come from the app's own url_map, so a route someone adds later is attacked too (with
the parameter names of FALLBACK_PARAMS until it is listed in ROUTE_PARAMS). Every response is
checked the same way (`assert_well_formed`): no 5xx; the security headers; JSON with the error
shape under /api/ (and for any JSON error); a readable HTML page elsewhere, with no stack trace and
nothing from the input able to run in a browser (only our own /static script, no inline script or
style, no event-handler attribute, no javascript: link).

Real model and real corpus (session fixtures). Most cases end in validation and cost a few
milliseconds; the ones that reach a search are few and reuse the model's query cache.
"""
from __future__ import annotations

import itertools
import json
import posixpath
import re
import tempfile
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest
from bs4 import BeautifulSoup
from flask.testing import FlaskClient

from indexer.loaders import DOC_ID as VALID_DOC_ID
from kb.core.settings import Settings
from kb.ingest.chunking import max_chunk_chars
from kb.ingest.sentences import MAX_SENTENCE_CHARS
from kb.search.live import LiveIndex
from kb.index.layout import verify_checksums
from search_app import create_app
from search_app.settings import WebSettings
from search_app.security import MAX_URL_BYTES, SECURITY_HEADERS
from tests.fixtures.hostile_corpus import (DEEP_TOPIC, FORGED_HOST, FORGED_ORGANISATION, FORGED_TOPIC, LOADED, PAGES,
                                           PUNCTUATION_TOPIC, QUESTION_RUN, SKIPPED, build_hostile_index,
                                           write_hostile_crawl)

TOKEN = "hostile-suite-admin-token-7c2d-9e41b0a6"  # KB_ADMIN_TOKEN needs at least 32 characters
DOC_ID = "medcom"
PATH_VALUES = {"doc_id": DOC_ID, "filename": "style.css"}
# The parameters each endpoint reads; a route missing here gets FALLBACK_PARAMS.
ROUTE_PARAMS: dict[str, tuple[str, ...]] = {
    "api.search": ("q", "k", "mode", "source_type", "organisation"),
    "pages.search_page": ("q", "k", "mode", "source_type", "organisation"),
    "api.talking_points": ("topic", "n", "source_type", "organisation"),
    "pages.talking_points_page": ("topic", "n", "source_type", "organisation"),
    "api.document": (),
    "pages.document_page": ("chunk", "start", "end"),
    "api.healthz": (),
    "static": (),
    "admin.login": ("next", "token"),
    "admin.logout": ("next",),
    "admin.coverage": ("format",),
    "admin.questions": ("format", "days", "table"),
}
FALLBACK_PARAMS = ("q", "topic", "k", "n", "mode", "format", "days", "source_type", "organisation", "page")
UNKNOWN_PARAM = "utm_hostile"

PAYLOADS: dict[str, str] = {
    "empty": "",
    "whitespace": " \t\r\n ",
    "10000-chars": "x" * 10_000,
    "nul": "registry\x00",
    "control-chars": "\x01\x08\x1b[2J\x7f",
    "emoji": "🏥💉🧬 ❤️",
    "danish": "Sundhedsvæsenets Øresund",
    "bidi-zero-width": "\u202eregistry\u200b\ufeff",
    "fts-quote": '"registry',
    "fts-star": "regist*",
    "fts-near": "NEAR(patient registry, 2)",
    "fts-operators": "-registry AND title:patient OR ^x",
    "sql-drop": "'; DROP TABLE chunks;--",
    "sql-or": "x' OR 1=1 --",
    "html-script": "<script>alert('xss')</script>",
    "html-attribute": '"><img src=x onerror=alert(1)>',
    "javascript-url": "javascript:alert(1)",
    "huge-number": "9" * 5_000,
    "negative": "-1",
    "float": "2.5",
    "hex": "0x1f",
    "sign-soup": "+-5",
    "arabic-digit": "\u0663",
    "path-traversal": "../../../etc/passwd",
    "percent-literal": "%zz%",
}
MARKUP = ("<script", "<img", "onerror=")


def _route_table() -> list[tuple[str, str, frozenset[str]]]:
    """Every route of a freshly made app (nothing is opened), read when the tests are collected."""
    s = Settings(index_dir=Path(tempfile.gettempdir()) / "kb-hostile-routes-unused", query_log_enabled=False)
    app = create_app({"TESTING": True, "SETTINGS": s, "LIVE_INDEX": LiveIndex(s.index_dir, s)})
    return sorted((r.rule, r.endpoint, frozenset(r.methods)) for r in app.url_map.iter_rules())


ROUTES = _route_table()
# Admin routes are attacked twice: with no token configured (they must not exist) and with a token
# configured but no credentials sent (they must refuse).
TARGETS = [("public", *r) for r in ROUTES] + [("admin", *r) for r in ROUTES if r[1].startswith("admin.")]
TARGET_IDS = [f"{kind}:{rule}" for kind, rule, _, _ in TARGETS]
WITH_PATH_ARGS = [t for t in TARGETS if "<" in t[1]]


def concrete_path(rule: str, value: str | None = None) -> str:
    """The rule with each <converter:name> filled in: `value` (percent-encoded) or a real example."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: quote(value if value is not None else PATH_VALUES.get(m[1], "x"),
                                                              safe=""), rule)


def request_method(methods: frozenset[str]) -> str:
    return "GET" if "GET" in methods else sorted(methods - {"HEAD", "OPTIONS"})[0]


# ---- fixtures -------------------------------------------------------------------------------

_addresses = itertools.count(1)


class OwnAddressClient(FlaskClient):
    """A test client with a client address of its own (IPv6 documentation range): the sign-in
    throttle counts wrong tokens per address, and each case here must start with a clean count."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.environ_base["REMOTE_ADDR"] = f"2001:db8::{next(_addresses):x}"


@pytest.fixture(scope="module")
def apps(app, settings, encoders, corpus_index_dir):
    admin_app = create_app({"TESTING": True, "SETTINGS": settings, "WEB_SETTINGS": WebSettings(admin_token=TOKEN),
                            "LIVE_INDEX": LiveIndex(corpus_index_dir, settings, encoders)})
    admin_app.test_client_class = OwnAddressClient
    return {"public": app, "admin": admin_app}


@pytest.fixture(scope="module")
def public(apps):
    return apps["public"].test_client()


# ---- the one check every response passes ----------------------------------------------------

def assert_inert(soup: BeautifulSoup) -> None:
    """Nothing in the page can run: our own external script only, no inline code or style."""
    for script in soup.find_all("script"):
        assert str(script.get("src", "")).startswith("/static/") and not (script.string or "").strip(), script
    assert not soup.find_all("style")
    for tag in soup.find_all(True):
        assert not [a for a in tag.attrs if a.lower().startswith("on") or a.lower() == "style"], tag
        for attr in ("href", "src", "action", "formaction"):
            assert not str(tag.get(attr, "")).strip().lower().startswith(("javascript:", "vbscript:", "data:")), tag


def assert_well_formed(r, path: str, sent: str = "", method: str = "GET") -> None:
    assert 200 <= r.status_code < 300 or 400 <= r.status_code < 500, (r.status_code, path, r.get_data()[:300])
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, (name, path)
    if (path.startswith("/api/") or path == "/healthz") and r.status_code >= 400:
        assert r.mimetype == "application/json", path  # errors under /api/ are JSON, whatever the route returns
    if method == "HEAD":
        return
    body = r.get_data(as_text=True)
    assert "Traceback" not in body and 'File "/' not in body
    if r.mimetype == "application/json":
        data = json.loads(body)
        if r.status_code >= 400:
            err = data["error"]
            assert isinstance(err["code"], str) and err["code"] and isinstance(err["message"], str) and err["message"]
    elif r.mimetype == "text/html":
        soup = BeautifulSoup(body, "html.parser")
        if r.status_code >= 400:  # a readable page that says what is wrong, not a bare status line
            said = soup.find(attrs={"role": "alert"}) or soup.find("h1")
            assert said is not None and said.get_text(strip=True), path
        assert_inert(soup)
        for marker in MARKUP:
            if marker in sent:
                assert sent not in body


# ---- every route x every payload in every parameter -------------------------------------------

@pytest.mark.parametrize("payload_id", list(PAYLOADS))
@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_every_parameter_of_every_route(apps, target, payload_id):
    kind, rule, endpoint, methods = target
    payload = PAYLOADS[payload_id]
    names = ROUTE_PARAMS.get(endpoint, FALLBACK_PARAMS) + (UNKNOWN_PARAM,)
    path, method = concrete_path(rule), request_method(methods)
    values = [(name, payload) for name in names]
    client = apps[kind].test_client()
    if method == "GET":
        r = client.get(path, query_string=values)
    else:
        r = client.open(path, method=method, data=dict(values))
    assert_well_formed(r, path, payload)
    if kind == "public" and endpoint.startswith("admin."):
        assert r.status_code in (404, 413, 414)  # no token configured: the admin pages do not exist
    if kind == "admin" and r.status_code not in (413, 414):
        assert r.status_code in ((200, 401) if endpoint == "admin.login" else (401,))


@pytest.mark.parametrize("payload_id", list(PAYLOADS))
@pytest.mark.parametrize("target", WITH_PATH_ARGS, ids=[f"{k}:{r}" for k, r, _, _ in WITH_PATH_ARGS])
def test_every_path_segment_of_every_route(apps, target, payload_id):
    kind, rule, endpoint, methods = target
    path = concrete_path(rule, PAYLOADS[payload_id])
    r = apps[kind].test_client().open(path, method=request_method(methods))
    assert_well_formed(r, path, PAYLOADS[payload_id])
    assert r.status_code in (400, 404, 414)


# ---- text that reaches the search ---------------------------------------------------------------

FTS_PAYLOADS = ("fts-quote", "fts-star", "fts-near", "fts-operators", "sql-drop", "sql-or")
TEXT_PAYLOADS = ("control-chars", "emoji", "danish", "bidi-zero-width", "html-script", "html-attribute",
                 "javascript-url", "path-traversal", "percent-literal")


@pytest.mark.parametrize("payload_id, mode", [(p, "keyword") for p in FTS_PAYLOADS] + [(p, "hybrid") for p in TEXT_PAYLOADS])
def test_hostile_text_is_searched_as_plain_text(public, corpus_index, payload_id, mode):
    """FTS and SQL syntax is plain text to the keyword index; any text survives the model; the query
    comes back as sent (stripped) and every result is the stored chunk, untouched."""
    payload = PAYLOADS[payload_id]
    r = public.get("/api/search", query_string={"q": payload, "mode": mode, "k": 5})
    assert_well_formed(r, "/api/search", payload)
    assert r.status_code == 200
    body = r.get_json()
    assert body["query"] == payload.strip() and body["mode"] == mode
    for hit in body["results"]:
        assert corpus_index.chunk(hit["chunk_id"]).text == hit["text"]
    if mode == "hybrid":
        assert body["results"]  # dense search always finds nearest passages


def test_fts_syntax_matches_the_words_not_the_operators(public):
    """`"registry` and `regist*` are the word registry (and regist), not a syntax error or a prefix query."""
    quoted = public.get("/api/search", query_string={"q": '"registry', "mode": "keyword", "k": 5}).get_json()
    assert quoted["results"] and all("registr" in h["text"].lower() for h in quoted["results"])
    near = public.get("/api/search", query_string={"q": "NEAR(patient registry, 2)", "mode": "keyword"}).get_json()
    assert near["results"]


@pytest.mark.parametrize("word", ["Sundhedsvæsenets", "Dødsårsagsregisteret", "øresund", "FØDSELSREGISTER"])
def test_danish_letters_find_danish_words(public, word):
    body = public.get("/api/search", query_string={"q": word, "mode": "keyword", "k": 3}).get_json()
    assert body["query"] == word and body["results"]
    top = body["results"][0]
    assert word.lower() in (top["citation"]["title"] + " " + top["text"]).lower()


def test_danish_query_on_the_api_and_the_page(public):
    word = "Dødsårsagsregisteret"
    body = public.get("/api/search", query_string={"q": word, "k": 3}).get_json()
    assert any(word in h["text"] for h in body["results"])
    r = public.get("/", query_string={"q": word, "k": 3})
    assert_well_formed(r, "/", word)
    assert r.status_code == 200 and 'value="Dødsårsagsregisteret"' in r.get_data(as_text=True)
    assert word in BeautifulSoup(r.get_data(as_text=True), "html.parser").find("ol", class_="results").get_text()


@pytest.mark.parametrize("path, name", [("/", "q"), ("/talking-points", "topic"), ("/api/talking-points", "topic")])
def test_markup_in_the_question_is_echoed_as_text(public, path, name):
    payload = PAYLOADS["html-script"] + PAYLOADS["html-attribute"]
    r = public.get(path, query_string={name: payload, "k": 2, "n": 2})
    assert_well_formed(r, path, payload)
    assert r.status_code == 200
    if path.startswith("/api/"):
        assert r.get_json()["topic"] == payload
    else:
        assert "&lt;script&gt;" in r.get_data(as_text=True)


# ---- numbers, modes, filters, repeats -----------------------------------------------------------

INVALID_NUMBERS = ["0", "-1", "1000", "9" * 5_000, "99999999999", "2.5", "0x10", "1e3", "ten", "+-5", "--5",
                   "\u0663", "\uff17", "5 5", "7\n8", "²"]
VALID_NUMBERS = ["7", " 7 ", "+7", "007", ""]
NUMBER_ROUTES = [("/api/search", "k", {"q": "registry"}), ("/", "k", {"q": "registry"}),
                 ("/api/talking-points", "n", {"topic": "patient registry"}),
                 ("/talking-points", "n", {"topic": "patient registry"})]


@pytest.mark.parametrize("value", INVALID_NUMBERS + VALID_NUMBERS)
@pytest.mark.parametrize("path, name, base", NUMBER_ROUTES, ids=[f"{p}:{n}" for p, n, _ in NUMBER_ROUTES])
def test_numeric_parameters(public, path, name, base, value):
    r = public.get(path, query_string={**base, name: value})
    assert_well_formed(r, path, value)
    if value in VALID_NUMBERS:
        assert r.status_code == 200
        if path == "/api/search":
            assert len(r.get_json()["results"]) == (7 if value else 10)
    else:
        assert r.status_code == 400
        if path.startswith("/api/"):
            assert r.get_json()["error"]["code"] == f"invalid_{name}"
        else:
            assert "must be a whole number" in r.get_data(as_text=True)


@pytest.mark.parametrize("value, status", [("7", 200), ("+7", 200), ("0", 400), ("-1", 400), ("9" * 5000, 400),
                                           ("2.5", 400), ("+-5", 400), ("3651", 400)])
def test_admin_days_parameter(apps, value, status):
    r = apps["admin"].test_client().get("/admin/questions", query_string={"days": value, "format": "csv"},
                                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert_well_formed(r, "/admin/questions", value)
    assert r.status_code == status


SEARCH_CASES = [
    ({"mode": "fuzzy"}, 400, "invalid_mode"),
    ({"mode": "HYBRID"}, 400, "invalid_mode"),
    ({"mode": "dense\x00"}, 400, "invalid_mode"),
    ({"mode": ""}, 200, None),
    ({"mode": " keyword "}, 200, None),
    ({"mode": ["keyword", "dense"]}, 400, "repeated_mode"),
    ({"q": ["registry", "registry"]}, 400, "repeated_q"),
    ({"k": ["3", "4"]}, 400, "repeated_k"),
    ({"source_type": "blog"}, 400, "invalid_source_type"),
    ({"source_type": "registry\x00"}, 400, "invalid_source_type"),
    ({"organisation": "Nobody Inc"}, 400, "invalid_organisation"),
    ({"organisation": "x" * 900}, 400, "invalid_organisation"),
    ({"source_type": "{0}"}, 200, None),
    ({"source_type": ["{0}", "{0}"]}, 200, None),
    ({"source_type": ["{0}", "{1}"]}, 200, None),
    ({"source_type": ["{0}", "blog"]}, 400, "invalid_source_type"),
    ({"source_type": ""}, 200, None),
    ({"filter": "anything", "sort": "desc", "page": "-1"}, 200, None),
]


@pytest.mark.parametrize("extra, status, code", SEARCH_CASES)
def test_modes_filters_and_repeats(public, corpus_index, extra, status, code):
    types = corpus_index.source_types()

    def fill(v):
        return [fill(x) for x in v] if isinstance(v, list) else v.format(*types)

    params = {"q": "registry", **{k: fill(v) for k, v in extra.items()}}
    for path in ("/api/search", "/"):
        r = public.get(path, query_string=params)
        assert_well_formed(r, path)
        assert r.status_code == status, (path, params, r.get_data()[:200])
        if path == "/api/search" and code:
            assert r.get_json()["error"]["code"] == code
        if path == "/api/search" and status == 200 and "source_type" in extra and extra["source_type"]:
            wanted = set(fill(extra["source_type"]) if isinstance(extra["source_type"], list) else [fill(extra["source_type"])])
            results = r.get_json()["results"]
            assert results and {h["citation"]["source_type"] for h in results} <= wanted


@pytest.mark.parametrize("path, params, code", [
    ("/api/talking-points", {"topic": ["a", "b"]}, "repeated_topic"),
    ("/api/talking-points", {"topic": "registry", "n": ["2", "3"]}, "repeated_n"),
    ("/api/talking-points", {"topic": " \t "}, "missing_topic"),
    ("/api/talking-points", {"topic": "registry", "source_type": "blog"}, "invalid_source_type"),
    ("/api/search", {}, "missing_q"),
])
def test_talking_points_and_missing_parameters(public, path, params, code):
    r = public.get(path, query_string=params)
    assert_well_formed(r, path)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == code


# ---- bytes the parser has to survive ------------------------------------------------------------

RAW_QUERY_STRINGS = {
    # (what is sent, as bytes; expected status or None for "any 2xx/4xx")
    "invalid-utf8": (b"q=\xff\xfe&topic=\xc3(&k=0&n=0", 400),
    "overlong-utf8": (b"q=\xc0\xaf&k=0&n=0", 400),
    "percent-invalid-utf8": (b"q=%ff%fe&topic=%c3%28&k=0&n=0", None),
    "bad-percent": (b"q=%zz%&topic=%&k=%&n=%2", None),
    "raw-markup": (b'q="><script>alert(1)</script>&topic=<img src=x onerror=alert(1)>&k=0&n=0', None),
    "separators": (b"&&&==&q&=x&;&k=0&n=0", None),
    "nul-names": (b"%00=%00&q%00=1&k=0&n=0", None),
}


@pytest.mark.parametrize("case", list(RAW_QUERY_STRINGS))
@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_raw_query_string_bytes(apps, target, case):
    kind, rule, endpoint, methods = target
    raw, status = RAW_QUERY_STRINGS[case]
    path, method = concrete_path(rule), request_method(methods)
    r = apps[kind].test_client().open(path, method=method, environ_overrides={"QUERY_STRING": raw.decode("latin-1")})
    assert_well_formed(r, path, raw.decode("utf-8", "replace"), method)
    if status is not None:
        assert r.status_code == status
        if r.mimetype == "application/json":
            assert r.get_json()["error"]["code"] == "invalid_encoding"


@pytest.mark.parametrize("raw_path", ["/doc/\xff\xfe", "/api/documents/\xff\x00", "/api/documents/%ff%00",
                                      "/static/\xff", "/\xc3(", "/api/search\xff"])
def test_raw_path_bytes(public, raw_path):
    r = public.get("/", environ_overrides={"PATH_INFO": raw_path})
    assert_well_formed(r, raw_path)
    assert r.status_code == 404


# ---- methods and bodies --------------------------------------------------------------------------

WRONG_METHODS = [(t, m) for t in TARGETS for m in ("POST", "PUT", "DELETE", "PATCH", "TRACE") if m not in t[3]]


@pytest.mark.parametrize("target, method", WRONG_METHODS, ids=[f"{t[0]}:{t[1]}:{m}" for t, m in WRONG_METHODS])
def test_wrong_methods(apps, target, method):
    kind, rule, _, methods = target
    path = concrete_path(rule)
    r = apps[kind].test_client().open(path, method=method, query_string={"q": "registry"}, data={"q": "x"})
    assert_well_formed(r, path, method=method)
    assert r.status_code == 405 and set(r.headers["Allow"].split(", ")) == set(methods)
    if path.startswith("/api/"):
        assert r.get_json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_oversized_bodies_are_413(apps, target):
    kind, rule, _, methods = target
    app = apps[kind]
    limit = app.config["MAX_CONTENT_LENGTH"]
    path, method = concrete_path(rule), request_method(methods)
    r = app.test_client().open(path, method=method, data=b"x" * (limit + 1), content_type="application/octet-stream")
    assert_well_formed(r, path, method=method)
    assert r.status_code == 413
    if path.startswith("/api/"):
        assert r.get_json()["error"]["code"] == "request_entity_too_large"


def test_a_body_at_the_limit_is_not_refused(public, apps):
    limit = apps["public"].config["MAX_CONTENT_LENGTH"]
    r = public.get(f"/api/documents/{DOC_ID}", data=b"x" * limit, content_type="application/octet-stream")
    assert r.status_code == 200 and r.get_json()["doc_id"] == DOC_ID


def test_the_address_limit_is_414_with_the_error_shape(public):
    too_long = public.get("/api/search", query_string={"q": "x" * (MAX_URL_BYTES + 1)})
    assert too_long.status_code == 414 and too_long.get_json()["error"]["code"] == "request_uri_too_long"
    danish = "æ" * 1000  # 6000 bytes percent-encoded: the longest query the contract allows still fits
    assert public.get("/api/search", query_string={"q": danish, "mode": "keyword"}).status_code == 200


@pytest.mark.parametrize("form, kept_next", [
    ({"token": PAYLOADS["html-attribute"], "next": PAYLOADS["html-script"]}, "/admin/coverage"),
    ({"token": "x" * 10_000, "next": "javascript:alert(1)"}, "/admin/coverage"),
    ({"token": TOKEN + "\x00", "next": "//evil.example/admin/"}, "/admin/coverage"),
    ({"token": "", "next": "/admin/questions?days=7"}, "/admin/questions?days=7"),
    ({"token": "æøå🏥", "next": "https://evil.example/"}, "/admin/coverage"),
])
def test_admin_login_form_with_hostile_fields(apps, form, kept_next):
    r = apps["admin"].test_client().post("/admin/login", data=form)
    assert_well_formed(r, "/admin/login", form["token"] + form["next"])
    assert r.status_code == 401
    assert f'name="next" value="{kept_next}"' in r.get_data(as_text=True)  # an unsafe `next` is dropped


NEXT_PAYLOADS = {**PAYLOADS, "dot-dot-out": "/admin/../?q=x", "encoded-dot-dot": "/admin/%2e%2e/x",
                 "crlf": "/admin/coverage\r\nSet-Cookie: kb_admin=forged", "encoded-crlf": "/admin/x%0d%0aX-Evil: 1",
                 "tab": "/admin/\tcoverage", "scheme-relative": "//evil.example/admin/", "backslash": "/admin\\..\\"}


@pytest.mark.parametrize("payload_id", list(NEXT_PAYLOADS))
def test_admin_sign_in_with_a_hostile_next_stays_under_admin(apps, payload_id):
    """The right token with any `next`: a 303 to a path under /admin/, never a 500 or another site."""
    r = apps["admin"].test_client().post("/admin/login", data={"token": TOKEN, "next": NEXT_PAYLOADS[payload_id]})
    assert r.status_code == 303, r.get_data()[:300]
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, name
    location = r.headers["Location"]
    path = unquote(urlsplit(location).path)  # as a browser resolves it: %2e%2e is `..`
    assert path.startswith("/admin/") and posixpath.normpath(path) == path, location
    assert not re.search(r"[\x00-\x20\\]", location) and not urlsplit(location).netloc
    assert [h for h in r.headers.keys() if h.lower() == "set-cookie"] == ["Set-Cookie"]


def test_admin_login_form_with_invalid_utf8(apps):
    r = apps["admin"].test_client().post("/admin/login", data=b"token=\xff\xfe&next=%ff",
                                         content_type="application/x-www-form-urlencoded")
    assert_well_formed(r, "/admin/login")
    assert r.status_code == 401


# ---- hostile content: attackers' pages, crawled and indexed beside the real corpus ----------------

HOSTILE_TOPICS = {"punctuation": PUNCTUATION_TOPIC, "forged": FORGED_TOPIC, "deep": DEEP_TOPIC,
                  "question-run": QUESTION_RUN[:1000]}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, corpus_index_dir, corpus_docs, embedder, settings):
    """The session index plus the hostile crawl (built as `indexer build --source-type agency` would),
    served by a public app and an admin app; and the documents the crawl gave, by fixture page name."""
    root = tmp_path_factory.mktemp("hostile-content")
    crawl = write_hostile_crawl(root / "crawl")
    loaded = build_hostile_index(corpus_docs, root / "crawl", root / "index", embedder, settings, corpus_index_dir)
    by_path = {Path(d.path): d for d in loaded.documents}
    docs = {name: by_path[crawl[name]] for name in LOADED}
    apps = {kind: create_app({"TESTING": True, "SETTINGS": settings, "WEB_SETTINGS": WebSettings(admin_token=TOKEN),
                              "LIVE_INDEX": LiveIndex(root / "index", settings, embedder)}) for kind in ("public", "admin")}
    apps["public"] = create_app({"TESTING": True, "SETTINGS": settings,
                                 "LIVE_INDEX": LiveIndex(root / "index", settings, embedder)})
    return {"apps": apps, "docs": docs, "skipped": loaded.skipped, "crawl": crawl}


def test_hostile_pages_are_indexed_or_skipped_and_listed(hostile):
    assert {p.path for p in hostile["skipped"]} == {hostile["crawl"][name] for name in SKIPPED}
    index = hostile["apps"]["public"].extensions["kb_index"].get()
    assert {d.id for d in hostile["docs"].values()} <= set(index.documents)


def test_no_document_id_climbs_a_path(hostile):
    index = hostile["apps"]["public"].extensions["kb_index"].get()
    ids = list(index.documents)
    assert len(ids) == len(set(ids)) > 28
    assert [i for i in ids if "/" in i or ".." in i or not VALID_DOC_ID.fullmatch(i)] == []


# Every route as the public sees it, and the admin pages that read the index as the content team does.
HOSTILE_TARGETS = [t for t in TARGETS if t[0] == "public"] + [
    ("admin-signed-in", *t[1:]) for t in TARGETS if t[0] == "admin" and t[2] in ("admin.coverage", "admin.questions")]


@pytest.mark.parametrize("topic", list(HOSTILE_TOPICS))
@pytest.mark.parametrize("target", HOSTILE_TARGETS, ids=[f"{k}:{r}" for k, r, _, _ in HOSTILE_TARGETS])
def test_every_route_serves_the_hostile_content(hostile, target, topic):
    """Each route asked about each hostile page (its id in the path, its words in every parameter)."""
    kind, rule, endpoint, methods = target
    app = hostile["apps"]["admin" if kind.startswith("admin") else "public"]
    headers = {"Authorization": f"Bearer {TOKEN}"} if kind == "admin-signed-in" else {}
    doc = hostile["docs"].get(topic, hostile["docs"]["punctuation"])
    path = concrete_path(rule, doc.id) if "<doc_id>" in rule or "<path:doc_id>" in rule else concrete_path(rule)
    params = {name: HOSTILE_TOPICS[topic] for name in ROUTE_PARAMS.get(endpoint, ()) if name in ("q", "topic")}
    method = request_method(methods)
    r = app.test_client().open(path, method=method, query_string=params, headers=headers)
    assert_well_formed(r, path, method=method)
    if kind == "public" and endpoint.startswith("admin."):
        assert r.status_code == 404  # no token configured: the admin pages do not exist
    elif endpoint != "static":
        assert r.status_code == 200, (path, r.status_code)


@pytest.mark.parametrize("route", ["/api/search", "/api/talking-points"])
def test_the_forged_page_cites_its_crawl_not_the_health_data_authority(hostile, route):
    forged = hostile["docs"]["forged"]
    name = "q" if route == "/api/search" else "topic"
    body = hostile["apps"]["public"].test_client().get(route, query_string={name: FORGED_TOPIC, "k": 10, "n": 10}).get_json()
    hits = body["results"] if route == "/api/search" else body["points"]
    citations = [h["citation"] for h in hits if h["citation"]["doc_id"] == forged.id]
    if route == "/api/search":
        assert citations, "the forged page competes for the question it copies"
    for c in citations:
        assert c["organisation"] != FORGED_ORGANISATION and c["source_type"] == "agency"
        assert FORGED_HOST not in c["url"] and c["url"].startswith("https://www.hostile.example/")
    assert forged.organisation == "" and ".." not in forged.id


def test_the_forged_page_is_shown_under_its_own_name(hostile):
    client = hostile["apps"]["public"].test_client()
    forged = hostile["docs"]["forged"]
    doc = client.get(f"/api/documents/{forged.id}").get_json()
    assert doc["url"].startswith("https://www.hostile.example/") and doc["organisation"] == ""
    page = client.get(f"/doc/{forged.id}").get_data(as_text=True)
    assert FORGED_ORGANISATION not in page and FORGED_HOST not in page
    assert client.get("/doc/../admin/questions").status_code == 404


def test_the_punctuation_page_is_cut_into_capped_chunks_and_still_found(hostile):
    index = hostile["apps"]["public"].extensions["kb_index"].get()
    punctuation = hostile["docs"]["punctuation"]
    chunks = index.chunks_of(punctuation.id)
    assert max(len(c.text) for c in chunks) <= max_chunk_chars(index.settings.chunking)
    assert sum(c.text.count("?") for c in chunks) == len(QUESTION_RUN)  # cut into pieces, nothing lost
    client = hostile["apps"]["public"].test_client()
    body = client.get("/api/search", query_string={"q": PUNCTUATION_TOPIC, "k": 10}).get_json()
    assert body["results"][0]["doc_id"] == punctuation.id
    assert client.get("/talking-points", query_string={"topic": PUNCTUATION_TOPIC}).status_code == 200
    points = client.get("/api/talking-points", query_string={"topic": PUNCTUATION_TOPIC, "n": 20}).get_json()["points"]
    assert all(len(p["text"]) <= 2 * MAX_SENTENCE_CHARS for p in points)  # a point is a sentence, or two joined


# ---- afterwards ---------------------------------------------------------------------------------

def test_the_index_is_untouched_after_the_suite(public, corpus_index):
    verify_checksums(corpus_index.version_dir, corpus_index.manifest, list(corpus_index.manifest["files"]))
    health = public.get("/healthz").get_json()
    assert health["status"] == "ok" and health["chunks"] == corpus_index.chunk_count

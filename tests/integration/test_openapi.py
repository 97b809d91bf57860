"""The OpenAPI 3.1 document at /api/openapi.json is valid, names every route under /api/, and every
route's real responses — errors included — validate against it (openapi-core)."""
from __future__ import annotations

import re

import pytest
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from kb import LiveIndex
from search_app import create_app
from search_app.settings import WebSettings

TOKEN = "openapi-test-admin-token-4d8e-91aa03c7b2"
IGNORED_METHODS = {"HEAD", "OPTIONS"}  # Flask adds them to every GET route


@pytest.fixture(scope="module")
def document(app) -> dict:
    r = app.test_client().get("/api/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    return r.get_json()


@pytest.fixture(scope="module")
def spec(document) -> OpenAPI:
    return OpenAPI.from_dict(document)


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def test_the_document_is_valid_openapi_3_1(document):
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"].startswith("3.1")


def test_every_route_under_api_is_described_with_its_methods(app, document):
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            routes.setdefault(openapi_path(rule.rule), set()).update(m.lower() for m in rule.methods - IGNORED_METHODS)
    assert routes, "no route under /api/"
    missing = {path: sorted(methods - set(document["paths"].get(path, {}))) for path, methods in routes.items()}
    assert not {p: m for p, m in missing.items() if m}, f"routes missing from /api/openapi.json: {missing}"
    stale = [p for p in document["paths"] if p.startswith("/api/") and p not in routes]
    assert not stale, f"the document describes routes the app does not have: {stale}"


@pytest.fixture(scope="module")
def apps(app, corpus_index_dir, encoders, settings, tmp_path_factory):
    """The session app, one with a tight rate limit and metrics behind a token, and one without an index."""
    limited = create_app({"TESTING": True, "SETTINGS": settings, "LIVE_INDEX": LiveIndex(corpus_index_dir, settings, encoders),
                          "WEB_SETTINGS": WebSettings(rate_limit="3/minute", admin_token=TOKEN)})
    empty = tmp_path_factory.mktemp("no-index")
    missing = create_app({"TESTING": True, "SETTINGS": settings, "LIVE_INDEX": LiveIndex(empty, settings, encoders)})
    return {"main": app.test_client(), "limited": limited.test_client(), "missing": missing.test_client()}


def _requests(apps) -> list[tuple[str, str, dict, int]]:
    """(app, path with query, extra arguments for the test client, expected status)."""
    en, da = "When was the National Patient Registry established?", "Hvornår blev Landspatientregisteret oprettet?"
    return [
        ("main", f"/api/search?q={en}&k=3", {}, 200),
        ("main", f"/api/search?q={da}", {}, 200),
        ("main", f"/api/search?q={en}&mode=keyword&source_type=registry", {}, 200),
        ("main", "/api/search?q=", {}, 400),
        ("main", "/api/search?q=x&k=51", {}, 400),
        ("main", "/api/search?q=x&source_type=nonsense", {}, 400),
        ("main", "/api/search?q=x", {"data": b"x" * 20_000}, 413),
        ("main", "/api/search?q=" + "x" * 8_100, {}, 414),
        ("main", "/api/talking-points?topic=registry data for research&n=3", {}, 200),
        ("main", "/api/talking-points?topic=What is the corporate tax rate in Denmark?", {}, 200),
        ("main", "/api/talking-points?topic=x&n=0", {}, 400),
        ("main", "/api/documents/national-patient-registry", {}, 200),
        ("main", "/api/documents/no-such-document", {}, 404),
        ("main", "/api/openapi.json", {}, 200),
        ("main", "/healthz", {}, 200),
        ("main", "/readyz", {}, 200),
        ("limited", "/metrics", {"headers": {"Authorization": f"Bearer {TOKEN}"}}, 200),
        ("limited", "/metrics", {}, 401),
        *[("limited", "/api/documents/medcom", {}, 200)] * 3,
        ("limited", "/api/search?q=registry", {}, 429),
        ("missing", "/api/search?q=registry", {}, 503),
        ("missing", "/api/talking-points?topic=registry", {}, 503),
        ("missing", "/api/documents/medcom", {}, 503),
        ("missing", "/healthz", {}, 503),
        ("missing", "/readyz", {}, 503),
    ]


def test_real_responses_of_every_route_match_the_document(apps, spec, document):
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    seen: set[tuple[str, str]] = set()
    statuses: set[int] = set()
    for name, url, kwargs, expected in _requests(apps):
        response = apps[name].get(url, **kwargs)
        assert response.status_code == expected, (url, response.get_data()[:300])
        request = WerkzeugOpenAPIRequest(response.request)
        spec.validate_response(request, WerkzeugOpenAPIResponse(response))  # raises, naming what differs
        rule, _ = apps[name].application.url_map.bind("localhost").match(response.request.path, return_rule=True)
        seen.add((openapi_path(rule.rule), "get"))
        statuses.add(response.status_code)
    assert described <= seen, f"routes in the document with no response checked: {sorted(described - seen)}"
    assert {400, 404, 413, 414, 429, 503} <= statuses


def test_errors_outside_any_operation_have_the_documented_shape(apps, document):
    """405 (a method no operation has) and 404 (a path no route has) cannot be matched to an
    operation, so their bodies are checked against the document's Error schema directly."""
    schema = {"$ref": "#/components/schemas/Error", "components": document["components"]}
    validator = OAS31Validator(schema)
    for method, url, status in (("post", "/api/search?q=x", 405), ("delete", "/api/documents/medcom", 405),
                                ("get", "/api/no-such-route", 404), ("put", "/readyz", 405)):
        response = getattr(apps["main"], method)(url)
        assert response.status_code == status and response.mimetype == "application/json", url
        validator.validate(response.get_json())
    assert "Allow" in apps["main"].post("/api/search").headers

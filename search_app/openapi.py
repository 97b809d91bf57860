"""The OpenAPI 3.1 description of the JSON API, served at `/api/openapi.json`.

Written here as one document rather than generated from the views. The alternatives were weighed
against the blueprints as they are: flask-smorest would replace the blueprints and the parameter
checks (search_app/params.py, with their own error codes) by marshmallow schemas and its own 422
errors; spectree wants a pydantic model and a decorator per view and validates on its own terms;
apispec would move YAML into every view's docstring and still need the response schemas written
by hand. The views build plain dicts (search_app/views.py), so the shapes have to be written down
once somewhere; this module is that place, and it takes the limits from the code it describes
(`params.MAX_QUERY_CHARS`, `K_MAX`, `kb.MODES`, ...), so those cannot drift.

What keeps the rest true is tests/integration/test_openapi.py: the document must be valid
OpenAPI 3.1 (openapi-spec-validator), every route under /api/ must be in it with its methods
(found from `app.url_map`), and real responses of every route — errors included — must validate
against it (openapi-core). A change to a response that is not made here fails that test.
"""
from __future__ import annotations

from flask import Blueprint, jsonify

from kb import MODES
from search_app.params import K_DEFAULT, K_MAX, MAX_QUERY_CHARS, N_DEFAULT, N_MAX

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.1.0"
ERROR_STATUSES = {
    "400": "A parameter is missing, repeated, malformed or out of range (`error.code` names it)",
    "404": "No such document (or route)",
    "405": "Only the methods listed in `Allow` are accepted",
    "413": "The request body is larger than KB_MAX_REQUEST_BYTES",
    "414": "The address is longer than 8,000 bytes",
    "429": "Over the per-client rate limit (KB_RATE_LIMIT); `Retry-After` says when to try again",
    "500": "Something went wrong on our side; the error was logged",
    "503": "No index can be served yet",
}


def _nullable(schema: dict) -> dict:
    return {**schema, "type": [schema["type"], "null"]}


def _object(properties: dict, required: list[str] | None = None) -> dict:
    """An object with exactly these properties: a field the code adds must be described here too."""
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required, "additionalProperties": False}


STRING, INTEGER, NUMBER, BOOLEAN = ({"type": t} for t in ("string", "integer", "number", "boolean"))
STRINGS = {"type": "array", "items": STRING}


def schemas() -> dict:
    """The component schemas: one per response body, and the error shape every error uses."""
    citation = {
        "title": STRING, "url": STRING, "section": STRING, "source_type": STRING, "organisation": STRING,
        "as_of": {**STRING, "description": "ISO date the facts are as of; empty when unknown"},
        "doc_id": STRING,
        "start": {**INTEGER, "minimum": 0, "description": "offset into the document's clean text"},
        "end": {**INTEGER, "minimum": 0, "description": "`text` is exactly the clean text's [start:end]"},
    }
    return {
        "ErrorDetail": _object({"code": {**STRING, "description": "stable, machine-readable, e.g. `invalid_k`"},
                                "message": {**STRING, "description": "for people: what is wrong and how to fix it"}}),
        "Error": _object({"error": {"$ref": "#/components/schemas/ErrorDetail"}}),
        "Citation": _object(citation),
        "SearchResult": _object({
            "rank": {**INTEGER, "minimum": 1}, "score": NUMBER, "text": STRING, "chunk_id": STRING, "doc_id": STRING,
            "citation": {"$ref": "#/components/schemas/Citation"},
        }),
        "Filters": _object({"source_type": STRINGS, "organisation": STRINGS}),
        "SearchResponse": search_response_schema(),
        "TalkingPointsResponse": talking_points_schema(citation),
        "Document": document_schema(),
        "Health": health_schema(),
        "Ready": _object({"status": {"const": "ready"}, "index_version": STRING, "retrievers": STRINGS}),
        "NotReady": _object({"status": {"enum": ["starting", "unavailable"]},
                             "error": {"$ref": "#/components/schemas/ErrorDetail"}}),
    }


def search_response_schema() -> dict:
    properties = {
        "query": STRING,
        "mode": {"enum": list(MODES)},
        "language": {**STRING, "description": "the query's detected language (ISO 639-1, e.g. `en`, `da`)"},
        "retrievers": {**STRINGS, "description": "the retrievers whose lists were fused, e.g. "
                                                 "`[\"dense\", \"keyword\"]` or `[\"multilingual\", \"keyword\"]`"},
        "answered": {**BOOLEAN, "description": "whether a passage answers the query (the page's \"No good match\" "
                                               "when false): answer_score >= answer_cut"},
        "answer_score": {**NUMBER, "minimum": 0, "maximum": 1,
                         "description": "estimated probability that the corpus answers the query (kb.answer)"},
        "answer_cut": {**NUMBER, "description": "the index version's calibrated cut on answer_score"},
        "filters": {"$ref": "#/components/schemas/Filters"},
        "took_ms": NUMBER,
        "index_version": STRING,
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/SearchResult"}},
    }
    return _object(properties)


def talking_points_schema(citation: dict) -> dict:
    point_citation = _object({**citation, "source_link": STRING, "document_view": STRING})
    return _object({
        "topic": STRING,
        "answered": BOOLEAN,
        "answer_score": {**NUMBER, "minimum": 0, "maximum": 1},
        "answer_cut": NUMBER,
        "points": {"type": "array", "items": _object({"text": STRING, "score": NUMBER, "citation": point_citation})},
        "related": {"type": "array", "items": _object({"title": STRING, "doc_id": STRING})},
        "took_ms": NUMBER,
        "index_version": STRING,
    })


def document_schema() -> dict:
    chunk = _object({"chunk_id": STRING, "section": STRING, "start": INTEGER, "end": INTEGER})
    return _object({
        "doc_id": STRING, "title": STRING, "url": STRING, "source_type": STRING, "organisation": STRING,
        "as_of": STRING, "sources": STRINGS, "text": STRING, "chunks": {"type": "array", "items": chunk},
        "index_version": STRING,
    })


def health_schema() -> dict:
    ok = _object({
        "status": {"const": "ok"}, "index_version": STRING, "documents": INTEGER, "chunks": INTEGER, "model": STRING,
        "index_type": _nullable(STRING), "retrievers": STRINGS,
        "last_reload_error": {**_nullable(STRING), "description": "why the newest version is not served, if it is not"},
    })
    down = _object({"status": {"const": "unavailable"}, "error": {**STRING, "description": "what to do about it"}})
    return {"oneOf": [ok, down]}


def _json(ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _errors(*statuses: str) -> dict:
    return {status: {"$ref": f"#/components/responses/{status}"} for status in statuses}


# Every API route can answer these: the request checks, the rate limit and the catch-all handler.
COMMON = ("400", "413", "414", "429", "500")


def _param(name: str, schema: dict, description: str, *, required: bool = False, where: str = "query") -> dict:
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description}


FILTER_PARAMS = [
    _param("source_type", STRINGS, "repeat to allow several; unknown values are a 400"),
    _param("organisation", STRINGS, "repeat to allow several; unknown values are a 400"),
]


def paths() -> dict:
    text = {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS}
    return {
        "/api/search": {"get": {
            "operationId": "search", "summary": "Cited passages for a query",
            "parameters": [_param("q", text, "the query; not blank", required=True),
                           _param("k", {**INTEGER, "minimum": 1, "maximum": K_MAX, "default": K_DEFAULT}, "results"),
                           _param("mode", {"enum": list(MODES), "default": "hybrid"}, "retrieval mode"),
                           *FILTER_PARAMS],
            "responses": {"200": _json("SearchResponse", "Results, best first"), **_errors(*COMMON, "503")}}},
        "/api/talking-points": {"get": {
            "operationId": "talkingPoints", "summary": "Short verbatim cited points on a topic",
            "parameters": [_param("topic", text, "the topic; the rules of `q`", required=True),
                           _param("n", {**INTEGER, "minimum": 1, "maximum": N_MAX, "default": N_DEFAULT}, "points"),
                           *FILTER_PARAMS],
            "responses": {"200": _json("TalkingPointsResponse", "Points, or answered: false with related topics"),
                          **_errors(*COMMON, "503")}}},
        "/api/documents/{doc_id}": {"get": {
            "operationId": "document", "summary": "A document's clean text and its chunks",
            "parameters": [_param("doc_id", STRING, "the document id", required=True, where="path")],
            "responses": {"200": _json("Document", "The document"), **_errors(*COMMON, "404", "503")}}},
        "/api/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}},
                          **_errors(*COMMON)}}},
        "/healthz": {"get": {
            "operationId": "healthz", "summary": "Liveness: the process is up and has an index to serve",
            "responses": {"200": _json("Health", "Serving"), "503": _json("Health", "No index can be served")}}},
        "/readyz": {"get": {
            "operationId": "readyz", "summary": "Readiness: models and index loaded and warmed up",
            "responses": {"200": _json("Ready", "Ready for traffic"),
                          "503": _json("NotReady", "Not yet (or no longer) ready; `error.code` says why")}}},
        "/metrics": {"get": {
            "operationId": "metrics", "summary": "Prometheus metrics (text format); see KB_METRICS",
            "security": [{"adminToken": []}, {}],
            "responses": {"200": {"description": "Prometheus text exposition format",
                                  "content": {"text/plain": {"schema": STRING}}},
                          "401": {"description": "The admin token is missing or wrong (KB_METRICS=admin)"},
                          **_errors("429")}}},
    }


def document() -> dict:
    """The whole OpenAPI document (a fresh dict each call)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Denmark Digital Health KB", "version": "1",
                 "description": "Semantic search with citations. Every error under /api/ is "
                                "`{\"error\": {\"code\", \"message\"}}`."},
        "servers": [{"url": "/"}],
        "paths": paths(),
        "components": {
            "schemas": schemas(),
            "responses": {status: _json("Error", description) for status, description in ERROR_STATUSES.items()},
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer",
                                               "description": "the admin token (README, Configuration)"}},
        },
    }


@bp.get("/api/openapi.json")
def openapi_json():
    return jsonify(document())

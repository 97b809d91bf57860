"""JSON API blueprint: /api/search, /api/talking-points, /api/documents/<doc_id>, /healthz."""
from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from kb.answer import answer
from kb.insight import brief
from search_app.errors import public_index_problem, without_folders
from search_app.params import search_params, talking_points_params
from search_app.querylog_hook import log_search
from search_app.views import briefing_dict, current_index, live_index, search_dict

bp = Blueprint("api", __name__)
log = logging.getLogger(__name__)


@bp.get("/api/search")
def search():
    index = current_index()  # one version for the whole request
    p = search_params(request.args, index.source_types(), index.organisations(), index.settings.default_mode)
    response = index.search(p.q, k=p.k, mode=p.mode, filters=p.filters)
    signal = answer(index, p.q, filters=p.filters, response=response)
    log_search("search", index, p.q, response, signal=signal)
    return jsonify(search_dict(response, signal))


@bp.get("/api/talking-points")
def talking_points():
    index = current_index()
    p = talking_points_params(request.args, index.source_types(), index.organisations())
    briefing = brief(index, p.topic, p.n, filters=p.filters)
    log_search("talking_points", index, p.topic, briefing.points, filters=p.filters, signal=briefing.answer)
    return jsonify(briefing_dict(briefing, index))


@bp.get("/api/documents/<doc_id>")
def document(doc_id: str):
    index = current_index()
    doc = index.document(doc_id)
    if doc is None:
        return jsonify({"error": {"code": "not_found", "message": f"No document {doc_id[:200]!r} in this index."}}), 404
    return jsonify({
        "doc_id": doc.id, "title": doc.title, "url": doc.url, "source_type": doc.source_type,
        "organisation": doc.organisation, "as_of": doc.as_of, "sources": list(doc.sources), "text": doc.text,
        "chunks": [{"chunk_id": c.id, "section": c.section, "start": c.start, "end": c.end} for c in index.chunks_of(doc.id)],
        "index_version": index.version,
    })


@bp.get("/healthz")
def healthz():
    live = live_index()
    try:
        index = live.get()
    except Exception as exc:  # health checks report, they do not raise; the path goes to the log only
        log.warning("healthz: index unavailable: %s", exc)
        return jsonify({"status": "unavailable", "error": public_index_problem(exc)}), 503
    return jsonify({
        "status": "ok",
        "index_version": index.version,
        "documents": len(index.documents),
        "chunks": index.chunk_count,
        "model": index.embedder.name,
        "index_type": index.dense().info.get("type"),
        "retrievers": sorted(index.retrievers),
        "last_reload_error": without_folders(live.last_error),
    })

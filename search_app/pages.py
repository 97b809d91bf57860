"""HTML pages blueprint: the search page and the document view."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from search_app.params import BadParameter, search_params
from search_app.views import current_index

bp = Blueprint("pages", __name__)


@bp.get("/")
def search_page():
    index = current_index()
    q = request.args.get("q", "").strip()
    context = {"q": q, "response": None, "error": None, "mode": request.args.get("mode", ""),
               "source_types": index.source_types(), "organisations": index.organisations()}
    if q:
        try:
            p = search_params(request.args, context["source_types"], context["organisations"], index.settings.default_mode)
        except BadParameter as exc:
            context["error"] = exc.message
            return render_template("search.html", **context), 400
        context["response"] = index.search(p.q, k=p.k, mode=p.mode, filters=p.filters)
        context["params"] = p
    return render_template("search.html", **context)


@bp.get("/doc/<doc_id>")
def document_page(doc_id: str):
    index = current_index()
    doc = index.document(doc_id)
    if doc is None:
        abort(404, description=f"No document {doc_id[:200]!r} in this index.")
    chunk = index.chunk(request.args.get("chunk", "")) if request.args.get("chunk") else None
    start, end = (chunk.start, chunk.end) if chunk and chunk.doc_id == doc.id else _span(request.args, len(doc.text))
    parts = {"before": doc.text[:start], "cited": doc.text[start:end], "after": doc.text[end:]}
    return render_template("document.html", doc=doc, parts=parts, has_citation=end > start, index=index)


def _span(args, length: int) -> tuple[int, int]:
    try:
        start, end = int(args.get("start", 0)), int(args.get("end", 0))
    except ValueError:
        return 0, 0
    if 0 <= start < end <= length:
        return start, end
    return 0, 0

"""HTML pages blueprint: the search page, the talking-points page and the document view."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, render_template, request, url_for

from kb import Hit
from kb.answer import answer
from kb.insight import FacetValue, Highlight, best_sentences, brief, facet_counts, related_topics, source_link, web_url
from search_app.params import BadParameter, SearchParams, search_params, talking_points_params
from search_app.querylog_hook import log_search
from search_app.views import current_index

bp = Blueprint("pages", __name__)

REFINE = "refine"  # query parameter on links that narrow the search already shown


@bp.app_template_global()
def cited_source(url: str, quote: str) -> str:
    """The source URL with a text fragment, so the browser opens the original at the quote."""
    return source_link(url, quote)


@bp.app_template_filter("web_url")
def web_url_filter(url: str) -> str:
    """Templates link corpus URLs through this: http(s) only, "" (no link) for anything else."""
    return web_url(url)


@dataclass(frozen=True)
class ResultView:
    """One search result as the page shows it: the passage split around its best sentence."""

    hit: Hit
    highlight: Highlight | None

    @property
    def parts(self) -> tuple[str, str, str]:
        text = self.hit.chunk.text
        return self.highlight.parts(text) if self.highlight else (text, "", "")

    @property
    def quote(self) -> str:
        return self.parts[1] or self.hit.chunk.text


@dataclass(frozen=True)
class FacetLink:
    value: str
    count: int
    active: bool
    url: str


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
        response = index.search(p.q, k=p.k, mode=p.mode, filters=p.filters)
        signal = answer(index, p.q, filters=p.filters, response=response)
        if request.args.get(REFINE) != "1":  # a facet click narrows a logged search; it is not a new question
            log_search("search", index, p.q, response, signal=signal)
        facets = facet_counts(index, p.q, cut=signal.passage_cut)  # the cut of this request's signal
        highlights = best_sentences(index, p.q, response.hits, retriever=response.dense_retriever,
                                    query_vector=response.query_vector)
        context.update(
            response=response, params=p, answered=signal.answered, answer=signal,
            results=[ResultView(h, hl) for h, hl in zip(response.hits, highlights)],
            related=[] if signal.answered else related_topics(index, p.q),
            facet_groups=[
                ("Source type", "source_type", _facet_links(p, "source_type", facets.source_type)),
                ("Organisation", "organisation", _facet_links(p, "organisation", facets.organisation)),
            ],
            clear_url=_search_url(p, (), ()) if p.filters else None,
        )
    return render_template("search.html", **context)


@bp.get("/talking-points")
def talking_points_page():
    index = current_index()
    topic = request.args.get("topic", "").strip()
    context = {"topic": topic, "n": request.args.get("n", ""), "briefing": None, "error": None}
    if topic:
        try:
            p = talking_points_params(request.args, index.source_types(), index.organisations())
        except BadParameter as exc:
            context["error"] = exc.message
            return render_template("talking_points.html", **context), 400
        briefing = brief(index, p.topic, p.n, filters=p.filters)
        log_search("talking_points", index, p.topic, briefing.points, filters=p.filters, signal=briefing.answer)
        context.update(briefing=briefing, n=p.n)
    return render_template("talking_points.html", **context)


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


def _facet_links(p: SearchParams, field: str, values: list[FacetValue]) -> list[FacetLink]:
    """Each value toggles itself in its field's filter (values within a field are OR-ed)."""
    selected = p.filters.source_types if field == "source_type" else p.filters.organisations
    shown = {v.value for v in values}
    values = list(values) + [FacetValue(v, 0) for v in selected if v not in shown]  # keep active ones removable
    links = []
    for v in values:
        active = v.value in selected
        chosen = tuple(x for x in selected if x != v.value) if active else selected + (v.value,)
        types, orgs = (chosen, p.filters.organisations) if field == "source_type" else (p.filters.source_types, chosen)
        links.append(FacetLink(v.value, v.count, active, _search_url(p, types, orgs)))
    return links


def _search_url(p: SearchParams, source_types: tuple[str, ...], organisations: tuple[str, ...]) -> str:
    """A link that refines the current search (facet or clear-filters): marked so it is not logged
    again — the query log counts questions asked, and popular queries would be inflated otherwise."""
    args: dict = {"q": p.q, REFINE: "1"}
    if request.args.get("mode"):
        args["mode"] = p.mode
    if request.args.get("k"):
        args["k"] = p.k
    if source_types:
        args["source_type"] = list(source_types)
    if organisations:
        args["organisation"] = list(organisations)
    return url_for("pages.search_page", **args)

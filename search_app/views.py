"""Turning library records into what the API returns and the pages show (one place for both)."""
from __future__ import annotations

from dataclasses import asdict

from flask import current_app, g, url_for

from kb import Hit, Index, LiveIndex, SearchResponse
from kb.answer import Answer


def live_index() -> LiveIndex:
    return current_app.extensions["kb_index"]


def current_index() -> Index:
    """The version this request uses from start to end (kept on `g`, where the metrics read it)."""
    index = g.kb_index = live_index().get()
    return index


def citation_dict(hit: Hit) -> dict:
    c = hit.citation
    return {
        "title": c.title, "url": c.url, "section": c.section, "source_type": c.source_type,
        "organisation": c.organisation, "as_of": c.as_of, "doc_id": c.doc_id, "start": c.start, "end": c.end,
    }


def hit_dict(hit: Hit) -> dict:
    return {
        "rank": hit.rank,
        "score": round(hit.score, 6),
        "text": hit.chunk.text,
        "chunk_id": hit.chunk.id,
        "doc_id": hit.chunk.doc_id,
        "citation": citation_dict(hit),
    }


def search_dict(response: SearchResponse, signal: Answer) -> dict:
    """The /api/search body: the results, and whether they answer the query (the same answer
    signal as the page's "No good match")."""
    return {
        "query": response.query,
        "mode": response.mode,
        "language": response.language,
        "retrievers": list(response.retrievers),
        "answered": signal.answered,
        "answer_score": round(signal.score, 4),
        "answer_cut": round(signal.cut, 4),
        "filters": response.filters.as_dict(),
        "took_ms": response.took_ms,
        "index_version": response.index_version,
        "results": [hit_dict(h) for h in response.hits],
    }


def talking_point_dict(point) -> dict:
    """A `kb.insight.talking_points.TalkingPoint` as the API returns it; `text` == document text[start:end]."""
    c = point.citation
    return {
        "text": point.text,
        "score": round(point.score, 6),
        "citation": {
            "title": c.title, "url": c.url, "section": c.section, "source_type": c.source_type,
            "organisation": c.organisation, "as_of": c.as_of, "doc_id": c.doc_id, "start": c.start, "end": c.end,
            "source_link": point.source_url,
            "document_view": url_for("pages.document_page", doc_id=c.doc_id, start=c.start, end=c.end, _anchor="cited"),
        },
    }


def briefing_dict(briefing, index: Index) -> dict:
    """The /api/talking-points body: points, or `answered: false` with related topics to try."""
    return {
        "topic": briefing.topic,
        "answered": briefing.answered,
        "answer_score": round(briefing.answer.score, 4),
        "answer_cut": round(briefing.answer.cut, 4),
        "points": [talking_point_dict(p) for p in briefing.points],
        "related": [{"title": r.title, "doc_id": r.doc_id} for r in briefing.related],
        "took_ms": briefing.took_ms,
        "index_version": index.version,
    }

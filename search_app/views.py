"""Turning library records into what the API returns and the pages show (one place for both)."""
from __future__ import annotations

from dataclasses import asdict

from flask import current_app

from kb.documents import Hit
from kb.live import LiveIndex
from kb.search import Index, SearchResponse


def live_index() -> LiveIndex:
    return current_app.extensions["kb_index"]


def current_index() -> Index:
    return live_index().get()


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


def search_dict(response: SearchResponse) -> dict:
    return {
        "query": response.query,
        "mode": response.mode,
        "filters": response.filters.as_dict(),
        "took_ms": response.took_ms,
        "index_version": response.index_version,
        "results": [hit_dict(h) for h in response.hits],
    }

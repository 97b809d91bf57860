"""Searching an index version: retrievers (dense, keyword), fusion over N lists, routes, `Index`."""
from kb.search.index import Index
from kb.search.live import LiveIndex
from kb.search.query import Filters, Query, SearchResponse

__all__ = ["Filters", "Index", "LiveIndex", "Query", "SearchResponse"]

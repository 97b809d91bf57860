"""Flask web app: search page, document view and JSON API over a `kb` index.

`create_app()` is the application factory; the model and the index are loaded once per process
(in `kb`), and each request takes one index version from `kb.search.live.LiveIndex`.
"""
from search_app.factory import create_app

__all__ = ["create_app"]

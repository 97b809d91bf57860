"""Keeping the corpus true: re-crawl the sources behind the pages, say what changed, flag the pages.

`python -m indexer refresh` (docs/CONTENT.md):

1. `sources` — corpus/sources.yaml, the sites the pages cite, validated on load;
2. `fetch` — each due site crawled by `indexer.crawl` (robots.txt, delays, caps, address rules), one
   outcome per URL;
3. `compare` — each URL against the last crawl, by the hash of its cleaned text (new, changed, gone,
   unreachable, unchecked, back);
4. `state` — what the refresh remembers (`KB_REFRESH_DIR`), written atomically, one refresh at a time;
5. `run` — the order of it all, the rebuild (`kb.build_index` through `indexer.building`, encoding only
   changed chunks) and the flags on corpus pages (`kb.insight.staleness`, the same rule the coverage
   report uses);
6. `report` — the change report, JSON and escaped Markdown.

How crawled sources relate to the curated corpus: the Markdown pages in corpus/ are what the team
writes and vouches for. The refresh's first job is to notice when a source behind a page moves on
and to flag that page; it never edits a page. A site's crawled pages are indexed as well only when
its entry says `index: true` (with a `source_type`): then they are documents of their own (ids
`<site id>-<URL key>`), rebuilt from the state folder by every refresh.
"""
from .run import RefreshOptions, run_refresh
from .sources import Source, SourcesFileError, load_sources

__all__ = ["RefreshOptions", "Source", "SourcesFileError", "load_sources", "run_refresh"]

"""The corpus as a small static web site, so the crawler path can be checked against the corpus path.

`render_corpus_site` writes one HTML page per `kb.Document` plus a start page (the promotional page)
that links to every other page. Crawling that site and loading the saved pages with
`indexer.loaders.load_html` and `PagePolicy(trust_site_meta=True)` must give back the very same
documents — same text, same blocks, same metadata — so an index built from a crawl answers exactly
like one built from `corpus/`. The tests (`tests/integration/test_corpus_site.py`) serve the folder
on 127.0.0.1 and check that end to end.

How each part of a document survives the round trip:

* metadata rides in `<meta name="kb:...">` tags (id, url, source_type, organisation, as_of, sources as
  a space-separated list) next to the mark `<meta name="kb:rendered-by" content="denmark-digital-health-kb">`;
  `load_html` reads them only from a marked page and only when its caller asks for it
  (`PagePolicy(trust_site_meta=True)`), because any page on the web can carry such tags; the title is
  the `<title>`; the document's official URL is `kb:url` and also the `<link rel="canonical">` (which
  `load_html` ignores here: it points off the host the page was fetched from);
* blocks become `<h1>`–`<h6>` (level kept) and `<p>`; a paragraph with line breaks (a Markdown list,
  one item per line) becomes one `<p>` with `<br>` between lines, which the loader turns back into
  line breaks;
* the page repeats the title as its first `<h1>`, which the loader drops once (it is the page title,
  not a section), so a document whose own text starts with its title keeps that heading;
* page furniture (skip link, header and navigation, cookie banner, breadcrumb, share box, "Back to
  top", an external script, a sources sidebar, footer) is real-world clutter the loader must remove.

Nothing here is inline script or style (the site works under a strict CSP). Pages are written with
`kb.core.fsutil.atomic_write_text`; the folder is not emptied first, so render into a fresh folder.
"""
from __future__ import annotations

from collections.abc import Iterable
from html import escape
from pathlib import Path
from urllib.parse import quote

from indexer.loaders import SITE_MARKER, SITE_MARKER_NAME
from kb.core.records import Document
from kb.core.fsutil import atomic_write_text

SITE_NAME = "Denmark Digital Health KB"
START_PAGE = "index.html"
SCRIPT_NAME = "site.js"

# A harmless external script: pages carry a <script> like real sites do, and the loader must drop it.
_SCRIPT = """// Hides the cookie banner once a choice is made. Not needed to read any page.
document.addEventListener("click", function (event) {
  if (event.target.closest && event.target.closest("[data-cookie-choice]")) {
    var banner = document.getElementById("cookie-banner");
    if (banner) { banner.hidden = true; }
  }
});
"""


def render_corpus_site(docs: list[Document], out_dir: Path, start_page_id: str = "digital-healthcare-denmark") -> Path:
    """Write the corpus as HTML pages into `out_dir` and return the start page's path.

    The document `start_page_id` becomes `index.html` (served at `/`) and carries a list of links to
    every other document, each written as `<id>.html`; every page links back to `./`. So a crawl from
    `/` with depth 1 reaches the whole corpus, and the link back home is a loop the crawler must not
    follow twice.

    Every document must have an `as_of` date: a crawled page without one would get the fetch date
    instead (see `indexer.loaders.load_saved_page`), and the round trip would no longer be exact.
    Raises ValueError for duplicate ids, a missing start page, a missing `as_of` or a source URL
    containing whitespace (it could not travel in the space-separated `kb:sources` tag).
    """
    by_id: dict[str, Document] = {}
    for doc in docs:
        if doc.id in by_id:
            raise ValueError(f"two documents share the id {doc.id!r}")
        if not doc.as_of:
            raise ValueError(f"{doc.id}: no as_of date; a crawled copy would get the fetch date instead")
        if any(not s or any(ch.isspace() for ch in s) for s in doc.sources):
            raise ValueError(f"{doc.id}: a source URL is empty or contains whitespace")
        by_id[doc.id] = doc
    if start_page_id not in by_id:
        raise ValueError(f"start page {start_page_id!r} is not among the documents")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / SCRIPT_NAME, _SCRIPT)
    others = sorted((d for d in by_id.values() if d.id != start_page_id), key=lambda d: d.title.lower())
    for doc in others:
        atomic_write_text(out_dir / page_name(doc.id), _page(doc))
    start = out_dir / START_PAGE
    atomic_write_text(start, _page(by_id[start_page_id], directory=others))
    return start


def page_name(doc_id: str) -> str:
    """File name (and relative URL) of a document's page."""
    return f"{doc_id}.html"


def _page(doc: Document, directory: Iterable[Document] = ()) -> str:
    meta = [(SITE_MARKER_NAME, SITE_MARKER), ("kb:id", doc.id), ("kb:url", doc.url),
            ("kb:source_type", doc.source_type), ("kb:organisation", doc.organisation),
            ("kb:as_of", doc.as_of), ("kb:sources", " ".join(doc.sources))]
    head = "\n".join(
        [
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(doc.title)}</title>",
            f'<link rel="canonical" href="{escape(doc.url, quote=True)}">',
            *(f'<meta name="{name}" content="{escape(value, quote=True)}">' for name, value in meta if value),
            f'<script src="{SCRIPT_NAME}" defer></script>',
        ]
    )
    links = "\n".join(
        f'<li><a href="{escape(quote(page_name(d.id)), quote=True)}">{escape(d.title)}</a></li>' for d in directory
    )
    index = f'<nav class="corpus-index" aria-label="All pages">\n<ul>\n{links}\n</ul>\n</nav>\n' if links else ""
    sources = "\n".join(
        f'<li><a href="{escape(s, quote=True)}" rel="nofollow">{escape(s)}</a></li>' for s in doc.sources
    )
    aside = f'<aside class="sources">\n<h2>Sources</h2>\n<ul>\n{sources}\n</ul>\n</aside>\n' if sources else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
{head}
</head>
<body>
<a class="skip-link" href="#content">Skip to content</a>
<header class="site-header">
<p class="site-name">{escape(SITE_NAME)}</p>
<nav class="site-nav" aria-label="Site"><ul><li><a href="./">Home</a></li></ul></nav>
</header>
<div id="cookie-banner" class="cookie-banner">
<p>We use cookies to remember your choices.</p>
<button type="button" data-cookie-choice="accept">Accept all cookies</button>
<button type="button" data-cookie-choice="reject">Reject cookies</button>
</div>
<main id="content">
<nav class="breadcrumb" aria-label="Breadcrumb"><a href="./">Home</a> / {escape(doc.title)}</nav>
<article>
<h1>{escape(doc.title)}</h1>
{_body(doc)}
</article>
{aside}{index}<div class="share">Share this page</div>
<p><a href="#content">Back to top</a></p>
</main>
<footer class="site-footer">
<p>{escape(doc.organisation or SITE_NAME)} · information as of {escape(doc.as_of)}</p>
</footer>
</body>
</html>
"""


def _body(doc: Document) -> str:
    """The document's blocks as headings and paragraphs (text escaped, line breaks as <br>)."""
    if doc.blocks:
        spans = [(b.kind, b.level, doc.text[b.start:b.end]) for b in doc.blocks]
    else:  # a hand-made Document without blocks: blank lines separate paragraphs
        spans = [("paragraph", 0, part) for part in doc.text.split("\n\n") if part.strip()]
    out = []
    for kind, level, text in spans:
        if kind == "heading":
            tag = f"h{min(max(level, 1), 6)}"
            out.append(f"<{tag}>{escape(text)}</{tag}>")
        else:
            lines = [escape(line) for line in text.split("\n") if line.strip()]
            out.append("<p>" + "<br>\n".join(lines) + "</p>")
    return "\n".join(out)

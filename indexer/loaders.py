"""Loaders: files on disk (Markdown, plain text, HTML, crawled pages) to clean `kb.Document`s.

Every loader produces clean text through `kb.BlockBuilder`, so headings and paragraphs become
blocks with exact offsets and the chunker never has to guess at structure. Web-page furniture
(navigation, cookie banners, "Skip to content", video and icon labels) is dropped here, because
whatever passes this point gets indexed and quoted.

A crawled page is written by whoever runs the site, so it decides its text and title and nothing
about its identity (`PagePolicy`): its id comes from its URL, its URL is the address it was fetched
from (or a canonical link on that same host), and its source type is the operator's. Only pages
our own renderer (`indexer.render_site`) marked, loaded by a caller that asks for it, may carry
their metadata in `kb:*` tags. Document ids are checked wherever a document is made (`DOC_ID`).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urljoin, urlsplit

import yaml
from bs4 import BeautifulSoup, Comment, NavigableString, Tag
from markdown_it import MarkdownIt

from kb.core.records import BlockBuilder, Document

SOURCE_TYPES = ("promo", "cluster", "agency", "portal", "registry", "biobank", "programme", "research-access")
REQUIRED_FRONT_MATTER = ("title", "url", "source_type")
CORPUS_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")
HTML_SUFFIXES = (".html", ".htm")

# A document id is a URL path segment (/doc/<id>) and a file name: nothing that could climb a path.
DOC_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
DOC_ID_RULE = "lower-case letters a-z, digits and hyphens, starting with a letter or digit, at most 100 characters"

# The mark `indexer.render_site` puts on every page it writes; see PagePolicy.trust_site_meta.
SITE_MARKER_NAME = "kb:rendered-by"
SITE_MARKER = "denmark-digital-health-kb"


class LoaderError(ValueError):
    """A source file that cannot become a document; the message names the file and the fix."""


@dataclass(frozen=True)
class PagePolicy:
    """Who decides what about a document made from a web page (crawled or saved HTML).

    `overrides` are the operator's values (`indexer build --source-type`); they win over anything
    a page says. `trust_site_meta` lets a page's `kb:*` tags (id, url, source_type, organisation,
    as_of, sources, title) count, and only on a page that carries our renderer's mark: it is for
    crawls of our own rendered corpus (tests/integration/test_corpus_site.py), never the default.
    `canonical_hosts` are hosts, besides the fetched page's own, whose canonical links are accepted.
    """

    overrides: Mapping[str, str] = field(default_factory=dict)
    trust_site_meta: bool = False
    canonical_hosts: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        source_type = self.overrides.get("source_type")
        if source_type is not None and source_type not in SOURCE_TYPES:
            raise ValueError(f"source type {source_type!r} for crawled pages is not one of {', '.join(SOURCE_TYPES)}.")
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))  # shared default: read-only
        object.__setattr__(self, "canonical_hosts", frozenset(h.lower() for h in self.canonical_hosts))


# Lines that are page furniture, not content: labels of widgets that lost their widget.
FURNITURE_LINES = re.compile(
    r"""^\s*(?:
        skip\s+to\s+(?:main\s+)?content
      | play\s+video | watch\s+(?:the\s+)?video
      | quote\s+(?:ikon|icon)
      | (?:accept|reject|manage)\s+(?:all\s+)?cookies?.* | cookie\s+(?:settings|policy|consent)
      | share\s+(?:this|on)\b.* | print\s+page | back\s+to\s+top | read\s+more
      | contact\s+how\s+can\s+we\s+help\s+you\??
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_BULLET = re.compile(r"^\s*(?:[•·▪‣◦*-]|\d+[.)])\s+")

# ---------------------------------------------------------------------------------------------
# Front matter


def split_front_matter(raw: str, where: str) -> tuple[dict, str]:
    """YAML front matter between `---` lines at the top of a file, and the body after it."""
    if not raw.startswith("---"):
        return {}, raw
    m = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", raw, flags=re.S)
    if not m:
        raise LoaderError(f"{where}: front matter starts with '---' but has no closing '---' line.")
    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as exc:
        raise LoaderError(f"{where}: front matter is not valid YAML ({exc}).") from exc
    if not isinstance(meta, dict):
        raise LoaderError(f"{where}: front matter must be a mapping of keys to values.")
    return meta, raw[m.end():]


def check_doc_id(doc_id: str, where: str, fix: str = "") -> str:
    """`doc_id` if it is a valid document id (DOC_ID), else a LoaderError naming `where`."""
    if not DOC_ID.fullmatch(doc_id):
        shown = repr(doc_id[:80]) + ("…" if len(doc_id) > 80 else "")
        raise LoaderError(f"{where}: document id {shown} is not valid: use {DOC_ID_RULE}{fix}.")
    return doc_id


def _document(doc_id: str, meta: dict, builder: BlockBuilder, where: str, defaults: Mapping | None = None,
              overrides: Mapping | None = None, source_type_hint: str = "") -> Document:
    """The one place a loader makes a Document: `defaults` fill gaps, `meta` is what the file or
    page says, `overrides` (the operator's) win over both; the id and the metadata are checked."""
    check_doc_id(doc_id, where)
    meta = {**_given(defaults), **_given(meta), **_given(overrides)}
    missing = [k for k in REQUIRED_FRONT_MATTER if not meta.get(k)]
    if missing:
        hint = source_type_hint if "source_type" in missing else ""
        raise LoaderError(f"{where}: missing front matter {', '.join(missing)} (needed: "
                          f"{', '.join(REQUIRED_FRONT_MATTER)}).{hint}")
    source_type = str(meta["source_type"])
    if source_type not in SOURCE_TYPES:
        raise LoaderError(f"{where}: source_type {source_type!r} is not one of {', '.join(SOURCE_TYPES)}.")
    sources = meta.get("sources") or ()
    if isinstance(sources, str):
        sources = sources.split()
    if not builder.text.strip():
        raise LoaderError(f"{where}: no text left after cleaning.")
    return Document(
        id=doc_id,
        title=str(meta["title"]).strip(),
        url=str(meta["url"]).strip(),
        source_type=source_type,
        text=builder.text,
        blocks=tuple(builder.blocks),
        organisation=str(meta.get("organisation", "") or "").strip(),
        as_of=str(meta.get("as_of", "") or "").strip(),
        sources=tuple(str(s).strip() for s in sources),
        path=where,
    )


def _given(values: Mapping | None) -> dict:
    return {k: v for k, v in (values or {}).items() if v not in (None, "")}


# ---------------------------------------------------------------------------------------------
# Markdown

_md = MarkdownIt("commonmark")


_RENAME = "; the id of a Markdown or text page is its file name, so rename the file"


def load_markdown(path: Path) -> Document:
    check_doc_id(path.stem, str(path), _RENAME)
    raw = _read_text(path)
    meta, body = split_front_matter(raw, str(path))
    return _document(path.stem, meta, markdown_blocks(body), str(path))


def markdown_blocks(body: str) -> BlockBuilder:
    """Headings and paragraphs of a Markdown body as plain text (markup removed, link text kept)."""
    builder = BlockBuilder()
    tokens = _md.parse(body)
    heading_level = 0
    list_items: list[str] = []
    list_depth = 0
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            heading_level = int(tok.tag[1])
        elif tok.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
            if list_depth == 0 and list_items:
                builder.paragraph("\n".join(list_items))
                list_items = []
        elif tok.type == "inline":
            text = _inline_text(tok)
            if heading_level:
                builder.heading(text, heading_level)
                heading_level = 0
            elif list_depth:
                list_items.append(text)
            else:
                builder.paragraph(text)
        elif tok.type in ("fence", "code_block") and tok.content.strip():
            builder.paragraph(tok.content)
    return builder


def _inline_text(tok) -> str:
    parts = []
    for child in tok.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# Plain text


def load_text(path: Path) -> Document:
    check_doc_id(path.stem, str(path), _RENAME)
    raw = _read_text(path)
    meta, body = split_front_matter(raw, str(path))
    return _document(path.stem, meta, text_blocks(body), str(path))


def text_blocks(body: str) -> BlockBuilder:
    """Paragraphs of a plain-text page; short unpunctuated lines followed by prose become headings.

    Pages saved from the web as text keep their headings as bare lines; recognising them gives
    chunks a section, which is what lets a citation say where on the page a passage sits.
    """
    lines = [ln.strip() for ln in body.splitlines()]
    lines = [ln for ln in lines if not FURNITURE_LINES.match(ln)]
    paragraphs: list[str] = []
    current: list[str] = []
    for ln in lines:
        if not ln:
            if current:
                paragraphs.append(" ".join(current))
                current = []
        elif _BULLET.match(ln):
            if current:
                paragraphs.append(" ".join(current))
                current = []
            paragraphs.append(_BULLET.sub("", ln, count=1))
        else:
            current.append(ln)
    if current:
        paragraphs.append(" ".join(current))

    builder = BlockBuilder()
    seen_heading = False
    for i, para in enumerate(paragraphs):
        nxt = paragraphs[i + 1] if i + 1 < len(paragraphs) else ""
        if _looks_like_heading(para) and nxt and not _looks_like_heading(nxt) and len(nxt) > len(para):
            builder.heading(para, 2 if seen_heading else 1)
            seen_heading = True
        else:
            builder.paragraph(para)
    return builder


def _looks_like_heading(line: str) -> bool:
    return (
        0 < len(line) <= 90
        and line[0].isupper()
        and line[-1] not in ".:;,!?\"'”)"
        and len(line.split()) <= 12
    )


# ---------------------------------------------------------------------------------------------
# HTML

_DROP_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "form", "aside", "iframe", "svg",
              "button", "template", "select", "input", "textarea", "object", "embed", "video", "audio", "canvas",
              "dialog", "menu")
_FURNITURE_ATTR = re.compile(
    r"cookie|consent|gdpr|banner|skip[-_]?(?:link|to)|breadcrumb|social|share|newsletter|popup|modal|sidebar|"
    r"site[-_]?(?:header|footer|nav)|menu",
    re.I,
)
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_TEXT_BLOCKS = {"p", "li", "blockquote", "pre", "dd", "dt", "figcaption", "td", "th", "caption", "address"}
_INLINE = {"a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "i", "kbd", "mark", "q", "s",
           "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var", "wbr", "br", "font", "label"}


def load_html(
    html: str | bytes,
    *,
    url: str = "",
    doc_id: str | None = None,
    defaults: Mapping | None = None,
    where: str = "<html>",
    policy: PagePolicy = PagePolicy(),
) -> Document:
    """A web page as a document: title from the page, furniture removed, identity per `policy`.

    `url` is where the page was fetched from; it is the document's URL unless the page has a
    canonical link on the same host (or one of `policy.canonical_hosts`). Without a `url` (a file
    placed by hand, no crawl behind it) the canonical link is the only URL there is and is used.
    `defaults` fill what nobody else gives (the crawl date as `as_of`).
    """
    soup = BeautifulSoup(html, "html.parser")
    claims = _site_meta(soup, where) if policy.trust_site_meta and _rendered_by_us(soup) else {}
    page_url = claims.get("url") or _canonical_url(soup, url, policy.canonical_hosts)
    title = claims.get("title") or _og_title(soup) or _page_title(soup) or page_url or where
    fields = {**claims, "title": title, "url": page_url}

    _drop_furniture(soup)
    root = soup.find("main") or soup.find("article") or soup.body or soup
    builder = BlockBuilder()
    _walk_html(root, builder, [title])
    doc_id = doc_id or claims.get("id") or _id_from_url(page_url or where)
    return _document(str(doc_id), fields, builder, where, defaults, policy.overrides,
                     source_type_hint=" A crawled page cannot choose its own: give one (indexer build --source-type).")


def _drop_furniture(soup: BeautifulSoup) -> None:
    """Remove comments, scripts, forms, navigation and the like, in one pass over the elements
    (bs4 matches a list of names per element slowly; a page can have 100,000 elements)."""
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in soup.find_all(True):
        if tag.name in _DROP_SET or _is_furniture(tag):
            tag.decompose()


def _is_furniture(tag: Tag) -> bool:
    if not isinstance(tag, Tag) or tag.name in ("html", "body", "main", "article"):
        return False
    attrs = getattr(tag, "attrs", None) or {}
    if attrs.get("role") in ("navigation", "banner", "contentinfo", "search", "dialog") or attrs.get("aria-hidden") == "true":
        return True
    if "hidden" in attrs:
        return True
    ident = " ".join([str(attrs.get("id", ""))] + [str(c) for c in (attrs.get("class") or [])])
    return bool(ident.strip()) and bool(_FURNITURE_ATTR.search(ident))


_DROP_SET = frozenset(_DROP_TAGS)
_BLOCK_SET = frozenset(_TEXT_BLOCKS | set(_HEADINGS))


def _has_block_inside(tag: Tag) -> bool:
    return any(isinstance(d, Tag) and d.name in _BLOCK_SET for d in tag.descendants)


def _walk_html(root: Tag, builder: BlockBuilder, title_h1: list[str]) -> None:
    """Blocks of `root` in reading order. `title_h1` holds the page title until the first <h1>
    repeating it has been skipped (it names the page, it is not a section); a second one is kept.

    The walk keeps its own stack of open elements instead of recursing, so a page nested 100,000
    elements deep is only a long page, not a RecursionError. Text between blocks collects in
    `pending` and becomes a paragraph whenever an element opens or closes around it.
    """
    pending: list[str] = []

    def flush() -> None:
        text = " ".join(" ".join(pending).split())
        pending.clear()
        if text and not FURNITURE_LINES.match(text):
            builder.paragraph(text)

    stack = [iter(root.children)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            flush()
        elif isinstance(child, NavigableString):
            if str(child).strip():
                pending.append(str(child))
        elif isinstance(child, Tag):
            name = child.name.lower() if child.name else ""
            if name in _INLINE:
                pending.append(child.get_text(" "))
                continue
            flush()
            if name in _HEADINGS:
                _heading(child, name, builder, title_h1)
            elif name in _TEXT_BLOCKS and not _has_block_inside(child):
                text = child.get_text() if name == "pre" else _block_text(child)
                if not FURNITURE_LINES.match(text.strip()):
                    builder.paragraph(text)
            else:
                stack.append(iter(child.children))


def _heading(tag: Tag, name: str, builder: BlockBuilder, title_h1: list[str]) -> None:
    text = " ".join(tag.get_text(" ").split())
    if text and not FURNITURE_LINES.match(text):
        if name == "h1" and text in title_h1 and not builder.blocks:
            title_h1.clear()
        else:
            builder.heading(text, _HEADINGS[name])


def _block_text(tag: Tag) -> str:
    """Text of a paragraph-like element: whitespace runs collapsed, each <br> kept as a line break
    (as a Markdown list or hard break keeps its lines, so both loaders give the same text)."""
    lines: list[list[str]] = [[]]
    for node in tag.descendants:
        if isinstance(node, Tag):
            if node.name == "br":
                lines.append([])
        elif isinstance(node, NavigableString):
            lines[-1].append(str(node))
    return "\n".join(" ".join(" ".join(parts).split()) for parts in lines)


def _rendered_by_us(soup: BeautifulSoup) -> bool:
    return any((tag.get("content") or "").strip() == SITE_MARKER for tag in _meta_tags(soup, SITE_MARKER_NAME))


def _meta_tags(soup: BeautifulSoup, name: str) -> list[Tag]:
    return [t for t in soup.find_all("meta") if (t.get("name") or t.get("property") or "").strip().lower() == name]


def _site_meta(soup: BeautifulSoup, where: str) -> dict:
    """The `kb:*` tags of a page our renderer wrote (the caller has checked the mark)."""
    out: dict = {}
    for tag in soup.find_all("meta"):
        name = (tag.get("name") or "").strip().lower()
        content = tag.get("content")
        if content and name.startswith("kb:") and name != SITE_MARKER_NAME:
            key = name[3:]
            out[key] = content.split() if key == "sources" else content.strip()
    if out.get("url") and urlsplit(out["url"]).scheme not in ("http", "https"):
        raise LoaderError(f"{where}: kb:url {out['url'][:80]!r} is not an http(s) URL.")
    return out


def _og_title(soup: BeautifulSoup) -> str:
    tags = _meta_tags(soup, "og:title")
    return next((str(t["content"]).strip() for t in tags if t.get("content")), "")


def _page_title(soup: BeautifulSoup) -> str:
    if soup.title and soup.title.get_text(strip=True):
        return " ".join(soup.title.get_text().split())
    h1 = soup.find("h1")
    return " ".join(h1.get_text().split()) if h1 else ""


def _canonical_url(soup: BeautifulSoup, url: str, extra_hosts: frozenset[str] = frozenset()) -> str:
    """The page's canonical link when it stays on the fetched URL's host (or an allowed one), else `url`.

    A canonical link to another host would let any page on an allowed site claim to be, and be
    cited as, a page of somebody else (a health authority, say)."""
    fetched_host = (urlsplit(url).hostname or "") if url else ""
    for link in soup.find_all("link"):
        rel = link.get("rel") or []
        rel = rel if isinstance(rel, list) else str(rel).split()
        if "canonical" not in [r.lower() for r in rel] or not link.get("href"):
            continue
        try:
            href = urljoin(url, link["href"].strip()) if url else link["href"].strip()
            parts = urlsplit(href)
            host = parts.hostname or ""
        except ValueError:  # an unparsable link (e.g. a bad IPv6 literal) is no canonical link
            continue
        if parts.scheme in ("http", "https") and (not url or host == fetched_host or host in extra_hosts):
            return href
    return url


def _id_from_url(url: str) -> str:
    parts = urlsplit(url)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{parts.netloc}{parts.path}".lower()).strip("-")[:80]
    digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else digest


# ---------------------------------------------------------------------------------------------
# Files and folders


def load_file(path: Path, policy: PagePolicy = PagePolicy()) -> Document:
    """One corpus file; `policy` decides what an HTML page may say about itself (see PagePolicy)."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return load_markdown(path)
    if suffix == ".txt":
        return load_text(path)
    if suffix in HTML_SUFFIXES:
        return load_saved_page(path, policy)
    raise LoaderError(f"{path}: unsupported file type {suffix!r} (use .md, .txt or .html).")


def load_saved_page(path: Path, policy: PagePolicy = PagePolicy()) -> Document:
    """An HTML file, with the crawler's sidecar JSON (final URL, fetch time) when there is one."""
    info = _sidecar(path.with_suffix(".json"))
    url = info.get("final_url") or info.get("url") or ""
    fetched = str(info.get("fetched_at") or "")[:10]
    return load_html(path.read_bytes(), url=url, where=str(path), defaults={"as_of": fetched}, policy=policy)


def _sidecar(path: Path) -> dict:
    """The crawler's notes on a saved page ({} when there are none), checked for shape."""
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise LoaderError(f"{path}: not valid JSON ({exc}).") from exc
    if not isinstance(info, dict):
        raise LoaderError(f"{path}: a crawl sidecar must be a JSON object.")
    for key in ("url", "final_url"):
        value = info.get(key)
        if value and (not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https")):
            raise LoaderError(f"{path}: {key} {str(value)[:80]!r} is not an http(s) URL.")
    return info


def is_crawled_page(path: Path) -> bool:
    """An HTML page with the crawler's sidecar beside it: content from the web, not from us."""
    return path.suffix.lower() in HTML_SUFFIXES and path.with_suffix(".json").is_file()


def iter_corpus_files(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        raise LoaderError(f"{folder}: corpus folder not found.")
    for path in sorted(folder.rglob("*")):
        if (
            path.is_file()
            and path.suffix.lower() in CORPUS_SUFFIXES
            and not path.name.startswith((".", "_"))
            and path.stem.upper() != "README"
        ):
            yield path


@dataclass(frozen=True)
class SkippedFile:
    """A crawled page left out of the build, and why (for the build's report)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class CorpusLoad:
    """What loading the corpus folders gave: the documents, and the crawled pages left out."""

    documents: list[Document]
    skipped: list[SkippedFile]


def load_corpus(folders: Iterable[Path] | Path, policy: PagePolicy = PagePolicy()) -> list[Document]:
    """Every document under the given folders; any file that cannot be loaded stops with its error."""
    return _load_folders(folders, policy, skip_bad_pages=False).documents


def load_corpus_report(folders: Iterable[Path] | Path, policy: PagePolicy = PagePolicy()) -> CorpusLoad:
    """Every document under the given folders, leaving out crawled pages that cannot be used.

    The rule: a crawled page (HTML with the crawler's sidecar JSON, `is_crawled_page`) is content
    from the web; one bad page must not stop the build, so it is skipped and listed with its
    reason — it cannot be loaded, or its id is already taken (a curated file keeps its id). Every
    other file was put in the corpus by the content team; its error stops the load, to be fixed.
    """
    return _load_folders(folders, policy, skip_bad_pages=True)


def _load_folders(folders: Iterable[Path] | Path, policy: PagePolicy, skip_bad_pages: bool) -> CorpusLoad:
    folders = [folders] if isinstance(folders, Path) else list(folders)
    loaded: list[tuple[Document, bool]] = []
    skipped: list[SkippedFile] = []
    for path in (p for folder in folders for p in iter_corpus_files(Path(folder))):
        crawled = skip_bad_pages and is_crawled_page(path)
        try:
            loaded.append((load_file(path, policy), crawled))
        except Exception as exc:  # noqa: BLE001 - a crawled page is untrusted input: any failure skips it
            if not crawled:
                raise
            skipped.append(SkippedFile(path, _reason(exc, path)))
    taken = {doc.id: doc.path for doc, crawled in loaded if not crawled}
    documents = []
    for doc, crawled in loaded:
        if crawled and doc.id in taken:
            skipped.append(SkippedFile(Path(doc.path), f"document id {doc.id!r} is already taken by {taken[doc.id]}"))
            continue
        taken.setdefault(doc.id, doc.path)
        documents.append(doc)
    return CorpusLoad(documents, skipped)


def _reason(exc: Exception, path: Path) -> str:
    message = str(exc).removeprefix(f"{path}: ")
    return message if isinstance(exc, LoaderError) else f"{type(exc).__name__}: {message}"[:300]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LoaderError(f"{path}: not UTF-8 text ({exc}).") from exc

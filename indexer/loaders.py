"""Loaders: files on disk (Markdown, plain text, HTML, crawled pages) to clean `kb.Document`s.

Every loader produces clean text through `kb.BlockBuilder`, so headings and paragraphs become
blocks with exact offsets and the chunker never has to guess at structure. Web-page furniture
(navigation, cookie banners, "Skip to content", video and icon labels) is dropped here, because
whatever passes this point gets indexed and quoted.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from bs4 import BeautifulSoup, Comment, NavigableString, Tag
from markdown_it import MarkdownIt

from kb.core.records import BlockBuilder, Document

SOURCE_TYPES = ("promo", "cluster", "agency", "portal", "registry", "biobank", "programme", "research-access")
REQUIRED_FRONT_MATTER = ("title", "url", "source_type")
CORPUS_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm")


class LoaderError(ValueError):
    """A source file that cannot become a document; the message names the file and the fix."""


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


def _document(doc_id: str, meta: dict, builder: BlockBuilder, where: str, defaults: dict | None = None) -> Document:
    meta = {**(defaults or {}), **{k: v for k, v in meta.items() if v not in (None, "")}}
    missing = [k for k in REQUIRED_FRONT_MATTER if not meta.get(k)]
    if missing:
        raise LoaderError(f"{where}: missing front matter {', '.join(missing)} (needed: {', '.join(REQUIRED_FRONT_MATTER)}).")
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


# ---------------------------------------------------------------------------------------------
# Markdown

_md = MarkdownIt("commonmark")


def load_markdown(path: Path) -> Document:
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
    defaults: dict | None = None,
    where: str = "<html>",
) -> Document:
    """A web page as a document: title and canonical URL from the page, furniture removed.

    Pages we render ourselves carry `<meta name="kb:...">` tags (source type, organisation, date,
    sources, id), so a crawled copy of the corpus indexes exactly like the files it came from.
    """
    soup = BeautifulSoup(html, "html.parser")
    meta = _html_meta(soup)
    canonical = _canonical_url(soup, url)
    title = meta.get("title") or _page_title(soup) or canonical or where
    fields = {"title": title, "url": canonical or url, **{k: v for k, v in meta.items() if k != "title"}}

    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all(_is_furniture):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    builder = BlockBuilder()
    _walk_html(root, builder, [title])
    doc_id = doc_id or meta.get("id") or _id_from_url(canonical or url or where)
    return _document(str(doc_id), fields, builder, where, defaults)


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


def _walk_html(node: Tag, builder: BlockBuilder, title_h1: list[str]) -> None:
    """Blocks of `node` in reading order. `title_h1` holds the page title until the first <h1>
    repeating it has been skipped (it names the page, it is not a section); a second one is kept."""
    pending: list[str] = []

    def flush() -> None:
        text = " ".join(" ".join(pending).split())
        pending.clear()
        if text and not FURNITURE_LINES.match(text):
            builder.paragraph(text)

    for child in node.children:
        if isinstance(child, NavigableString):
            if str(child).strip():
                pending.append(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name.lower() if child.name else ""
        if name in _INLINE:
            pending.append(child.get_text(" "))
        elif name in _HEADINGS:
            flush()
            text = " ".join(child.get_text(" ").split())
            if text and not FURNITURE_LINES.match(text):
                if name == "h1" and text in title_h1 and not builder.blocks:
                    title_h1.clear()
                else:
                    builder.heading(text, _HEADINGS[name])
        elif name in _TEXT_BLOCKS and not child.find(list(_TEXT_BLOCKS | set(_HEADINGS))):
            flush()
            text = child.get_text() if name == "pre" else _block_text(child)
            if not FURNITURE_LINES.match(text.strip()):
                builder.paragraph(text)
        else:
            flush()
            _walk_html(child, builder, title_h1)
    flush()


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


def _html_meta(soup: BeautifulSoup) -> dict:
    out: dict = {}
    for tag in soup.find_all("meta"):
        name = (tag.get("name") or tag.get("property") or "").strip().lower()
        content = tag.get("content")
        if not content:
            continue
        if name.startswith("kb:"):
            key = name[3:]
            out[key] = content.split() if key == "sources" else content.strip()
        elif name == "og:title" and "title" not in out:
            out["title"] = content.strip()
    return out


def _page_title(soup: BeautifulSoup) -> str:
    if soup.title and soup.title.get_text(strip=True):
        return " ".join(soup.title.get_text().split())
    h1 = soup.find("h1")
    return " ".join(h1.get_text().split()) if h1 else ""


def _canonical_url(soup: BeautifulSoup, url: str) -> str:
    from urllib.parse import urljoin

    for link in soup.find_all("link"):
        rel = link.get("rel") or []
        rel = rel if isinstance(rel, list) else str(rel).split()
        if "canonical" in [r.lower() for r in rel] and link.get("href"):
            href = urljoin(url, link["href"].strip()) if url else link["href"].strip()
            if urlsplit(href).scheme in ("http", "https"):
                return href
    return url


def _id_from_url(url: str) -> str:
    parts = urlsplit(url)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{parts.netloc}{parts.path}".lower()).strip("-")[:80]
    digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else digest


# ---------------------------------------------------------------------------------------------
# Files and folders


def load_file(path: Path, defaults: dict | None = None) -> Document:
    """One corpus file; `defaults` fill front matter a file lacks (e.g. source_type of crawled pages)."""
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return load_markdown(path)
    if suffix == ".txt":
        return load_text(path)
    if suffix in (".html", ".htm"):
        return load_saved_page(path, defaults)
    raise LoaderError(f"{path}: unsupported file type {suffix!r} (use .md, .txt or .html).")


def load_saved_page(path: Path, defaults: dict | None = None) -> Document:
    """An HTML file, with the crawler's sidecar JSON (final URL, fetch time) when there is one."""
    sidecar = path.with_suffix(".json")
    info = {}
    if sidecar.is_file():
        try:
            info = json.loads(sidecar.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise LoaderError(f"{sidecar}: not valid JSON ({exc}).") from exc
    url = info.get("final_url") or info.get("url") or ""
    fallback = {"as_of": (info.get("fetched_at") or "")[:10], **(defaults or {})}
    return load_html(path.read_bytes(), url=url, where=str(path), defaults={k: v for k, v in fallback.items() if v})


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


def load_corpus(folders: Iterable[Path] | Path, defaults: dict | None = None) -> list[Document]:
    """Every document under the given folders; errors name the file and stop the build."""
    if isinstance(folders, Path):
        folders = [folders]
    return [load_file(path, defaults) for folder in folders for path in iter_corpus_files(Path(folder))]


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LoaderError(f"{path}: not UTF-8 text ({exc}).") from exc

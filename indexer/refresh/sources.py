"""corpus/sources.yaml: the sites behind the corpus pages, as data the refresh crawls.

Each entry is one site: the URLs the corpus cites on it (every one is crawled as a start URL, so
each cited page is checked on every refresh), how deep to follow links from them, which domains
the crawl may enter, and how many days pass before the site is due again::

    sources:
      - id: medcom-dk                  # a-z, 0-9 and '-'; names the site in reports and state
        urls: [https://www.medcom.dk/] # start URLs (what the pages cite)
        allow_domains: [medcom.dk]     # subdomains included
        depth: 0                       # 0: only the listed URLs; 1: also the pages they link to
        refresh_days: 7                # due again this many days after the last complete crawl
        max_pages: 50                  # optional (default 50)
        index: false                   # optional: also index the crawled pages (default false)
        source_type: agency            # required when index is true
        enabled: true                  # optional: false skips the site (default true)

The file is generated (`python -m indexer sources --write`) from every corpus page's `url` and
`sources` front matter, keeping the settings of entries that exist; `--check` (and a test) fails
when a cited URL is missing. Loading validates every entry and reports all problems at once, each
naming the file and the entry.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from indexer.crawl.urls import host_allowed, normalize_domain, normalize_host, normalize_url
from indexer.loaders import SOURCE_TYPES
from kb.core.records import Document

SOURCE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
REQUIRED = ("id", "urls", "allow_domains", "depth", "refresh_days")
# (low, high) of each whole-number field
BOUNDS = {"depth": (0, 5), "refresh_days": (1, 366), "max_pages": (1, 10_000)}
HEADER = """\
# The sites behind the corpus pages, crawled by `python -m indexer refresh` (docs/CONTENT.md).
# Generated from every page's `url` and `sources` by `python -m indexer sources --write`, which
# keeps each entry's settings; edit depth, refresh_days, max_pages, index, source_type or enabled
# by hand. Fields: id, urls (start URLs: the cited pages), allow_domains, depth (0: only the listed
# URLs), refresh_days, max_pages, index (also index the crawled pages), source_type, enabled.
"""


class SourcesFileError(ValueError):
    """sources.yaml cannot be used; the message names the file and every entry at fault."""


@dataclass(frozen=True)
class Source:
    id: str
    urls: tuple[str, ...]
    allow_domains: tuple[str, ...]
    depth: int
    refresh_days: int
    max_pages: int = 50
    index: bool = False
    source_type: str = ""
    enabled: bool = True

    def as_yaml(self) -> dict:
        out = {"id": self.id, "urls": list(self.urls), "allow_domains": list(self.allow_domains),
               "depth": self.depth, "refresh_days": self.refresh_days}
        defaults = {f.name: f.default for f in fields(Source) if f.name not in out}
        out.update({name: getattr(self, name) for name, default in defaults.items() if getattr(self, name) != default})
        return out


# ---- loading ---------------------------------------------------------------------------------

def load_sources(path: Path) -> list[Source]:
    """The sources of `path`, validated; SourcesFileError listing every problem otherwise."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourcesFileError(f"{path}: not found; generate it with `python -m indexer sources --write`") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SourcesFileError(f"{path}: cannot be read as YAML ({exc})") from None
    if not isinstance(raw, dict) or set(raw) != {"sources"} or not isinstance(raw["sources"], list):
        raise SourcesFileError(f"{path}: must be a mapping with one key, `sources`, holding a list of sites")
    errors: list[str] = []
    out: list[Source] = []
    for i, entry in enumerate(raw["sources"]):
        where = f"{path}: sources[{i}]" + (f" ({entry.get('id')!r})" if isinstance(entry, dict) and "id" in entry else "")
        problems: list[str] = []
        source = _source(entry, problems)
        errors += [f"{where}: {p}" for p in problems]
        if source is not None:
            out.append(source)
    errors += _duplicates(path, out)
    if errors:
        raise SourcesFileError("; ".join(errors))
    return out


def _source(entry: object, problems: list[str]) -> Source | None:
    if not isinstance(entry, dict):
        problems.append("must be a mapping of fields")
        return None
    known = {f.name for f in fields(Source)}
    problems += [f"unknown field {key!r} (fields: {', '.join(sorted(known))})" for key in entry if key not in known]
    problems += [f"missing field {key!r}" for key in REQUIRED if key not in entry]
    if problems:
        return None
    values = {"id": _id(entry["id"], problems), "urls": _urls(entry["urls"], problems),
              "allow_domains": _domains(entry["allow_domains"], problems)}
    for name, (low, high) in BOUNDS.items():
        if name in entry:
            values[name] = _whole(name, entry[name], low, high, problems)
    for name in ("index", "enabled"):
        if name in entry:
            if not isinstance(entry[name], bool):
                problems.append(f"{name} must be true or false, not {entry[name]!r}")
            values[name] = entry[name]
    source_type = entry.get("source_type", "") or ""
    if source_type and source_type not in SOURCE_TYPES:
        problems.append(f"source_type {source_type!r} is not one of {', '.join(SOURCE_TYPES)}")
    if entry.get("index") is True and not source_type:
        problems.append("index: true needs a source_type for the crawled pages")
    values["source_type"] = str(source_type)
    if not problems:
        _check_scope(values["urls"], values["allow_domains"], problems)
    return None if problems else Source(**values)


def _id(value: object, problems: list[str]) -> str:
    if not isinstance(value, str) or not SOURCE_ID.fullmatch(value):
        problems.append(f"id must be 1-63 characters of a-z, 0-9 and '-' (starting with a letter or digit), not {value!r}")
        return ""
    return value


def _urls(value: object, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        problems.append("urls must be a non-empty list of http:// or https:// URLs")
        return ()
    for url in value:
        if not isinstance(url, str) or urlsplit(url.strip()).scheme not in ("http", "https"):
            problems.append(f"urls: {url!r} is not an http:// or https:// URL")
            continue
        try:
            normalize_url(url)
        except ValueError as exc:
            problems.append(f"urls: {url!r} is not a valid URL ({exc})")
    return tuple(str(u).strip() for u in value)


def _domains(value: object, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(d, str) and normalize_domain(d) for d in value):
        problems.append(f"allow_domains must be a non-empty list of domain names, not {value!r}")
        return ()
    return tuple(normalize_domain(d) for d in value)


def _whole(name: str, value: object, low: int, high: int, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(f"{name} must be a whole number from {low} to {high}, not {value!r}")
        return low
    return value


def _check_scope(urls: tuple[str, ...], domains: tuple[str, ...], problems: list[str]) -> None:
    """Hosts only: ports are the crawl's business (only 80 and 443 unless `--allow-port`)."""
    for url in urls:
        if not host_allowed(urlsplit(url).hostname or "", domains):
            problems.append(f"urls: {url!r} is outside allow_domains {list(domains)}")


def _duplicates(path: Path, sources: list[Source]) -> list[str]:
    errors, ids, urls = [], {}, {}
    for s in sources:
        if s.id in ids:
            errors.append(f"{path}: id {s.id!r} is used by two entries")
        ids[s.id] = s
        for url in s.urls:
            key = normalize_url(url)
            if key in urls and urls[key] != s.id:
                errors.append(f"{path}: {url!r} is listed by both {urls[key]!r} and {s.id!r}")
            urls.setdefault(key, s.id)
    return errors


# ---- deriving from the corpus ----------------------------------------------------------------

def cited_urls(docs: Iterable[Document]) -> dict[str, list[str]]:
    """Every http(s) URL the pages cite (`url` and `sources`), with the ids of the pages citing it."""
    out: dict[str, list[str]] = {}
    for doc in docs:
        for url in (doc.url, *doc.sources):
            if urlsplit(url).scheme in ("http", "https"):
                out.setdefault(url, [])
                if doc.id not in out[url]:
                    out[url].append(doc.id)
    return dict(sorted(out.items()))


def site_of(url: str) -> str:
    """The site a URL belongs to: its host without a leading `www.`."""
    host = normalize_host(urlsplit(url).hostname or "")
    return host[4:] if host.startswith("www.") and host.count(".") > 1 else host


def generate_sources(docs: Iterable[Document], existing: Iterable[Source] = (), *, refresh_days: int = 7) -> list[Source]:
    """sources.yaml's entries for the URLs the pages cite: an entry keeps its id and settings and gets
    the cited URLs within its allow_domains; the other URLs get one new entry per site. Entries left
    with no cited URL are dropped (the file is derived from the pages)."""
    kept = list(existing)
    assigned: dict[str, list[str]] = {s.id: [] for s in kept}
    new: dict[str, list[str]] = {}
    for url in cited_urls(docs):
        host = urlsplit(url).hostname or ""
        owner = _owner(host, kept)
        (assigned[owner.id] if owner else new.setdefault(site_of(url), [])).append(url)
    out = [replace(s, urls=tuple(assigned[s.id])) for s in kept if assigned[s.id]]
    taken = {s.id for s in out}
    for site, urls in sorted(new.items()):
        out.append(Source(id=_free_id(site, taken), urls=tuple(urls), allow_domains=(site,), depth=0,
                          refresh_days=refresh_days))
    return sorted(out, key=lambda s: s.id)


def _owner(host: str, sources: list[Source]) -> Source | None:
    """The source whose allowed domain matches `host` most closely (en.digst.dk before digst.dk)."""
    matches = [(len(d), s) for s in sources for d in s.allow_domains if host_allowed(host, (d,))]
    return max(matches, key=lambda m: m[0])[1] if matches else None


def _free_id(site: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", site.lower()).strip("-")[:56] or "site"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def dump_sources(sources: Iterable[Source]) -> str:
    """The text of sources.yaml (header comment, then the entries)."""
    body = yaml.safe_dump({"sources": [s.as_yaml() for s in sources]}, sort_keys=False, allow_unicode=True, width=120)
    return HEADER + body


def missing_urls(sources: Iterable[Source], docs: Iterable[Document]) -> dict[str, list[str]]:
    """Cited URLs no source lists (compared in canonical form), with the pages citing each."""
    listed = {normalize_url(u) for s in sources for u in s.urls}
    return {url: ids for url, ids in cited_urls(docs).items() if normalize_url(url) not in listed}


def by_id(sources: Iterable[Source]) -> Mapping[str, Source]:
    return {s.id: s for s in sources}

"""The change report of one refresh: what changed on the sources, what the rebuild did, which
corpus pages to look at. Written as JSON (for programs) and Markdown (for people), both under
`<refresh dir>/reports/` (`latest.json` and `latest.md` are the newest).

Everything quoted from crawled pages — URLs, lines of text, reasons a server gave — is untrusted:
the Markdown escapes it (`md_text`), so a page cannot put a link, an image, HTML, a heading or a
table row into the report.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kb.core.fsutil import atomic_write_text

from .compare import PageChange

KEEP_REPORTS = 50  # report pairs kept in reports/ besides latest.*
SECTIONS = (("changed", "Changed"), ("gone", "Gone"), ("unreachable", "Unreachable"), ("new", "New"),
            ("back", "Back again"), ("unchecked", "Cannot be checked (not HTML, or too large)"))
_MD_INLINE = re.compile(r"([\\`*_{}\[\]()!|~$^])")  # emphasis, code, links, images, tables, ...
_MD_LEADING = re.compile(r"^(#|[+-]|\d+(?=[.)]))")  # a heading or list marker where a line's text starts
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def md_text(value: object) -> str:
    """`value` as literal Markdown text on one line: no markup, link, HTML or line break survives."""
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(r"\\\1", text)
    match = _MD_LEADING.match(text)
    if match:  # "# x" after a list marker is a heading, "1. x" a nested list: make the marker literal
        cut = match.end() + (1 if match.group(0)[0].isdigit() else 0)
        text = text[: cut - 1] + "\\" + text[cut - 1:]
    return text


@dataclass
class SiteSummary:
    id: str
    pages_read: int
    not_read: int
    seconds: float
    complete: bool
    failure: str = ""


@dataclass
class IndexSummary:
    before: str | None
    after: str | None
    built: bool  # a new version was published
    kept: bool  # the previous version was kept on purpose (a crawl failed)
    note: str = ""
    documents: int = 0
    chunks: int = 0
    added_documents: int = 0
    changed_documents: int = 0
    removed_documents: int = 0
    encoded_by: dict[str, int] = field(default_factory=dict)
    reused_by: dict[str, int] = field(default_factory=dict)


@dataclass
class FlaggedPage:
    doc_id: str
    title: str
    as_of: str
    path: str
    sources: list[dict]  # {"url", "change", "since"}


@dataclass
class RefreshReport:
    started_at: str
    finished_at: str = ""
    failures: list[str] = field(default_factory=list)
    sites: list[SiteSummary] = field(default_factory=list)
    not_due: list[dict] = field(default_factory=list)  # {"id", "due"}
    changes: list[PageChange] = field(default_factory=list)
    still_away: list[dict] = field(default_factory=list)  # {"url", "status", "since", "detail"}
    flagged: list[FlaggedPage] = field(default_factory=list)
    index: IndexSummary | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def count(self, change: str) -> int:
        return sum(1 for c in self.changes if c.change == change)

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(k)} {k}" for k, _ in SECTIONS if self.count(k))
        idx = self.index
        built = ("index not rebuilt" if idx is None else idx.note)
        return (f"refresh {'ok' if self.ok else 'FAILED'}: {len(self.sites)} sites crawled, {len(self.not_due)} not due; "
                f"pages: {counts or 'no changes'}; {len(self.flagged)} corpus pages to look at; {built}")

    def as_dict(self) -> dict:
        return {"ok": self.ok, **asdict(self)}

    def to_markdown(self) -> str:
        lines = [f"# Source refresh, {md_text(self.started_at)}", ""]
        lines.append("**Result: ok.**" if self.ok else "**Result: FAILED.** " + " ".join(md_text(f) for f in self.failures))
        lines += ["", "## Index", "", md_text(self.index.note if self.index else "not rebuilt"), ""]
        lines += _flagged_md(self.flagged)
        lines += ["## What changed on the sources", ""]
        if not self.changes:
            lines += ["Nothing changed on the sites crawled.", ""]
        for key, heading in SECTIONS:
            rows = [c for c in self.changes if c.change == key]
            if rows:
                lines += [f"### {heading} ({len(rows)})", ""] + [x for c in rows for x in _change_md(c)] + [""]
        if self.still_away:
            lines += [f"### Still gone or unreachable ({len(self.still_away)})", ""]
            lines += [f"- {md_text(a['url'])}: {md_text(a['status'])} since {md_text(a['since'])}" for a in self.still_away]
            lines.append("")
        return "\n".join(lines + _sites_md(self.sites, self.not_due))


def _flagged_md(flagged: list[FlaggedPage]) -> list[str]:
    lines = [f"## Corpus pages to look at ({len(flagged)})", ""]
    if not flagged:
        return lines + ["No corpus page cites a source that changed, went away or stopped answering.", ""]
    lines += ["| page | as of | file | source | what happened |", "|---|---|---|---|---|"]
    for page in flagged:
        for s in page.sources:
            lines.append(f"| {md_text(page.title)} ({md_text(page.doc_id)}) | {md_text(page.as_of)} | "
                         f"{md_text(page.path)} | {md_text(s['url'])} | {md_text(s['change'])} {md_text(s['since'])} |")
    return lines + [""]


def _change_md(change: PageChange) -> list[str]:
    where = f" → {md_text(change.final_url)}" if change.final_url and change.final_url != change.url else ""
    detail = f": {md_text(change.detail)}" if change.detail else ""
    lines = [f"- {md_text(change.url)}{where} ({md_text(change.source)}){detail}"]
    lines += [f"  - removed: {md_text(text)}" for text in change.removed]
    lines += [f"  - added: {md_text(text)}" for text in change.added]
    return lines


def _sites_md(sites: list[SiteSummary], not_due: list[dict]) -> list[str]:
    lines = ["## Sites", ""]
    if sites:
        lines += ["| site | pages read | not read | seconds | result |", "|---|---:|---:|---:|---|"]
        for s in sites:
            result = md_text(s.failure) if s.failure else ("ok" if s.complete else "ok, stopped at a cap")
            lines.append(f"| {md_text(s.id)} | {s.pages_read} | {s.not_read} | {s.seconds:.1f} | {result} |")
        lines.append("")
    if not_due:
        lines.append(f"Not due ({len(not_due)}): " + ", ".join(f"{md_text(d['id'])} ({md_text(d['due'])})" for d in not_due))
        lines.append("")
    return lines


def write_report(report: RefreshReport, folder: Path, stamp: str) -> tuple[Path, Path]:
    """`<stamp>.json` and `<stamp>.md` in `folder`, copied to latest.*; older reports pruned."""
    folder = Path(folder)
    data = json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n"
    markdown = report.to_markdown() + "\n"
    json_path, md_path = folder / f"{stamp}.json", folder / f"{stamp}.md"
    for path, text in ((json_path, data), (md_path, markdown), (folder / "latest.json", data),
                       (folder / "latest.md", markdown)):
        atomic_write_text(path, text)
    for old in sorted(folder.glob("2*.json"))[:-KEEP_REPORTS]:
        old.unlink(missing_ok=True)
        old.with_suffix(".md").unlink(missing_ok=True)
    return json_path, md_path

"""What the refresh remembers between runs, in one folder (`KB_REFRESH_DIR`, default var/refresh/).

    state.json           every site's last crawl and every page's last known state (below)
    text/<sha256>.txt    cleaned text of pages, by content hash (for the "what changed" excerpts)
    html/<sha256>.html   raw pages of sites with `index: true` (what the next build indexes)
    source_events.json   what changed, went or stopped answering: read by the coverage report
                         (format owned by kb.insight.staleness)
    reports/             one change report per run (<stamp>.json, <stamp>.md) and latest.json/.md
    .lock                one refresh at a time (flock)

Every file is written whole and renamed into place (kb.core.fsutil), and the blobs are
content-addressed and written before state.json names them, so a refresh killed at any point
leaves the previous state, or the new one, never a mix. Blobs no state names are removed after
the state is saved.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from kb.core.fsutil import atomic_write_bytes, atomic_write_text

STATE_FORMAT = 1
STATUSES = ("ok", "gone", "unreachable", "unchecked")


class RefreshStateError(RuntimeError):
    """The state folder cannot be used; the message says what to do."""


@dataclass
class PageRecord:
    """One URL as the refresh last saw it (key: the URL in canonical form)."""

    url: str
    source: str
    status: str  # one of STATUSES
    final_url: str = ""
    text_sha256: str = ""  # of the cleaned text, the last time the page was read (kept while it is away)
    html_sha256: str = ""  # raw page, kept for sites that are indexed
    first_seen: str = ""
    changed_at: str = ""  # when the cleaned text last changed (first_seen while it never has)
    checked_at: str = ""  # last time the page was read
    status_since: str = ""  # when the current status began
    detail: str = ""  # why it is gone, unreachable or unchecked
    cited: tuple[str, ...] = ()  # the URL as sources.yaml lists it (start URLs only)


@dataclass
class SourceRecord:
    last_ok_at: str = ""  # last crawl that completed (what "due" counts from)
    last_attempt_at: str = ""
    last_error: str = ""  # why the last attempt failed ("" when it did not)


@dataclass
class RefreshState:
    sources: dict[str, SourceRecord] = field(default_factory=dict)
    pages: dict[str, PageRecord] = field(default_factory=dict)

    def pages_of(self, source_id: str) -> dict[str, PageRecord]:
        return {url: p for url, p in self.pages.items() if p.source == source_id}

    def to_json(self) -> str:
        payload = {"format": STATE_FORMAT,
                   "sources": {k: asdict(v) for k, v in sorted(self.sources.items())},
                   "pages": {k: {**asdict(v), "cited": list(v.cited)} for k, v in sorted(self.pages.items())}}
        return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "RefreshState":
        payload = json.loads(text)
        if payload.get("format") != STATE_FORMAT:
            raise ValueError(f"format {payload.get('format')!r}, expected {STATE_FORMAT}")
        page_fields = {f.name for f in fields(PageRecord)}
        pages = {}
        for url, row in payload["pages"].items():
            record = PageRecord(**{k: v for k, v in row.items() if k in page_fields})
            record.cited = tuple(record.cited)
            if record.status not in STATUSES:
                raise ValueError(f"page {url!r} has status {record.status!r}")
            pages[url] = record
        sources = {k: SourceRecord(**v) for k, v in payload["sources"].items()}
        return cls(sources, pages)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RefreshStore:
    """The state folder: state.json, text and page blobs, the lock."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @property
    def state_file(self) -> Path:
        return self.folder / "state.json"

    @property
    def reports(self) -> Path:
        return self.folder / "reports"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the refresh lock; RefreshStateError at once when another refresh holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a+b") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RefreshStateError(f"another refresh is running on {self.folder}; try again when it ends") from None
            yield

    def load(self) -> RefreshState:
        try:
            text = self.state_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return RefreshState()
        try:
            return RefreshState.from_json(text)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RefreshStateError(
                f"{self.state_file} is damaged ({exc}); move it away to start over "
                f"(the next refresh then records every page as new)") from None

    def save(self, state: RefreshState) -> None:
        atomic_write_text(self.state_file, state.to_json())
        self._collect_garbage(state)

    def put_text(self, text: str) -> str:
        digest = sha256_text(text)
        path = self.folder / "text" / f"{digest}.txt"
        if not path.is_file():
            atomic_write_text(path, text)
        return digest

    def text(self, digest: str) -> str | None:
        try:
            return (self.folder / "text" / f"{digest}.txt").read_text(encoding="utf-8") if digest else None
        except OSError:
            return None

    def put_html(self, body: bytes) -> str:
        digest = hashlib.sha256(body).hexdigest()
        path = self.folder / "html" / f"{digest}.html"
        if not path.is_file():
            atomic_write_bytes(path, body)
        return digest

    def html(self, digest: str) -> bytes:
        path = self.folder / "html" / f"{digest}.html"
        try:
            return path.read_bytes()
        except OSError as exc:
            raise RefreshStateError(f"{path} is missing ({exc}); run `indexer refresh --all` to fetch it again") from None

    def _collect_garbage(self, state: RefreshState) -> None:
        wanted = {("text", p.text_sha256) for p in state.pages.values()} | {
            ("html", p.html_sha256) for p in state.pages.values()}
        for kind, suffix in (("text", ".txt"), ("html", ".html")):
            folder = self.folder / kind
            for path in folder.glob(f"*{suffix}") if folder.is_dir() else ():
                if (kind, path.stem) not in wanted:
                    path.unlink(missing_ok=True)

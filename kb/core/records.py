"""Records that flow through the pipeline: a cleaned document and the blocks it is made of.

A document's `text` is the single source of truth for citations: every offset anywhere in the
system is a character offset into it, so a person can check a citation by slicing the text.
Loaders (in `indexer/`) are responsible for producing `text` and its `blocks`; `kb` never parses
HTML or Markdown itself.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Block:
    """A heading or a paragraph: a span of the document's clean text."""

    kind: str  # "heading" | "paragraph"
    start: int
    end: int
    level: int = 0  # heading level (1 = top); 0 for paragraphs


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    url: str
    source_type: str
    text: str
    blocks: tuple[Block, ...] = ()
    organisation: str = ""
    as_of: str = ""
    sources: tuple[str, ...] = ()
    path: str = ""  # where the loader found it, for humans; not part of identity

    def content_hash(self) -> str:
        """Hash of everything that changes what gets indexed (not the file path)."""
        payload = json.dumps(
            {
                "id": self.id,
                "title": self.title,
                "url": self.url,
                "source_type": self.source_type,
                "organisation": self.organisation,
                "as_of": self.as_of,
                "sources": list(self.sources),
                "text": self.text,
                "blocks": [asdict(b) for b in self.blocks],
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DocumentInfo:
    """What a citation needs of a document, kept in memory for every document of an open index."""

    doc_id: str
    title: str
    url: str
    source_type: str
    organisation: str
    as_of: str


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage: `text == document.text[start:end]`, always."""

    id: str
    doc_id: str
    section: str  # heading path, " > "-joined; "" before the first heading
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Citation:
    title: str
    url: str
    section: str
    source_type: str
    doc_id: str
    organisation: str = ""
    as_of: str = ""
    start: int = 0
    end: int = 0


@dataclass
class Hit:
    rank: int
    score: float
    chunk: Chunk
    citation: Citation
    dense_score: float | None = None
    keyword_score: float | None = None
    extras: dict = field(default_factory=dict)
    row: int = -1  # the chunk's row in the index version (vector id), for stored span look-ups


class BlockBuilder:
    """Accumulates clean text and its blocks, so loaders never compute offsets by hand."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.blocks: list[Block] = []

    def add(self, kind: str, text: str, level: int = 0) -> None:
        text = " ".join(text.split()) if kind == "heading" else _tidy_paragraph(text)
        if not text:
            return
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        self.blocks.append(Block(kind=kind, start=start, end=self._length, level=level))

    def heading(self, text: str, level: int) -> None:
        self.add("heading", text, level)

    def paragraph(self, text: str) -> None:
        self.add("paragraph", text)

    @property
    def text(self) -> str:
        return "".join(self._parts)


def _tidy_paragraph(text: str) -> str:
    """Collapse runs of spaces inside lines but keep single line breaks (list items)."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line)

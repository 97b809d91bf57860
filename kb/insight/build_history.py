"""Build history: the versions an index folder still holds, and what changed from one to the next.

Every version's manifest records its counts, how many chunks each dense retriever encoded and
reused (`build.encoded`, `build.reused`), and a content hash per document (`documents`). Comparing
the document hashes of neighbouring versions says which documents a build added, changed or
removed. Only the versions a build keeps (three, `kb.index.layout.IndexLayout.prune`) are on disk,
so the oldest one listed cannot say what it changed (`previous` is None).

`indexer status --history` prints this; the coverage page shows the last builds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kb.index.layout import MANIFEST, IndexCorruptError, IndexLayout, read_manifest


@dataclass(frozen=True)
class DocumentChanges:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildEntry:
    build_id: str
    built_at: str
    current: bool
    documents: int
    chunks: int
    encoded: dict[str, int] = field(default_factory=dict)  # per dense retriever
    reused: dict[str, int] = field(default_factory=dict)
    seconds: float | None = None
    previous: str | None = None  # build id compared with; None when it was pruned (or there was none)
    changes: DocumentChanges | None = None  # None when there is nothing to compare with

    def as_dict(self) -> dict:
        changes = None if self.changes is None else {k: list(v) for k, v in vars(self.changes).items()}
        return {**{k: v for k, v in vars(self).items() if k != "changes"}, "changes": changes}


def build_history(index_dir: Path) -> list[BuildEntry]:
    """The versions in `index_dir`, newest first, each compared with the one built before it.

    A version whose manifest cannot be read is left out (opening it would fail too)."""
    layout = IndexLayout(Path(index_dir))
    if not layout.versions.is_dir():
        return []
    found = []
    for folder in layout.versions.iterdir():
        try:
            # oldest first as the prune sees age: when the manifest was written (built_at has whole seconds)
            found.append(((folder / MANIFEST).stat().st_mtime_ns, folder.name, read_manifest(folder)))
        except (OSError, IndexCorruptError):
            continue
    manifests = [m for _, _, m in sorted(found, key=lambda f: f[:2])]
    try:
        current = layout.current_build_id()
    except IndexCorruptError:
        current = None
    entries = [_entry(m, manifests[i - 1] if i else None, current) for i, m in enumerate(manifests)]
    return entries[::-1]


def _entry(manifest: dict, before: dict | None, current: str | None) -> BuildEntry:
    build = manifest.get("build") or {}
    counts = manifest.get("counts") or {}
    return BuildEntry(
        build_id=str(manifest.get("build_id", "")), built_at=str(manifest.get("built_at", "")),
        current=manifest.get("build_id") == current, documents=int(counts.get("documents", 0)),
        chunks=int(counts.get("chunks", 0)), encoded=dict(build.get("encoded") or {}),
        reused=dict(build.get("reused") or {}), seconds=build.get("seconds"),
        previous=None if before is None else str(before.get("build_id", "")),
        changes=None if before is None else document_changes(before.get("documents") or {},
                                                              manifest.get("documents") or {}),
    )


def document_changes(before: dict[str, str], after: dict[str, str]) -> DocumentChanges:
    """Document ids added, changed (another content hash) and removed between two manifests."""
    return DocumentChanges(
        added=tuple(sorted(set(after) - set(before))),
        changed=tuple(sorted(d for d in set(after) & set(before) if after[d] != before[d])),
        removed=tuple(sorted(set(before) - set(after))),
    )

"""The index folder on disk: immutable versions, a CURRENT pointer, and a manifest per version.

Layout::

    <index_dir>/CURRENT                 name of the live version (written atomically)
    <index_dir>/versions/<build_id>/    manifest.json, kb.sqlite, and each retriever's files
    <index_dir>/.staging-<build_id>/    a build in progress (removed by the next build if it died)
    <index_dir>/.build.lock             one build at a time

A version folder is never modified after it is swapped in, which is what lets readers open it
without locks (SQLite `immutable=1`) and lets a running app switch versions between requests.
The manifest lists every data file with its SHA-256; opening a version verifies them.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from kb.core.fsutil import atomic_write_text, sha256_file

FORMAT_VERSION = 2  # 2: retrievers as parts, one vector file pair per dense retriever
MANIFEST = "manifest.json"


class IndexProblem(RuntimeError):
    """Base for index problems that a person must act on; the message says what to do."""


class IndexNotFoundError(IndexProblem):
    pass


class IndexMismatchError(IndexProblem):
    pass


class IndexCorruptError(IndexProblem):
    pass


@dataclass(frozen=True)
class IndexLayout:
    root: Path

    @property
    def current_file(self) -> Path:
        return self.root / "CURRENT"

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    @property
    def lock_file(self) -> Path:
        return self.root / ".build.lock"

    def version_dir(self, build_id: str) -> Path:
        return self.versions / build_id

    def staging_dir(self, build_id: str) -> Path:
        return self.root / f".staging-{build_id}"

    def current_build_id(self) -> str | None:
        try:
            value = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return value or None

    def current_dir(self) -> Path | None:
        build_id = self.current_build_id()
        return None if build_id is None else self.version_dir(build_id)

    def point_current_to(self, build_id: str) -> None:
        atomic_write_text(self.current_file, build_id + "\n")

    def stale_staging_dirs(self) -> list[Path]:
        return sorted(self.root.glob(".staging-*")) if self.root.is_dir() else []

    def prune(self, keep: int = 3) -> list[Path]:
        """Drop old versions, never the current one; readers with files open keep working (POSIX)."""
        if not self.versions.is_dir():
            return []
        current = self.current_build_id()
        versions = sorted((p for p in self.versions.iterdir() if p.is_dir()), key=lambda p: p.name)
        doomed = [p for p in versions[:-keep] if p.name != current] if keep else []
        for p in doomed:
            shutil.rmtree(p, ignore_errors=True)
        return doomed


def resolve_version_dir(root: Path) -> Path:
    """The folder holding manifest.json: the live version of an index root, or `root` itself."""
    root = Path(root)
    if (root / MANIFEST).is_file():
        return root
    current = IndexLayout(root).current_dir()
    if current is None or not current.is_dir():
        raise IndexNotFoundError(
            f"No index at {root}. Build one with `python -m indexer build --corpus corpus --index {root}`."
        )
    return current


def read_manifest(version_dir: Path) -> dict:
    try:
        return json.loads((version_dir / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"{version_dir} has no {MANIFEST}; rebuild with `python -m indexer build`.") from exc
    except ValueError as exc:
        raise IndexCorruptError(f"{version_dir / MANIFEST} is not valid JSON ({exc}); rebuild the index.") from exc


def check_format(manifest: dict, version_dir: Path) -> None:
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"The index at {version_dir} has format {manifest.get('format')!r}; this version reads format "
            f"{FORMAT_VERSION}. Rebuild it: `python -m indexer build --corpus corpus --index "
            f"{version_dir.parent.parent} --force`."
        )


def file_checksums(version_dir: Path, names: list[str]) -> dict[str, dict]:
    return {
        name: {"sha256": sha256_file(version_dir / name), "bytes": (version_dir / name).stat().st_size}
        for name in sorted(names)
    }


def verify_checksums(version_dir: Path, manifest: dict, required: list[str]) -> None:
    """Refuse a version whose files are not the ones the build wrote (truncation, edits, bit rot)."""
    expected = manifest.get("files") or {}
    for name in sorted(set(required) | set(expected)):
        path = version_dir / name
        want = expected.get(name)
        if want is None:
            raise IndexCorruptError(f"The manifest in {version_dir} lists no checksum for {name}; rebuild the index.")
        if not path.is_file():
            raise IndexCorruptError(f"{path} is missing; rebuild with `python -m indexer build`.")
        size = path.stat().st_size
        if size != want["bytes"] or sha256_file(path) != want["sha256"]:
            raise IndexCorruptError(
                f"{path} does not match its checksum in the manifest ({size} bytes, expected {want['bytes']}): "
                f"the file is truncated or altered. Rebuild with `python -m indexer build --force`."
            )

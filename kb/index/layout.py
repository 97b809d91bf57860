"""The index folder on disk: immutable versions, a CURRENT pointer, and a manifest per version.

Layout::

    <index_dir>/CURRENT                 name of the live version (written atomically)
    <index_dir>/versions/<build_id>/    manifest.json, kb.sqlite, and each retriever's files
    <index_dir>/.staging-<build_id>/    a build in progress (removed by the next build if it died)
    <index_dir>/.build.lock             one build at a time

A version folder is never modified after it is swapped in, which is what lets readers open it
without locks (SQLite `immutable=1`) and lets a running app switch versions between requests.
The manifest lists every data file with its SHA-256; opening a version verifies them.

CURRENT is read as untrusted: it must name a folder directly inside versions/ (a plain name, no
`/`, no `..`), or the index counts as damaged; an absolute or `../` value never leads a reader
out of the index folder.

Leases. Each process serving a version holds a shared flock on that version's LEASE file
(`VersionLease`, taken and released by kb.search.live), and `prune` deletes only versions whose
lease it can take exclusively at once. So a build never deletes the version a running app still
serves, for example one that kept its last good version because the newer ones failed their checks.
flock locks belong to open files, so they work between gunicorn workers, between the app and the
indexer, and between two readers in one process; they vanish when a process dies.
"""
from __future__ import annotations

import fcntl
import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from kb.core.fsutil import atomic_write_text, sha256_file

FORMAT_VERSION = 2  # 2: retrievers as parts, one vector file pair per dense retriever
MANIFEST = "manifest.json"
LEASE = ".serving.lock"
# What CURRENT may hold: a version folder's name, e.g. 20261127T065844Z-ce3232 (never `.`, `..` or a path).
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

log = logging.getLogger(__name__)


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
        """The version CURRENT names; None when there is none; IndexCorruptError when it names
        anything but a folder inside versions/."""
        try:
            value = self.current_file.read_text(encoding="utf-8", errors="replace").strip()
        except FileNotFoundError:
            return None
        if not value:
            return None
        if not VERSION_NAME.fullmatch(value) or ".." in value:
            raise IndexCorruptError(
                f"CURRENT in the index folder holds {value[:80]!r}, which is not a version name; "
                f"rebuild with `python -m indexer build --force`."
            )
        return value

    def current_dir(self) -> Path | None:
        build_id = self.current_build_id()
        return None if build_id is None else self.version_dir(build_id)

    def point_current_to(self, build_id: str) -> None:
        if not VERSION_NAME.fullmatch(build_id) or ".." in build_id:
            raise ValueError(f"not a version name: {build_id!r}")
        atomic_write_text(self.current_file, build_id + "\n")

    def stale_staging_dirs(self) -> list[Path]:
        return sorted(self.root.glob(".staging-*")) if self.root.is_dir() else []

    def prune(self, keep: int = 3) -> list[Path]:
        """Drop old versions, never the current one nor one a process still serves (its lease is
        held); returns the folders removed."""
        if not self.versions.is_dir():
            return []
        current = self.current_build_id()
        versions = sorted((p for p in self.versions.iterdir() if p.is_dir()), key=_age)
        doomed = [p for p in versions[:-keep] if p.name != current] if keep else []
        return [p for p in doomed if _remove_unleased(p)]


def _age(version_dir: Path) -> tuple[int, str]:
    """Oldest first: by when the manifest was written (two builds in one second have build ids
    that sort by their random suffix), then by name."""
    try:
        return (version_dir.joinpath(MANIFEST).stat().st_mtime_ns, version_dir.name)
    except OSError:
        return (0, version_dir.name)


def _remove_unleased(version_dir: Path) -> bool:
    """Delete `version_dir` while holding its lease exclusively; False (kept) when someone serves it."""
    try:
        fh = open(version_dir / LEASE, "a+b")
    except OSError:  # cannot even create a file there: nobody could have leased it either
        shutil.rmtree(version_dir, ignore_errors=True)
        return True
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("kept %s: a running process still serves it", version_dir.name)
            return False
        shutil.rmtree(version_dir, ignore_errors=True)
        return True


class VersionLease:
    """A shared lock on a version's LEASE file: while held, `IndexLayout.prune` leaves the version be."""

    def __init__(self, fh=None) -> None:
        self._fh = fh

    @classmethod
    def take(cls, version_dir: Path) -> "VersionLease":
        """Lease `version_dir` for serving; IndexProblem when a prune is deleting it right now.

        A read-only index folder where no lease file exists yet gives an empty lease (logged):
        serving must not depend on being able to write.
        """
        path = Path(version_dir) / LEASE
        try:
            fh = open(path, "a+b")
        except PermissionError:
            try:
                fh = open(path, "rb")
            except OSError:
                log.warning("cannot lease %s (read-only, no lease file): a build may prune it", version_dir)
                return cls()
        except FileNotFoundError as exc:
            raise IndexNotFoundError(f"{version_dir} is gone (pruned?)") from exc
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.close()
            raise IndexProblem(f"{version_dir} is being pruned") from exc
        return cls(fh)

    def release(self) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fh.close()  # closing drops the lock


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

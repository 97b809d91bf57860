"""Publishing a staged version: one build at a time, rename into place, then point CURRENT at it.

Each step leaves the index readable: until the rename the new version does not exist for
readers; after it, CURRENT (rewritten atomically) still names the old one until the pointer
moves. `checkpoint` lets the crash-safety tests SIGKILL a build at each of these moments.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

from kb.build.report import BuildError
from kb.core.fsutil import fsync_dir
from kb.core.settings import BUILD_CHECKPOINTS, Settings
from kb.index.layout import IndexLayout

CHECKPOINTS = BUILD_CHECKPOINTS
KEEP_VERSIONS = 3


def checkpoint(settings: Settings, name: str) -> None:
    """Fault injection: the `build_kill_at` setting makes the build SIGKILL itself here."""
    if settings.build_kill_at == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def build_lock(layout: IndexLayout):
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.lock_file, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BuildError(f"Another build is running on {layout.root} (lock {layout.lock_file}).") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def clear_stale_staging(layout: IndexLayout) -> None:
    """Folders of builds that died before publishing: nobody reads them."""
    for stale in layout.stale_staging_dirs():
        shutil.rmtree(stale, ignore_errors=True)


def publish(layout: IndexLayout, staging: Path, build_id: str, settings: Settings) -> None:
    fsync_dir(staging)
    layout.versions.mkdir(exist_ok=True)
    os.rename(staging, layout.version_dir(build_id))
    fsync_dir(layout.versions)
    checkpoint(settings, "published")
    layout.point_current_to(build_id)
    checkpoint(settings, "pointed")
    layout.prune(keep=KEEP_VERSIONS)

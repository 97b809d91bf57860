"""Atomic writes: a failed write leaves the old file and no temp files behind."""
import kb.core.fsutil as fsutil
import pytest


def test_atomic_write_cleans_up_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "x.html"
    target.write_bytes(b"old")

    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(fsutil.os, "replace", boom)
    with pytest.raises(OSError, match="disk on fire"):
        fsutil.atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.html"]
    fsutil.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["x.html"]


def test_atomic_write_creates_the_folder(tmp_path):
    target = tmp_path / "a" / "b" / "c.txt"
    fsutil.atomic_write_text(target, "æøå")
    assert target.read_text(encoding="utf-8") == "æøå"

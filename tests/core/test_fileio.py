"""Atomic writes keep permissions: a new file gets what ``open()`` would give under the umask,
an existing one keeps its mode (an annotation fixed in place stays as the user set it)."""

from __future__ import annotations

import os

from edgevision.core.fileio import atomic_write_text


def test_new_file_follows_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "report.html", "x")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644  # mkstemp alone would leave 0600


def test_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text("old")
    path.chmod(0o640)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.xml"]  # no temporary file left

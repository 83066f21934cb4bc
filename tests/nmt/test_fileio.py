"""Atomic writes leave files and folders with the permissions a plain open() would give."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nmt.fileio import atomic_directory, atomic_write_text, atomic_writer


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_outputs_are_as_readable_as_open_makes_them(tmp_path: Path) -> None:
    expected_file, expected_dir = 0o666 & ~_umask(), 0o777 & ~_umask()
    atomic_write_text(tmp_path / "a.txt", "x")
    with atomic_writer(tmp_path / "b.txt") as handle:
        handle.write("y")
    with atomic_directory(tmp_path / "model") as folder:
        (folder / "config.json").write_text("{}", encoding="utf-8")
    plain = tmp_path / "plain.txt"
    plain.write_text("z", encoding="utf-8")
    assert stat.S_IMODE(plain.stat().st_mode) == expected_file
    for path in (tmp_path / "a.txt", tmp_path / "b.txt"):
        assert stat.S_IMODE(path.stat().st_mode) == expected_file, path  # not mkstemp's 0600
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == expected_dir  # not mkdtemp's 0700
    assert (tmp_path / "b.txt").read_text() == "y" and not list(tmp_path.glob(".*"))

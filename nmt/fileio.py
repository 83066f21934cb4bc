"""Crash-safe writes and text-file opening shared by every driver.

A write goes to a temporary file in the same folder, is fsynced, then renamed over the
target, so a crash never leaves a half-written file that looks complete. Directories are
built under a temporary name and renamed into place the same way.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from nmt.errors import InputError


def fsync_dir(path: Path) -> None:
    """Make a rename or new file in `path` durable (where the filesystem allows)."""
    with contextlib.suppress(OSError):  # some filesystems cannot fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _process_umask() -> int:
    """The umask, read once at import (setting it back at once; imports run before any thread we start)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _process_umask()
FILE_MODE = 0o666 & ~_UMASK  # what open() would give: mkstemp's 0600 would hide outputs from other users
DIR_MODE = 0o777 & ~_UMASK


@contextlib.contextmanager
def atomic_writer(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A file to stream into: on success it is fsynced and renamed onto `path`, on error removed.

    The folder must exist. Readers see the old file or the whole new one, never a part.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` (creating its folder) so that readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path, binary=True) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text version of `atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it replaces `path` whole, on error it vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp.chmod(DIR_MODE)
        yield tmp
        for child in tmp.iterdir():
            if child.is_file():
                with open(child, "rb") as handle:
                    os.fsync(handle.fileno())
        fsync_dir(tmp)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def open_text(path: Path, mode: str = "rt") -> IO[str]:
    """Open a plain or gzipped (by `.gz` suffix) UTF-8 text file."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, mode, encoding="utf-8")  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8")


def read_lines(path: Path) -> list[str]:
    """All lines of a plain or gzipped UTF-8 file, without line ends; errors name the file."""
    try:
        with open_text(path) as handle:
            return handle.read().splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None


def _binary_lines(path: Path | None) -> Iterator[bytes]:
    """Raw lines of a plain or gzipped file, or of stdin, streamed; errors name the file."""
    if path is None:
        yield from sys.stdin.buffer
        return
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as handle:
            yield from handle
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None


def count_lines(path: Path) -> int:
    """Number of lines of a file (a last line without a newline counts)."""
    return sum(1 for _ in _binary_lines(path))


def stream_lines(path: Path | None, start: int = 0, stop: int | None = None) -> Iterator[str]:
    """Decoded lines [start, stop) of a file or stdin, streamed; a line that is not UTF-8 is an error naming it."""
    name = str(path) if path else "stdin"
    for number, raw in enumerate(_binary_lines(path)):
        if number < start:
            continue
        if stop is not None and number >= stop:
            return
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise InputError(f"{name}: line {number + 1} is not UTF-8 text") from None

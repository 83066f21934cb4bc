"""Output that survives a kill: durable chunks, a progress record beside them, and a final rename.

`nmt-translate --output OUT` writes `.OUT.partial` chunk by chunk (`ChunkPlan`: at most 1,000
lines or about 20 seconds of work each, so a kill loses no more); after each chunk the file is
fsynced and `.OUT.progress.json` is replaced atomically with how many input lines and output
bytes are durable, and a fingerprint of everything that decides the output (input, model,
options). Run again, the same command truncates the partial file to the recorded bytes (a chunk
written after the last record is dropped) and continues from the recorded line, so the finished
file is byte for byte what an uninterrupted run writes. A different fingerprint starts over,
with a message. `OUT` itself appears only when the whole output is written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nmt.fileio import atomic_write_text, fsync_dir

_PROBE_BYTES = 1 << 20  # an input is recognised by its size, mtime and the hash of its first MiB


def file_identity(path: Path) -> dict[str, Any]:
    """What identifies an input file's content cheaply, however large it is."""
    stat = path.stat()
    with open(path, "rb") as handle:
        head = hashlib.sha256(handle.read(_PROBE_BYTES)).hexdigest()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head": head}


def fingerprint(facts: dict[str, Any]) -> str:
    """A short hash of JSON-able facts."""
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass
class ResumableWriter:
    """The partial output file, opened at its last durable point; `commit` after each chunk."""

    handle: IO[bytes]
    partial: Path
    record: Path
    fingerprint: str
    lines_done: int
    bytes_done: int

    def write(self, text: str) -> None:
        """Output text (not durable until `commit`)."""
        data = text.encode("utf-8")
        self.handle.write(data)
        self.bytes_done += len(data)

    def written(self) -> bytes:
        """Everything written so far, the chunks of earlier runs included."""
        self.handle.flush()
        return self.partial.read_bytes()

    def commit(self, lines: int) -> None:
        """Make what was written durable and record that `lines` more input lines are done."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.lines_done += lines
        state = {"fingerprint": self.fingerprint, "lines_done": self.lines_done, "bytes_done": self.bytes_done}
        atomic_write_text(self.record, json.dumps(state) + "\n")


def _paths(path: Path) -> tuple[Path, Path]:
    return path.with_name(f".{path.name}.partial"), path.with_name(f".{path.name}.progress.json")


@contextmanager
def resumable_output(
    path: Path, facts: dict[str, Any], say: Any = print, discard: bool = False
) -> Iterator[ResumableWriter]:
    """A writer that continues an interrupted run with the same `facts`, or starts afresh.

    On success the partial file becomes `path` (with `discard`: is removed, its content having been
    used) and the record is removed; on an error both stay, for the next run to continue from.
    `say` reports a resume or a restart.
    """
    partial, record = _paths(path)
    key = fingerprint(facts)
    lines_done = bytes_done = 0
    if record.exists():
        try:
            state = json.loads(record.read_text(encoding="utf-8"))
            same = state.get("fingerprint") == key and partial.exists()
            if same and partial.stat().st_size >= int(state["bytes_done"]):
                lines_done, bytes_done = int(state["lines_done"]), int(state["bytes_done"])
                say(f"resuming {path} at input line {lines_done + 1} (an earlier run was interrupted)")
            else:
                say(f"the input, model or options changed since an interrupted run of {path}: starting over")
        except (ValueError, KeyError, TypeError):
            say(f"{record} is unreadable: starting {path} over")
    mode = "r+b" if bytes_done else "wb"
    with open(partial, mode) as handle:
        handle.truncate(bytes_done)
        handle.seek(bytes_done)
        writer = ResumableWriter(handle, partial, record, key, lines_done, bytes_done)
        if not bytes_done:
            writer.commit(0)
        yield writer
        handle.flush()
        os.fsync(handle.fileno())
    if discard:
        partial.unlink()
    else:
        os.replace(partial, path)
    with suppress(FileNotFoundError):
        record.unlink()
    fsync_dir(path.parent)


@dataclass
class ChunkPlan:
    """How many lines to translate before the next durable commit, so that a kill loses little.

    A chunk holds at most `max_lines` lines and, at the speed measured on the chunks so far, takes
    about `seconds` (the first holds `first` lines, to measure it). The output does not depend on
    the chunk sizes: a sentence's translation does not depend on its batch (`nmt.search`).
    """

    max_lines: int = 1000
    seconds: float = 20.0
    first: int = 8
    _seconds_per_line: float | None = None

    def next_size(self) -> int:
        """Lines in the next chunk."""
        if self._seconds_per_line is None:
            return max(1, min(self.first, self.max_lines))
        return max(1, min(self.max_lines, int(self.seconds / max(self._seconds_per_line, 1e-9))))

    def record(self, lines: int, elapsed: float) -> None:
        """A chunk of `lines` lines took `elapsed` seconds."""
        if lines > 0:
            rate = elapsed / lines
            previous = self._seconds_per_line
            self._seconds_per_line = rate if previous is None else max(rate, 0.5 * (previous + rate))

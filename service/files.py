"""Translated files waiting to be downloaded, and the progress of files being translated.

Files live in a private temporary directory, each under a random id; a file is removed once
it is older than the time to live (checked whenever a file is stored or fetched) and the whole
directory when the app stops. Progress records are keyed by an id the client chooses.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nmt.fileio import atomic_write_bytes

_KEY = re.compile(r"^([0-9a-f]{32})\.(.+)$")
_PROGRESS_ID = re.compile(r"^[0-9A-Za-z_-]{8,64}$")
MAX_PROGRESS_RECORDS = 1000


@dataclass(frozen=True)
class StoredFile:
    """A translated file ready for download."""

    path: Path
    name: str
    created: float


class FileStore:
    """Translated files by key (`<id>.<name>`), removed after `ttl_s` seconds."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._dir: Path | None = None
        self._files: dict[str, StoredFile] = {}
        self.progress: dict[str, tuple[int, int]] = {}

    @property
    def directory(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="nmt-files-"))
        return self._dir

    def put(self, name: str, data: bytes) -> str:
        """Store a translated file; returns its download key."""
        self.sweep()
        file_id = secrets.token_hex(16)
        path = self.directory / file_id
        atomic_write_bytes(path, data)
        self._files[file_id] = StoredFile(path, name, time.monotonic())
        return f"{file_id}.{name}"

    def get(self, key: str) -> StoredFile | None:
        """The file with this key, if it exists and has not expired."""
        self.sweep()
        match = _KEY.match(key)
        found = self._files.get(match.group(1)) if match else None
        return found if found is not None and found.path.is_file() else None

    def sweep(self) -> None:
        """Remove files older than the time to live."""
        now = time.monotonic()
        for file_id, stored in list(self._files.items()):
            if now - stored.created > self.ttl_s:
                stored.path.unlink(missing_ok=True)
                del self._files[file_id]

    def track(self, progress_id: str | None, done: int, total: int) -> None:
        """Record a translation's progress under a client-chosen id (ignored when malformed or too many)."""
        if progress_id is None or not _PROGRESS_ID.match(progress_id):
            return
        if progress_id in self.progress or len(self.progress) < MAX_PROGRESS_RECORDS:
            self.progress[progress_id] = (done, total)

    def forget(self, progress_id: str | None) -> None:
        """Drop a finished translation's progress record."""
        if progress_id is not None:
            self.progress.pop(progress_id, None)

    def close(self) -> None:
        """Remove every stored file (the app is stopping)."""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._files.clear()

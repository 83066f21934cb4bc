"""Files the service translates: the texts to translate in a file, and the file put back together.

`.txt`: every line is a text (blank lines kept as they are). `.srt` subtitles: the index and
timing lines are kept; the text lines of each cue are translated together as one caption and
wrapped again on as many lines. Files must be UTF-8 (a byte-order mark is allowed); line endings are kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from nmt.errors import InputError

SUPPORTED_SUFFIXES = (".txt", ".srt")
MEDIA_TYPES = {".txt": "text/plain; charset=utf-8", ".srt": "application/x-subrip; charset=utf-8"}
_TIMING = re.compile(r"^\s*\d+:\d{2}:\d{2}[,.]\d{1,3}\s*-->\s*\d+:\d{2}:\d{2}[,.]\d{1,3}")


class DocumentError(InputError):
    """A file the service cannot translate: unsupported type, not UTF-8, empty or too long."""


@dataclass(frozen=True)
class Document:
    """A parsed file: `texts` to translate and `render`, which puts translations back in its layout."""

    name: str
    suffix: str
    texts: list[str]
    render: Callable[[list[str]], str]

    @property
    def characters(self) -> int:
        """Characters to translate."""
        return sum(len(t) for t in self.texts)

    def translated_name(self, target: str) -> str:
        """`notes.txt` translated into en: `notes.en.txt`."""
        stem = self.name[: -len(self.suffix)] if self.name.lower().endswith(self.suffix) else self.name
        return f"{stem}.{target}{self.suffix}"


def safe_name(filename: str | None) -> str:
    """The file's base name without directories or control characters ("file" when nothing is left)."""
    base = PurePath((filename or "").replace("\\", "/")).name
    cleaned = "".join(c for c in base if c.isprintable() and c not in '<>:"/\\|?*').strip(" .")
    return cleaned[:120] or "file"


def parse_document(filename: str | None, data: bytes, max_chars: int) -> Document:
    """The document in `data`; DocumentError (with a message for the user) when it cannot be translated."""
    name = safe_name(filename)
    suffix = PurePath(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"{name}: unsupported file type; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DocumentError(f"{name} is not UTF-8 text (byte {err.start} is invalid)") from None
    if not text.strip():
        raise DocumentError(f"{name} is empty")
    texts, render = _parse_srt(text) if suffix == ".srt" else _parse_lines(text)
    doc = Document(name, suffix, texts, render)
    if doc.characters > max_chars:
        raise DocumentError(f"{name} has {doc.characters} characters to translate, over NMT_MAX_FILE_CHARS={max_chars}")
    return doc


def _parse_lines(text: str) -> tuple[list[str], Callable[[list[str]], str]]:
    lines = text.splitlines(keepends=True)
    bodies = [line.rstrip("\r\n") for line in lines]
    slots = [i for i, body in enumerate(bodies) if body.strip()]

    def render(translations: list[str]) -> str:
        out = list(lines)
        for i, translated in zip(slots, translations, strict=True):
            out[i] = translated.replace("\n", " ") + lines[i][len(bodies[i]) :]
        return "".join(out)

    return [bodies[i] for i in slots], render


def _parse_srt(text: str) -> tuple[list[str], Callable[[list[str]], str]]:
    lines = text.splitlines(keepends=True)
    bodies = [line.rstrip("\r\n") for line in lines]
    cues: list[list[int]] = []  # line numbers of each cue's text
    current: list[int] | None = None
    for i, body in enumerate(bodies):
        if _TIMING.match(body):
            current = []
            cues.append(current)
        elif not body.strip():
            current = None
        elif current is not None:
            current.append(i)
    cues = [c for c in cues if c]
    if not cues:
        raise DocumentError("no subtitle cues found: an .srt file needs 'HH:MM:SS,mmm --> HH:MM:SS,mmm' timing lines")

    def render(translations: list[str]) -> str:
        out = list(lines)
        for cue, translated in zip(cues, translations, strict=True):
            parts = wrap_lines(translated, len(cue))
            for k, i in enumerate(cue):
                out[i] = (parts[k] + lines[i][len(bodies[i]) :]) if k < len(parts) else ""
        return "".join(out)

    # a cue's lines are one caption wrapped for the screen: translated together, wrapped again after
    return [" ".join(bodies[i].strip() for i in cue) for cue in cues], render


def wrap_lines(text: str, count: int) -> list[str]:
    """`text` on at most `count` lines of similar length, broken between words."""
    words = text.split()
    if count <= 1 or len(words) <= 1:
        return [" ".join(words)]
    lines: list[str] = []
    remaining = words
    for left in range(count, 1, -1):
        target = len(" ".join(remaining)) / left
        taken, width = 0, -1
        while taken < len(remaining) - 1 and width + 1 + len(remaining[taken]) <= target + len(remaining[taken]) / 2:
            width += 1 + len(remaining[taken])
            taken += 1
        taken = max(taken, 1)
        lines.append(" ".join(remaining[:taken]))
        remaining = remaining[taken:]
        if len(remaining) <= 1:
            break
    if remaining:
        lines.append(" ".join(remaining))
    return lines

"""Line-based files: plain text and SubRip subtitles.

`.txt`: every line is a text (blank lines kept as they are). `.srt` subtitles: the index and
timing lines are kept; the text lines of each cue are translated together as one caption and
wrapped again on as many lines. Line endings are kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nmt.documents.base import DocumentError, Parsed, decode_utf8
from nmt.markup import Translated

_TIMING = re.compile(r"^\s*\d+:\d{2}:\d{2}[,.]\d{1,3}\s*-->\s*\d+:\d{2}:\d{2}[,.]\d{1,3}")


def parse_lines(data: bytes, name: str) -> Parsed:
    """A plain text file: every non-blank line is a text."""
    text = decode_utf8(data, name)
    lines = text.splitlines(keepends=True)
    bodies = [line.rstrip("\r\n") for line in lines]
    slots = [i for i, body in enumerate(bodies) if body.strip()]

    def render(translations: Sequence[Translated], target: str) -> bytes:
        out = list(lines)
        for i, translated in zip(slots, translations, strict=True):
            out[i] = translated.text.replace("\n", " ") + lines[i][len(bodies[i]) :]
        return "".join(out).encode("utf-8")

    return Parsed([bodies[i] for i in slots], render)


def parse_srt(data: bytes, name: str) -> Parsed:
    """SubRip subtitles: each cue's text lines are one caption."""
    text = decode_utf8(data, name)
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

    def render(translations: Sequence[Translated], target: str) -> bytes:
        out = list(lines)
        for cue, translated in zip(cues, translations, strict=True):
            parts = wrap_lines(translated.text, len(cue))
            for k, i in enumerate(cue):
                out[i] = (parts[k] + lines[i][len(bodies[i]) :]) if k < len(parts) else ""
        return "".join(out).encode("utf-8")

    # a cue's lines are one caption wrapped for the screen: translated together, wrapped again after
    return Parsed([" ".join(bodies[i].strip() for i in cue) for cue in cues], render)


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

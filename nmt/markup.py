"""Inline markup through translation: the text of a paragraph goes to the model without its tags,
and the tags are put back around the translated words that the source words they held are aligned to.

A document format (`nmt.documents`) describes each paragraph as a `Segment`: its text, with white
space collapsed as a reader sees it, the inline elements (`Inline`: bold, a link, a run of formatted
text) as nested character ranges of it, and the pieces that must not be translated at all (a line
break, an image, inline code) as markers in the text, which placeholder protection
(`nmt.placeholders`) keeps exactly once. `place` answers the translated paragraph as `Item`s in
reading order: text, an inline element with its own items, or an untouched piece, for the format to
write back. Every element of the source appears exactly once; nesting is kept, and an element whose
words the alignment scatters takes the span from its first to its last aligned word, clipped to its
parent and to the siblings before it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

MARKER = re.compile(r"<x-nmt-(\d+)/>")
_MARKER_SPLIT = re.compile(r"(<x-nmt-\d+/>)")
_SPACE = re.compile(r"\s+")
_STOP = re.compile(r"[.,;:!?…]+$")
_CLOSING = frozenset(".,;:!?…)]}»”")  # what follows an element without a space
_WORD = re.compile(r"\S+")


def marker(k: int) -> str:
    """The text standing for untouched piece k: a tag, which placeholder protection keeps exactly once."""
    return f"<x-nmt-{k}/>"


class Translated(Protocol):
    """What a translator answers for one text: `nmt.translator.Translation`, the service's `TextResult`."""

    @property
    def text(self) -> str:
        """The translation."""

    @property
    def word_alignment(self) -> list[int] | None:
        """Each word of `text` -> the index of its source word (`nmt.alignment`)."""


@dataclass
class Inline:
    """An inline element covering characters [start, end) of its segment's text."""

    node: Any
    start: int = 0
    end: int = 0
    children: list[Inline] = field(default_factory=list)


@dataclass
class Segment:
    """A paragraph to translate: text, inline elements, and the untouched pieces its markers stand for."""

    text: str
    inlines: list[Inline]
    pieces: list[Any]  # marker(k) stands for pieces[k]
    lead: str = ""  # white space before and after the text in the source, kept as it was
    trail: str = ""
    spaced: frozenset[int] = frozenset()  # pieces the model saw between spaces that the source did not have

    @property
    def translatable(self) -> bool:
        """Whether the text holds a letter outside its markers (else it is left as it is)."""
        return any(ch.isalpha() for ch in MARKER.sub("", self.text))


@dataclass
class Element:
    """An inline element in the translation, with what it holds."""

    node: Any
    items: list[Item]


@dataclass
class Piece:
    """An untouched piece in the translation."""

    node: Any


Item = str | Element | Piece


class SegmentBuilder:
    """Builds a `Segment` from a walk over mixed content: text, `open`/`close` of inline elements, pieces."""

    def __init__(self) -> None:
        self._raw: list[str] = []  # what was added, markers included, for the white space around it
        self._parts: list[str] = []
        self._length = 0
        self._space = True  # white space at the start is dropped
        self._stack: list[Inline] = []
        self._top: list[Inline] = []
        self._pieces: list[Any] = []
        self._spaced: set[int] = set()

    def text(self, text: str) -> None:
        """Append text; runs of white space become one space."""
        self._raw.append(text)
        collapsed = _SPACE.sub(" ", text)
        if self._space:
            collapsed = collapsed.lstrip(" ")
        if collapsed:
            self._parts.append(collapsed)
            self._length += len(collapsed)
            self._space = collapsed.endswith(" ")

    def open(self, node: Any) -> None:
        """An inline element starts here."""
        element = Inline(node, self._length)
        (self._stack[-1].children if self._stack else self._top).append(element)
        self._stack.append(element)

    def close(self) -> None:
        """The innermost open inline element ends here."""
        self._stack.pop().end = self._length

    def piece(self, node: Any, spaced: bool = False) -> None:
        """An untouched piece sits here; `spaced`: it parts words (a line break), so the model sees it
        between spaces, which the translation drops again around it."""
        if spaced:
            self._spaced.add(len(self._pieces))
            self._parts.append(" " if not self._space else "")
            self._length += 0 if self._space else 1
            self._space = True
        self.text(marker(len(self._pieces)))
        self._pieces.append(node)
        if spaced:
            self._parts.append(" ")
            self._length += 1
            self._space = True

    def build(self) -> Segment:
        """The segment; the white space around its text is kept as `lead` and `trail`."""
        text = "".join(self._parts).rstrip(" ")
        for element in _walk(self._top):
            element.start, element.end = min(element.start, len(text)), min(element.end, len(text))
        raw = "".join(self._raw)
        core = raw.strip()
        lead = raw[: len(raw) - len(raw.lstrip())] if core else raw
        trail = raw[len(raw.rstrip()) :] if core else ""
        return Segment(text, self._top, self._pieces, lead, trail, frozenset(self._spaced))


def _walk(elements: Sequence[Inline]) -> list[Inline]:
    out = []
    for element in elements:
        out.append(element)
        out.extend(_walk(element.children))
    return out


@dataclass
class _Placed:
    node: Any
    lo: int
    hi: int
    children: list[_Placed]
    ends_in_stop: bool = False  # the source element's text ends in punctuation


def place(segment: Segment, translated: Translated) -> list[Item]:
    """The translation of `segment` as items, with its inline elements and pieces put back."""
    words = translated.text.split()
    source = [(m.start(), m.end()) for m in _WORD.finditer(segment.text)]
    alignment = list(translated.word_alignment or [])
    if len(alignment) != len(words) or not source:
        alignment = [j * len(source) // max(len(words), 1) for j in range(len(words))]
    placed = _place_all(segment.text, segment.inlines, source, alignment, 0, len(words), 0, len(source))
    return _every_piece_once(_items(words, 0, len(words), placed, segment), segment.pieces)


def _every_piece_once(items: list[Item], pieces: Sequence[Any]) -> list[Item]:
    """Items with a piece the translation repeated kept once and one it lost put at the end."""
    seen: set[int] = set()

    def keep(group: list[Item]) -> list[Item]:
        out: list[Item] = []
        for item in group:
            if isinstance(item, Piece):
                if id(item.node) in seen:
                    continue
                seen.add(id(item.node))
            elif isinstance(item, Element):
                item.items = keep(item.items)
            out.append(item)
        return out

    items = keep(items)
    items.extend(Piece(node) for node in pieces if id(node) not in seen)
    return items


def _covered(element: Inline, source: Sequence[tuple[int, int]]) -> list[int]:
    """Source words overlapping the element's characters."""
    return [i for i, (s, e) in enumerate(source) if s < element.end and e > element.start]


def _place_all(
    segment_text: str,
    elements: Sequence[Inline],
    source: Sequence[tuple[int, int]],
    alignment: Sequence[int],
    lo: int,
    hi: int,
    src_lo: int,
    src_hi: int,
) -> list[_Placed]:
    """Target word ranges within [lo, hi) for sibling elements, ordered and not overlapping."""
    placed = []
    for element in elements:
        covered = _covered(element, source)
        hits = [j for j in range(lo, hi) if alignment[j] in covered]
        if hits:
            start, end = min(hits), max(hits) + 1
        else:  # nothing aligned to it, or it holds no word: where its source position falls
            after = (i for i, (s, _) in enumerate(source) if s >= element.start)
            first = covered[0] if covered else next(after, src_hi)
            share = (first - src_lo) / max(src_hi - src_lo, 1)
            start = min(hi, lo + round(share * (hi - lo)))
            end = min(hi, start + 1) if covered else start
        placed.append((start, end, element, covered))
    placed.sort(key=lambda p: (p[0], p[1]))
    ranges: list[list[int]] = []
    floor = lo
    for start, end, _, covered in placed:
        start = max(start, floor)
        end = max(end, start)
        if covered and end == start:  # it held words but the siblings before took its place
            if start < hi:
                end = start + 1
            elif ranges and ranges[-1][1] - ranges[-1][0] >= 2:  # the one before gives up its last word
                ranges[-1][1] -= 1
                start = ranges[-1][1]
        ranges.append([start, end])
        floor = end
    out: list[_Placed] = []
    for (start, end), (_, _, element, covered) in zip(ranges, placed, strict=True):
        sub_lo, sub_hi = (covered[0], covered[-1] + 1) if covered else (src_lo, src_lo)
        children = _place_all(segment_text, element.children, source, alignment, start, end, sub_lo, sub_hi)
        held = _STOP.search(segment_text[element.start : element.end].rstrip()) is not None
        out.append(_Placed(element.node, start, end, children, held))
    return out


def _items(words: Sequence[str], lo: int, hi: int, placed: Sequence[_Placed], segment: Segment) -> list[Item]:
    """Items for target words [lo, hi) holding the placed elements; one space between words."""
    groups: list[list[Item]] = []
    at = lo
    for p in placed:
        if p.lo > at:
            groups.append(_text(words[at : p.lo], segment))
        inner = _items(words, p.lo, p.hi, p.children, segment)
        groups.append([Element(p.node, inner)])
        last = inner[-1] if inner else None
        stop = _STOP.search(last) if isinstance(last, str) and not p.ends_in_stop else None
        if isinstance(last, str) and stop and stop.start() > 0:  # "<i>grass.</i>" for "<i>Gras</i>.": stop after
            inner[-1] = last[: stop.start()]
            groups.append([stop.group(0)])
        at = max(at, p.hi)
    if at < hi:
        groups.append(_text(words[at:hi], segment))
    items: list[Item] = []
    parting = {id(segment.pieces[k]) for k in segment.spaced}
    for group in groups:
        after = _edge(group[0], False, parting) if group else ""
        if items and after and after not in _CLOSING and _edge(items[-1], True, parting):
            if isinstance(items[-1], str):
                items[-1] += " "
            elif isinstance(group[0], str):
                group[0] = " " + group[0]
            else:
                items.append(" ")
        items.extend(group)
    return items


def _text(words: Sequence[str], segment: Segment) -> list[Item]:
    """Words as text, with the markers of pieces turned back into pieces (without the spaces the
    model saw around a piece that parts words)."""
    items: list[Item] = []
    strip_next = False
    for part in _MARKER_SPLIT.split(" ".join(words)):
        found = MARKER.fullmatch(part)
        k = int(found.group(1)) if found else -1
        if 0 <= k < len(segment.pieces):
            if k in segment.spaced and items and isinstance(items[-1], str):
                items[-1] = items[-1].rstrip(" ")
            items.append(Piece(segment.pieces[k]))
            strip_next = k in segment.spaced
        elif part:
            part = part.lstrip(" ") if strip_next else part
            strip_next = False
            if part:
                items.append(part)
    return [i for i in items if not isinstance(i, str) or i]


def _edge(item: Item, last: bool, parting: set[int]) -> str:
    """The last (or first) visible character of an item ("" for none, white space or a piece that
    parts words; another piece counts as a letter)."""
    if isinstance(item, str):
        edge = item[-1:] if last else item[:1]
        return "" if edge.isspace() else edge
    if isinstance(item, Piece):
        return "" if id(item.node) in parting else "x"
    for child in item.items[::-1] if last else item.items:
        edge = _edge(child, last, parting)
        if edge or (isinstance(child, str) and child):
            return edge
    return ""


def plain_text(items: Sequence[Item]) -> str:
    """The text of items, pieces left out (for tests and logs)."""
    return "".join(i if isinstance(i, str) else plain_text(i.items) if isinstance(i, Element) else "" for i in items)

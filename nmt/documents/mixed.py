"""Paragraphs of an lxml tree with mixed content (HTML, ODF text, XLIFF inline codes), found and rewritten.

A format says what each element is (`Role`): a block holds paragraphs, an inline element is
translated with the words around it and put back by `nmt.markup`, a piece sits in a paragraph
untouched (a line break, an image, inline code), and a kept block is never entered (a script, a
preformatted listing). `paragraphs` walks a tree once into `Paragraph`s: a run of text and inline
content between blocks, with its `Segment`; `Paragraph.rewrite` writes a translation back in place,
the inline elements as copies of themselves (attributes kept), the pieces as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lxml import etree

from nmt.markup import Element, Item, Piece, Segment, SegmentBuilder


class Role(Enum):
    """What an element is to translation."""

    BLOCK = "block"
    INLINE = "inline"
    PIECE = "piece"
    KEPT = "kept"


Classify = Callable[[Any], Role]
BREAKS = frozenset({"br", "line-break"})  # pieces that part words: the model sees them between spaces


def local_name(element: Any) -> str:
    """The tag without its namespace ("" for comments and processing instructions)."""
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


@dataclass
class Paragraph:
    """Text and inline content of `container` from the text slot before `children[0]` to the end of them."""

    container: Any
    after: Any | None  # the child whose tail opens the paragraph; None: the container's own text
    children: list[Any]
    segment: Segment

    def rewrite(self, items: Sequence[Item], copy_element: Callable[[Any], Any] | None = None) -> None:
        """Replace the paragraph's content with `items` (from `nmt.markup.place`)."""
        copy_element = copy_element or _shallow_copy
        parent = self.container
        index = 0 if self.after is None else parent.index(self.after) + 1
        for child in self.children:
            parent.remove(child)
        if self.after is None:
            parent.text = None
        else:
            self.after.tail = None
        writer = _Writer(parent, index, self.after, copy_element)
        writer.text(self.segment.lead)
        writer.items(items)
        writer.text(self.segment.trail)
        writer.finish()


def _shallow_copy(element: Any) -> Any:
    """The element with its attributes and none of its content."""
    return element.makeelement(element.tag, element.attrib, element.nsmap)


class _Writer:
    """Writes items into a parent from a child index on, text going to the slot before."""

    def __init__(self, parent: Any, index: int, before: Any | None, copy_element: Callable[[Any], Any]) -> None:
        self.parent, self.index, self.last = parent, index, before
        self.copy_element = copy_element
        self.pending: list[str] = []

    def text(self, text: str) -> None:
        if text:
            self.pending.append(text)

    def _flush(self) -> None:
        text = "".join(self.pending)
        self.pending = []
        if self.last is None:
            self.parent.text = (self.parent.text or "") + text if text else self.parent.text
        elif text:
            self.last.tail = (self.last.tail or "") + text

    def _insert(self, element: Any) -> None:
        self._flush()
        element.tail = None
        self.parent.insert(self.index, element)
        self.index += 1
        self.last = element

    def items(self, items: Sequence[Item]) -> None:
        for item in items:
            if isinstance(item, str):
                self.text(item)
            elif isinstance(item, Piece):
                self._insert(item.node)
            elif isinstance(item, Element):
                new = self.copy_element(item.node)
                self._insert(new)
                inner = _Writer(new, 0, None, self.copy_element)
                inner.items(item.items)
                inner.finish()

    def finish(self) -> None:
        self._flush()


def paragraphs(root: Any, classify: Classify) -> list[Paragraph]:
    """Every paragraph under `root` (a block), in document order."""
    found: list[Paragraph] = []
    _collect(root, classify, found)
    return found


def _collect(block: Any, classify: Classify, found: list[Paragraph]) -> None:
    after: Any | None = None
    run: list[Any] = []
    for child in list(block):
        role = classify(child)
        if role in (Role.BLOCK, Role.KEPT):
            _close(block, after, run, classify, found)
            if role is Role.BLOCK:
                _collect(child, classify, found)
            after, run = child, []
        else:
            run.append(child)
    _close(block, after, run, classify, found)


def _close(block: Any, after: Any | None, run: list[Any], classify: Classify, found: list[Paragraph]) -> None:
    builder = SegmentBuilder()
    builder.text((block.text if after is None else after.tail) or "")
    for child in run:
        _inline(child, classify, builder)
    segment = builder.build()
    if segment.translatable:
        found.append(Paragraph(block, after, run, segment))


def _inline(element: Any, classify: Classify, builder: SegmentBuilder) -> None:
    if classify(element) in (Role.PIECE, Role.KEPT):
        builder.piece(element, spaced=local_name(element) in BREAKS)
    else:  # an inline element; a block inside one (a link around a div) counts as inline too
        builder.open(element)
        builder.text(element.text or "")
        for child in element:
            _inline(child, classify, builder)
        builder.close()
    builder.text(element.tail or "")

"""Office documents: Word (.docx), PowerPoint (.pptx), OpenDocument text and presentations (.odt,
.odp), formatting runs kept.

All are zip containers of XML (checked by `nmt.documents.base.open_zip`); only the parts that hold
text are rewritten, every other member is copied as it was.

.docx: every paragraph (`w:p`) of the body, tables, headers, footers, footnotes, endnotes and
comments is one text. Its runs (`w:r`, each with its character formatting) are inline elements
placed on the translated words by the word alignment; tabs, breaks, drawings and fields stay in
their run where the translation puts them; hyperlinks keep their runs inside.

.pptx: the same for the DrawingML paragraphs (`a:p`) of every slide and its notes; a paragraph's
end properties stay last.

.odt, .odp: paragraphs and headings (`text:p`, `text:h`) of `content.xml` and `styles.xml`
(headers, footers, master pages) are translated with their spans and links as inline elements;
spaces, tabs, line breaks, frames and notes stay untouched (the text of notes, frames and a
presentation's text boxes is translated as paragraphs of its own).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from lxml import etree

from nmt.documents.base import DocumentError, Parsed, open_zip, parse_xml, read_member, write_zip
from nmt.documents.mixed import Paragraph, Role, local_name, paragraphs
from nmt.markup import Element, Item, Piece, Segment, SegmentBuilder, Translated, place

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_DOCX_PARTS = re.compile(r"^word/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml$")
_PPTX_PARTS = re.compile(r"^ppt/(slides/slide|notesSlides/notesSlide)\d+\.xml$")
_RUN_GROUPS = frozenset({"hyperlink", "smartTag", "ins", "fldSimple", "customXml"})


def _w(name: str) -> str:
    return f"{{{W}}}{name}"


# ----- .docx -----------------------------------------------------------------------------


class _RunParagraph:
    """A paragraph of runs (WordprocessingML `w:p`, DrawingML `a:p`): its segment, and how to write a
    translation back. Paragraph properties stay first, DrawingML's end-of-paragraph properties last."""

    def __init__(self, paragraph: Any) -> None:
        self.element = paragraph
        self.ns = etree.QName(paragraph).namespace
        builder = SegmentBuilder()
        self.first_run: Any | None = None
        self._children = [c for c in paragraph if local_name(c) not in ("pPr", "endParaRPr")]
        for child in self._children:
            self._add(child, builder)
        self.segment: Segment = builder.build()

    def _tag(self, name: str) -> str:
        return f"{{{self.ns}}}{name}"

    def _add(self, node: Any, builder: SegmentBuilder) -> None:
        name = local_name(node)
        if name == "r":
            self.first_run = self.first_run if self.first_run is not None else node
            builder.open(node)
            for part in node:
                part_name = local_name(part)
                if part_name == "rPr":
                    continue
                if part_name == "t":
                    builder.text(part.text or "")
                else:
                    builder.piece((node, part), spaced=part_name in ("tab", "br", "cr"))
            builder.close()
        elif name == "br":  # DrawingML: a line break between runs
            builder.piece(node, spaced=True)
        elif name in _RUN_GROUPS and not (name == "ins" and node.find(self._tag("r")) is None):
            builder.open(node)
            for child in node:
                self._add(child, builder)
            builder.close()
        else:  # deleted text, bookmarks, proofing marks, content controls: untouched
            builder.piece(node)

    def rewrite(self, items: Sequence[Item]) -> None:
        for child in self._children:
            self.element.remove(child)
        end = self.element.find(self._tag("endParaRPr"))
        for node in self._nodes(items, self.first_run):
            if end is not None:
                end.addprevious(node)
            else:
                self.element.append(node)

    def _nodes(self, items: Sequence[Item], run_like: Any | None) -> list[Any]:
        """XML nodes for items at paragraph (or run-group) level: loose text goes into a run like `run_like`."""
        out: list[Any] = []
        space = ""  # white space between two runs
        for item in items:
            if isinstance(item, str) and not item.strip() and out and out[-1].tag == self._tag("r"):
                space += item
                continue
            if space:  # into the plain one of the two runs around it: a space takes its run's underline
                run = isinstance(item, Element) and local_name(item.node) == "r"
                plain_next = run and isinstance(item, Element) and item.node.find(self._tag("rPr")) is None
                if plain_next and isinstance(item, Element) and out[-1].find(self._tag("rPr")) is not None:
                    item = Element(item.node, [space, *item.items])
                else:
                    _add_text(out[-1], space)
            space = ""
            if isinstance(item, Element) and local_name(item.node) == "r":
                out.append(self._run(item.node, item.items))
            elif isinstance(item, Element):
                group = _copy_bare(item.node)
                inner_run = item.node.find(self._tag("r"))
                for node in self._nodes(item.items, inner_run if inner_run is not None else run_like):
                    group.append(node)
                out.append(group)
            elif isinstance(item, Piece) and isinstance(item.node, tuple):
                out.append(self._run(item.node[0], [item]))
            elif isinstance(item, Piece):
                out.append(item.node)
            elif item.strip() or out:
                out.append(self._run(run_like, [item]))
        if space:
            _add_text(out[-1], space)
        return out

    def _run(self, model: Any | None, items: Sequence[Item]) -> Any:
        """A run with the formatting of `model` holding text and run-level pieces."""
        run = etree.Element(self._tag("r"))
        if model is not None:
            properties = model.find(self._tag("rPr"))
            if properties is not None:
                run.append(copy.deepcopy(properties))
        for item in items:
            if isinstance(item, Piece) and isinstance(item.node, tuple):
                run.append(copy.deepcopy(item.node[1]))
            elif isinstance(item, str) and item:
                _add_text(run, item)
            elif isinstance(item, Element):  # a run inside a run cannot be: its words join this one
                for child in self._run(model, item.items):
                    if child.tag != self._tag("rPr"):
                        run.append(child)
        return run


def _rewritten(archive: Any, parts: dict[str, Any], found: Sequence[Any], standalone: bool | None) -> Parsed:
    """The texts of paragraphs `found` in the XML `parts` of a zip container, and the container rewritten
    with their translations (OOXML parts declare themselves standalone, ODF's do not)."""
    texts = [p.segment.text for p in found]

    def render(translations: Sequence[Translated], target: str) -> bytes:
        if len(translations) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(translations)} translations")
        for paragraph, done in zip(found, translations, strict=True):
            paragraph.rewrite(place(paragraph.segment, done))
        replaced = {member: etree.tostring(root, encoding="UTF-8", xml_declaration=True, standalone=standalone)
                    for member, root in parts.items()}  # fmt: skip
        return write_zip(archive, replaced)

    return Parsed(texts, render, aligned=True)


def _add_text(run: Any, text: str) -> None:
    """Text at the end of a run: a new `w:t` keeping its spaces, or DrawingML's one `a:t` extended."""
    namespace = etree.QName(run).namespace
    if namespace != W:
        existing = run.find(f"{{{namespace}}}t")
        if existing is not None and existing is run[-1]:
            existing.text = (existing.text or "") + text
            return
    node = etree.SubElement(run, f"{{{namespace}}}t")
    node.text = text
    if namespace == W:
        node.set(XML_SPACE, "preserve")


def _copy_bare(element: Any) -> Any:
    new = etree.Element(element.tag, element.attrib, nsmap=element.nsmap)
    for child in element:
        if local_name(child) not in ("r",) and local_name(child) not in _RUN_GROUPS:
            new.append(copy.deepcopy(child))  # a group's own properties (a field's, a link's)
    return new


def parse_docx(data: bytes, name: str) -> Parsed:
    """A Word document."""
    return _parse_ooxml(data, name, _DOCX_PARTS, "word/document.xml", _w("p"), "a Word document")


def parse_pptx(data: bytes, name: str) -> Parsed:
    """A PowerPoint presentation: its slides and their notes."""
    return _parse_ooxml(data, name, _PPTX_PARTS, "ppt/presentation.xml", f"{{{A}}}p", "a PowerPoint presentation")


def _parse_ooxml(data: bytes, name: str, parts_re: re.Pattern[str], main: str, paragraph_tag: str, what: str) -> Parsed:
    """An Office Open XML container whose `parts_re` members hold paragraphs of runs."""
    archive = open_zip(data, name)
    members = [m.filename for m in archive.infolist()]
    if main not in members:
        raise DocumentError(f"{name} is not {what} (no {main})")
    parts: dict[str, Any] = {}
    found: list[_RunParagraph] = []
    for member in (m for m in members if parts_re.match(m)):
        root = parse_xml(read_member(archive, member, name), f"{name}: {member}")
        parts[member] = root
        for paragraph in root.iter(paragraph_tag):
            if paragraph.find(f".//{paragraph_tag}") is not None:
                continue  # a paragraph holding paragraphs (a text box): its inner ones are translated
            done = _RunParagraph(paragraph)
            if done.segment.translatable:
                found.append(done)
    return _rewritten(archive, parts, found, standalone=True)


# ----- .odt ------------------------------------------------------------------------------

TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_ODT_INLINE = frozenset({"span", "a", "ruby", "ruby-base", "meta"})
_ODT_FRAMES = frozenset({"note", "frame", "annotation"})


def _odt_classify(element: Any) -> Role:
    namespace = etree.QName(element).namespace if isinstance(element.tag, str) else None
    name = local_name(element)
    if namespace == TEXT and name in _ODT_INLINE:
        return Role.INLINE
    if namespace == TEXT and name in ("p", "h", "list", "list-item", "list-header", "section", "note-body"):
        return Role.BLOCK
    if name in ("tracked-changes", "sequence-decls", "variable-decls", "user-field-decls", "forms"):
        return Role.KEPT
    if namespace == TEXT or name in _ODT_FRAMES or not isinstance(element.tag, str):
        return Role.PIECE  # spaces, tabs, breaks, fields, bookmarks, notes and frames inside a paragraph
    return Role.BLOCK


def _odt_paragraphs(root: Any) -> list[Paragraph]:
    """Paragraphs of an ODF part, and those of its notes and frames (a piece where they sit)."""
    found = paragraphs(root, _odt_classify)
    for frame in root.iter(*(f"{{*}}{name}" for name in _ODT_FRAMES)):
        found.extend(paragraphs(frame, _odt_classify))
    return found


def parse_odt(data: bytes, name: str) -> Parsed:
    """An OpenDocument text."""
    return _parse_odf(data, name, "text", "a text document")


def parse_odp(data: bytes, name: str) -> Parsed:
    """An OpenDocument presentation: its slides' and notes' text boxes."""
    return _parse_odf(data, name, "presentation", "a presentation")


def _parse_odf(data: bytes, name: str, body: str, what: str) -> Parsed:
    """An OpenDocument file whose `office:{body}` (and master pages) hold paragraphs."""
    archive = open_zip(data, name)
    members = {m.filename for m in archive.infolist()}
    if "content.xml" not in members:
        raise DocumentError(f"{name} is not an OpenDocument file (no content.xml)")
    mimetype = read_member(archive, "mimetype", name) if "mimetype" in members else b""
    if mimetype and not mimetype.startswith(f"application/vnd.oasis.opendocument.{body}".encode()):
        kind = mimetype.decode(errors="replace")
        raise DocumentError(f"{name} is an OpenDocument file but not {what} ({kind})")
    parts: dict[str, Any] = {}
    found: list[Paragraph] = []
    for member in ("content.xml", "styles.xml"):
        if member in members:
            root = parse_xml(read_member(archive, member, name), f"{name}: {member}")
            parts[member] = root
            for part in root.iter(f"{{{OFFICE}}}{body}", f"{{{OFFICE}}}master-styles"):
                found.extend(_odt_paragraphs(part))
    return _rewritten(archive, parts, found, standalone=None)

"""EPUB e-books: every XHTML content document of the package (its navigation included) translated as
XHTML (`nmt.documents.html`), the table of contents of EPUB 2 (`toc.ncx`) and the book's title
with it, and the package's `dc:language` set to the target. Every other member is copied as it was,
`mimetype` first and stored.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

from lxml import etree

from nmt.documents.base import DocumentError, Parsed, open_zip, parse_xml, read_member, write_zip
from nmt.documents.html import parse_xhtml
from nmt.markup import Translated

CONTAINER = "META-INF/container.xml"
OPF = "http://www.idpf.org/2007/opf"
DC = "http://purl.org/dc/elements/1.1/"
CONTENT_TYPES = ("application/xhtml+xml", "text/html")
NCX_TYPE = "application/x-dtbncx+xml"


def _package(archive: Any, name: str) -> tuple[str, Any]:
    """The package document's path and root, as the container names it."""
    container = parse_xml(read_member(archive, CONTAINER, name), f"{name}: {CONTAINER}")
    rootfile = container.find(".//{*}rootfile")
    path = rootfile.get("full-path") if rootfile is not None else None
    if not path:
        raise DocumentError(f"{name}: {CONTAINER} names no package document")
    return path, parse_xml(read_member(archive, path, name), f"{name}: {path}")


def parse_epub(data: bytes, name: str) -> Parsed:
    """An EPUB 2 or 3 book."""
    archive = open_zip(data, name)
    members = {m.filename for m in archive.infolist()}
    if CONTAINER not in members:
        raise DocumentError(f"{name} is not an EPUB book (no {CONTAINER})")
    opf_path, opf = _package(archive, name)
    base = posixpath.dirname(opf_path)
    parts: list[tuple[str, Parsed]] = []
    for item in opf.iterfind(f".//{{{OPF}}}manifest/{{{OPF}}}item"):
        href = item.get("href") or ""
        member = posixpath.normpath(posixpath.join(base, href)) if base else posixpath.normpath(href)
        if member not in members:
            continue
        media = item.get("media-type", "")
        if media in CONTENT_TYPES:
            parts.append((member, parse_xhtml(read_member(archive, member, name), f"{name}: {member}")))
        elif media == NCX_TYPE:
            parts.append((member, _ncx(read_member(archive, member, name), f"{name}: {member}")))
    titles = list(opf.iterfind(f".//{{{DC}}}title"))
    title_texts = [(t.text or "").strip() for t in titles]
    texts = [t for _, part in parts for t in part.texts] + title_texts

    def render(translations: Sequence[Translated], target: str) -> bytes:
        if len(translations) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(translations)} translations")
        replaced: dict[str, bytes] = {}
        start = 0
        for member, part in parts:
            replaced[member] = part.render(translations[start : start + len(part.texts)], target)
            start += len(part.texts)
        for title, done in zip(titles, translations[start:], strict=True):
            if (title.text or "").strip():
                title.text = done.text
        for language in opf.iterfind(f".//{{{DC}}}language"):
            language.text = target
        replaced[opf_path] = etree.tostring(opf.getroottree(), encoding="UTF-8", xml_declaration=True)
        return write_zip(archive, replaced)

    return Parsed(texts, render, aligned=True)


def _ncx(data: bytes, name: str) -> Parsed:
    """An EPUB 2 table of contents: the labels of its entries and its title."""
    root = parse_xml(data, name)
    labels = [t for t in root.iter("{*}text") if (t.text or "").strip()]
    texts = [(t.text or "").strip() for t in labels]

    def render(translations: Sequence[Translated], target: str) -> bytes:
        for label, done in zip(labels, translations, strict=True):
            label.text = done.text
        return etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)

    return Parsed(texts, render)

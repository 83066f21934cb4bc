"""Files to translate: read by format into texts, written back with the translations in their layout.

One place for every driver: `nmt-translate` (a file of a format other than lines) and the
service's `/translate_file`. A format is picked by the file's extension or named outright;
a file that cannot be translated raises `DocumentError` with a message for the user.

| format | extensions | what is translated |
|---|---|---|
| txt | .txt | every non-blank line |
| srt | .srt | each subtitle cue (wrapped again on its lines) |
| html | .html .htm .xhtml | paragraphs with inline markup, readable attributes |
| po | .po .pot | untranslated and fuzzy entries (filled ones marked fuzzy) |
| xliff | .xliff .xlf | units without a target (1.2 and 2.0) |
| docx | .docx | paragraphs of body, tables, headers, footers, notes; runs kept |
| pptx | .pptx | paragraphs of slides and notes; runs kept |
| odt | .odt | paragraphs and headings, spans and links kept |
| odp | .odp | text boxes of slides and notes, spans kept |
| epub | .epub | every XHTML content document, the table of contents, the title |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from nmt.documents.base import DocumentError, Parsed
from nmt.documents.epub import parse_epub
from nmt.documents.gettext import parse_po
from nmt.documents.html import parse_html
from nmt.documents.lines import parse_lines, parse_srt
from nmt.documents.office import parse_docx, parse_odp, parse_odt, parse_pptx
from nmt.documents.xliff import parse_xliff
from nmt.markup import Translated

__all__ = ["FORMATS", "SUFFIXES", "Document", "DocumentError", "Format", "format_for", "parse_document", "safe_name"]


@dataclass(frozen=True)
class Format:
    """A file format: its name, extensions, media type, and reader."""

    name: str
    suffixes: tuple[str, ...]
    media_type: str
    parse: Callable[[bytes, str], Parsed]
    output_suffix: dict[str, str] | None = None  # e.g. a .pot template becomes a .po catalog


_OOXML = "application/vnd.openxmlformats-officedocument"
_OOXML = "application/vnd.openxmlformats-officedocument"
FORMATS: dict[str, Format] = {
    f.name: f
    for f in [
        Format("txt", (".txt",), "text/plain; charset=utf-8", parse_lines),
        Format("srt", (".srt",), "application/x-subrip; charset=utf-8", parse_srt),
        Format("html", (".html", ".htm", ".xhtml"), "text/html; charset=utf-8", parse_html),
        Format("po", (".po", ".pot"), "text/x-gettext-translation; charset=utf-8", parse_po, {".pot": ".po"}),
        Format("xliff", (".xliff", ".xlf"), "application/xliff+xml", parse_xliff),
        Format("docx", (".docx",), f"{_OOXML}.wordprocessingml.document", parse_docx),
        Format("pptx", (".pptx",), f"{_OOXML}.presentationml.presentation", parse_pptx),
        Format("odt", (".odt",), "application/vnd.oasis.opendocument.text", parse_odt),
        Format("odp", (".odp",), "application/vnd.oasis.opendocument.presentation", parse_odp),
        Format("epub", (".epub",), "application/epub+zip", parse_epub),
    ]
}
SUFFIXES: tuple[str, ...] = tuple(s for f in FORMATS.values() for s in f.suffixes)


def format_for(name: str, kind: str | None = None) -> Format:
    """The format named `kind`, else the one of the file's extension."""
    if kind is not None:
        if kind not in FORMATS:
            raise DocumentError(f"unknown file format {kind!r}; known: {', '.join(FORMATS)}")
        return FORMATS[kind]
    suffix = PurePath(name).suffix.lower()
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt
    raise DocumentError(f"{name}: unsupported file type; supported: {', '.join(SUFFIXES)}")


@dataclass(frozen=True)
class Document:
    """A parsed file: `texts` to translate and `render`, which writes the translated file."""

    name: str
    format: Format
    texts: list[str]
    parsed: Parsed

    @property
    def aligned(self) -> bool:
        """Whether inline markup is placed by word alignments (translate with attention)."""
        return self.parsed.aligned

    @property
    def characters(self) -> int:
        """Characters to translate."""
        return sum(len(t) for t in self.texts)

    def render(self, translations: Sequence[Translated], target: str) -> bytes:
        """The translated file's bytes (translations: one per text, in order)."""
        return self.parsed.render(translations, target)

    def translated_name(self, target: str) -> str:
        """`notes.txt` translated into en: `notes.en.txt` (a template `app.pot`: `app.en.po`)."""
        suffix = PurePath(self.name).suffix
        stem = self.name[: -len(suffix)] if suffix else self.name
        out = (self.format.output_suffix or {}).get(suffix.lower(), suffix)
        return f"{stem}.{target}{out}"


def safe_name(filename: str | None) -> str:
    """The file's base name without directories or control characters ("file" when nothing is left)."""
    base = PurePath((filename or "").replace("\\", "/")).name
    cleaned = "".join(c for c in base if c.isprintable() and c not in '<>:"/\\|?*').strip(" .")
    return cleaned[:120] or "file"


def parse_document(
    filename: str | None, data: bytes, max_chars: int, kind: str | None = None, limit_name: str = "the limit"
) -> Document:
    """The document in `data`; DocumentError (with a message for the user) when it cannot be translated.

    `limit_name` names the setting of `max_chars` in the message for a file over it."""
    name = safe_name(filename)
    fmt = format_for(name, kind)
    if not data.strip():
        raise DocumentError(f"{name} is empty")
    parsed = fmt.parse(data, name)
    doc = Document(name, fmt, parsed.texts, parsed)
    if doc.characters > max_chars:
        raise DocumentError(f"{name} has {doc.characters} characters to translate, over {limit_name}={max_chars}")
    return doc

"""What every file format shares: the parsed form, the error a bad file gets, and safe readers.

XML is parsed without entity expansion, DTD loading or network access (no billion laughs, no
external entities); zip containers (.docx, .odt) are opened only when every member is a plain
name, the unpacked size stays under `MAX_UNPACKED_BYTES` and no member expands more than
`MAX_RATIO` times (no zip bombs).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lxml import etree

from nmt.errors import InputError
from nmt.markup import Translated

MAX_UNPACKED_BYTES = 200 * 2**20
MAX_RATIO = 200
MAX_MEMBERS = 10_000

Render = Callable[[Sequence[Translated], str], bytes]
"""Translations (one per text, in order) and the target language -> the translated file's bytes."""


class DocumentError(InputError):
    """A file that cannot be translated: unsupported type, broken, not UTF-8, empty or too large."""


@dataclass(frozen=True)
class Parsed:
    """A file read by its format: the texts to translate and how to write the translated file.

    `aligned`: the format places inline markup by word alignments, so translate with attention."""

    texts: list[str]
    render: Render
    aligned: bool = False


def decode_utf8(data: bytes, name: str) -> str:
    """The text of a UTF-8 file (a byte-order mark allowed)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DocumentError(f"{name} is not UTF-8 text (byte {err.start} is invalid)") from None


def safe_xml_parser() -> etree.XMLParser:
    """An XML parser that expands no entities and reaches no network or DTD."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def parse_xml(data: bytes, name: str) -> etree._Element:
    """The root of an XML document; DocumentError naming the problem when it is not well-formed."""
    try:
        root = etree.fromstring(data, safe_xml_parser())
    except etree.XMLSyntaxError as err:
        raise DocumentError(f"{name} is not well-formed XML: {err}") from None
    if root is None:
        raise DocumentError(f"{name} holds no XML element")
    return root


def open_zip(data: bytes, name: str) -> zipfile.ZipFile:
    """A zip container that is safe to unpack in memory."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise DocumentError(f"{name} is not a valid zip container ({err})") from None
    if len(members) > MAX_MEMBERS:
        raise DocumentError(f"{name} holds {len(members)} files, over {MAX_MEMBERS}")
    total = 0
    for member in members:
        if member.filename.startswith(("/", "\\")) or ".." in member.filename.split("/"):
            raise DocumentError(f"{name} holds a file outside the container: {member.filename!r}")
        total += member.file_size
        if member.file_size > 2**20 and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise DocumentError(f"{name}: {member.filename} expands {member.file_size // max(member.compress_size, 1)}"
                                f" times: refused as a zip bomb")  # fmt: skip
    if total > MAX_UNPACKED_BYTES:
        raise DocumentError(f"{name} unpacks to {total} bytes, over {MAX_UNPACKED_BYTES}")
    return archive


def read_member(archive: zipfile.ZipFile, member: str, name: str) -> bytes:
    """One member of a checked zip container, read no further than its declared size."""
    try:
        with archive.open(member) as handle:
            size = archive.getinfo(member).file_size
            data = handle.read(size + 1)
    except (KeyError, zipfile.BadZipFile, OSError, EOFError) as err:
        raise DocumentError(f"{name}: cannot read {member} ({err})") from None
    if len(data) > size:
        raise DocumentError(f"{name}: {member} is larger than its header says")
    return data


def write_zip(archive: zipfile.ZipFile, replaced: dict[str, bytes]) -> bytes:
    """The container again, with `replaced` members swapped in and every other member as it was
    (order, names and compression kept; `mimetype` stays first and stored, as ODF needs)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as new:
        for member in archive.infolist():
            data = replaced.get(member.filename)
            if data is None:
                data = archive.read(member.filename)
            info = zipfile.ZipInfo(member.filename, date_time=member.date_time)
            info.compress_type = member.compress_type
            info.external_attr = member.external_attr
            new.writestr(info, data)
    return out.getvalue()

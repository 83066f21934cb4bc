"""XLIFF 1.2 and 2.0: every unit without a translation gets a `<target>`, its inline codes kept.

The source of a unit is copied into its target and translated there (`nmt.documents.mixed`):
paired codes (1.2 `<g>`, 2.0 `<pc>`, `<mrk>`) are inline elements placed by the word alignment,
the others (`<x/>`, `<ph>`, `<bpt>`/`<ept>`, `<sc/>`/`<ec/>` …) stay untouched where the
translation puts them. Units marked `translate="no"` and units with a non-empty target are left
alone. Filled targets are marked for review (1.2: `state="needs-review-translation"`; 2.0: the
segment's `state="translated"`), and the file's target language is set.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from lxml import etree

from nmt.documents.base import DocumentError, Parsed, parse_xml
from nmt.documents.mixed import Paragraph, Role, local_name, paragraphs
from nmt.markup import Translated, place

XLIFF_1 = "urn:oasis:names:tc:xliff:document:1.2"
XLIFF_2 = "urn:oasis:names:tc:xliff:document:2.0"
PAIRED = frozenset({"g", "pc", "mrk"})


def _classify(element: Any) -> Role:
    name = local_name(element)
    if name in PAIRED and element.get("translate", "yes") != "no" and element.get("mtype") != "protected":
        return Role.INLINE
    return Role.PIECE


def _text_of(element: Any) -> str:
    return "".join(element.itertext()).strip()


def parse_xliff(data: bytes, name: str) -> Parsed:
    """An XLIFF 1.2 or 2.0 document."""
    root = parse_xml(data, name)
    namespace = etree.QName(root).namespace
    if local_name(root) != "xliff" or namespace not in (XLIFF_1, XLIFF_2):
        raise DocumentError(f"{name} is not XLIFF 1.2 or 2.0 (root {root.tag})")
    two = namespace == XLIFF_2
    ns = {"x": namespace}
    units = root.iterfind(".//x:segment" if two else ".//x:trans-unit", ns)
    work: list[tuple[Any, Any, list[Paragraph]]] = []  # (unit, target, paragraphs of the target)
    for unit in units:
        holder = unit.getparent() if two else unit
        if unit.get("translate") == "no" or (holder is not None and holder.get("translate") == "no"):
            continue
        source = unit.find("x:source", ns)
        if source is None or not _text_of(source):
            continue
        old = unit.find("x:target", ns)
        if old is not None and _text_of(old):
            continue
        target = copy.deepcopy(source)
        target.tag = f"{{{namespace}}}target"
        for attribute in list(target.attrib):
            del target.attrib[attribute]
        found = paragraphs(target, _classify)
        if found:
            work.append((unit, (old, source, target), found))
    texts = [p.segment.text for _, _, found in work for p in found]

    def render(translations: Sequence[Translated], target_language: str) -> bytes:
        if len(translations) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(translations)} translations")
        done = iter(translations)
        for unit, (old, source, target), found in work:
            for paragraph in found:
                paragraph.rewrite(place(paragraph.segment, next(done)))
            target.tail = source.tail
            if old is not None:
                unit.replace(old, target)
            else:
                source.addnext(target)
            if two:
                unit.set("state", "translated")
            else:
                target.set("state", "needs-review-translation")
        if two:
            root.set("trgLang", target_language)
        else:
            for file in root.iterfind("x:file", ns):
                file.set("target-language", target_language)
        tree = root.getroottree()
        return etree.tostring(tree, encoding="utf-8", xml_declaration=True)

    return Parsed(texts, render, aligned=True)

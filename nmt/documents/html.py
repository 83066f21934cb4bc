"""HTML: pages, fragments (`format=html` in the APIs) and XHTML, translated paragraph by paragraph.

Each paragraph (text and inline markup between block elements) is one text; inline elements
(`<b>`, `<a href>`, `<span>` …) are put back around the words they hold by the word alignment
(`nmt.markup`); line breaks, images and inline code (`<code>`, `<kbd>`, `<var>` …) stay untouched
where the translation puts them; `<script>`, `<style>`, `<pre>` and anything marked
`translate="no"` or `class="notranslate"` is never translated. The attributes people read
(`title`, `alt`, `placeholder`, `aria-label`, a button's `value`, a page's description) are
translated, addresses (`href`, `src`) never. The page's `lang` becomes the target language.
XHTML (an XML declaration or the XHTML namespace) is parsed and written as XML, so well-formed
XHTML stays well-formed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from functools import partial
from html import escape
from typing import Any

import lxml.html
from lxml import etree

from nmt.documents.base import DocumentError, Parsed, decode_utf8, safe_xml_parser
from nmt.documents.mixed import Paragraph, Role, local_name, paragraphs
from nmt.markup import Translated, place

INLINE = frozenset(
    {"a", "abbr", "b", "bdi", "bdo", "big", "cite", "data", "del", "dfn", "em", "font", "i", "ins", "label", "mark",
     "q", "s", "small", "span", "strike", "strong", "sub", "sup", "time", "u"}
)  # fmt: skip
PIECES = frozenset(
    {"br", "img", "wbr", "input", "code", "kbd", "samp", "var", "tt", "math", "svg", "object", "embed", "iframe",
     "button", "select", "textarea"}
)  # fmt: skip
KEPT = frozenset({"script", "style", "pre", "template", "noscript"})
URI_ATTRIBUTES = frozenset({"href", "src", "action", "cite", "data", "formaction", "poster", "background", "longdesc"})
_TOKEN = re.compile(r"nmt-address-\d+")
ATTRIBUTES = ("title", "alt", "placeholder", "aria-label", "aria-description")
_DOCUMENT = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype|html)\b", re.IGNORECASE | re.DOTALL)
_XHTML = re.compile(rb"^\s*<\?xml|xmlns\s*=\s*[\"']http://www\.w3\.org/1999/xhtml", re.IGNORECASE)


def _no_translate(element: Any) -> bool:
    if element.get("translate", "").lower() == "no":
        return True
    return "notranslate" in element.get("class", "").split()


def classify(element: Any) -> Role:
    """The role of an HTML element in translation (see the module docstring)."""
    name = local_name(element).lower()
    if not name:
        return Role.PIECE  # a comment or processing instruction stays where it is
    if name in KEPT:
        return Role.KEPT
    if name in PIECES:
        return Role.PIECE
    if name in INLINE:
        return Role.PIECE if _no_translate(element) else Role.INLINE
    return Role.KEPT if _no_translate(element) else Role.BLOCK


def _attribute_slots(root: Any) -> list[tuple[Any, str]]:
    """(element, attribute) whose value people read, outside what is never translated."""
    slots = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        name = local_name(element).lower()
        if (
            name in KEPT
            or _no_translate(element)
            or any(local_name(a).lower() in KEPT or _no_translate(a) for a in element.iterancestors())
        ):
            continue
        for attribute in ATTRIBUTES:
            if (element.get(attribute) or "").strip():
                slots.append((element, attribute))
        button = name == "input" and (element.get("type") or "").lower() in ("button", "submit", "reset")
        if button and (element.get("value") or "").strip():
            slots.append((element, "value"))
        described = name == "meta" and (element.get("name") or "").lower() in ("description", "keywords")
        if described and (element.get("content") or "").strip():
            slots.append((element, "content"))
    return slots


class MarkupTexts:
    """The paragraphs and readable attributes of a tree: `texts` to translate, `apply` to write back."""

    def __init__(self, root: Any, classify_element: Any = classify) -> None:
        self.paragraphs: list[Paragraph] = paragraphs(root, classify_element)
        self.attributes = _attribute_slots(root)
        self.texts = [p.segment.text for p in self.paragraphs] + [str(e.get(a)).strip() for e, a in self.attributes]

    def apply(self, translations: Sequence[Translated]) -> None:
        """Write translations (one per text, in order) back into the tree."""
        if len(translations) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(translations)} translations")
        for (element, attribute), done in zip(self.attributes, translations[len(self.paragraphs) :], strict=True):
            element.set(attribute, done.text)
        for paragraph, done in zip(self.paragraphs, translations[: len(self.paragraphs)], strict=True):
            paragraph.rewrite(place(paragraph.segment, done))


def parse_html(data: bytes, name: str) -> Parsed:
    """An HTML page, fragment or XHTML document."""
    text = decode_utf8(data, name)
    if _XHTML.search(data[:2048]):
        return parse_xhtml(data, name)
    if _DOCUMENT.match(data[:4096]):
        parser = lxml.html.HTMLParser()
        root = _checked(lxml.html.document_fromstring, text, parser, name)
        declared = re.search(rb"<!doctype", data[:4096], re.IGNORECASE)  # else libxml2 reports a default one
        doctype = root.getroottree().docinfo.doctype if declared else None
        texts = MarkupTexts(root)

        def render_page(translations: Sequence[Translated], target: str) -> bytes:
            texts.apply(translations)
            root.set("lang", target)
            return _serialize(root, doctype=doctype or None).encode("utf-8")

        return Parsed(texts.texts, render_page, aligned=True)
    return fragment(text)


def _checked(parse: Callable[..., Any], text: str, parser: Any, name: str = "the HTML") -> Any:
    """The parsed tree; DocumentError where libxml2 dropped content over a resource limit (nesting
    deeper than 255 elements) instead of losing it silently."""
    root = parse(text, parser=parser)
    for entry in parser.error_log:
        if entry.type_name == "ERR_RESOURCE_LIMIT":
            raise DocumentError(f"{name} cannot be read whole: {entry.message}")
    return root


def _serialize(element: Any, doctype: str | None = None) -> str:
    """HTML of an element with its addresses exactly as they were: libxml2 would percent-encode the
    spaces and non-ASCII letters of `href`, `src` and the like, so they are stood in for meanwhile."""
    kept: dict[str, str] = {}
    for node in element.iter():
        if not isinstance(node.tag, str):
            continue
        for name in URI_ATTRIBUTES.intersection(node.attrib):
            token = f"nmt-address-{len(kept)}"
            kept[token] = node.attrib[name]
            node.set(name, token)
    html = lxml.html.tostring(element, encoding="unicode", doctype=doctype)
    for node in element.iter():
        if isinstance(node.tag, str):
            for name in URI_ATTRIBUTES.intersection(node.attrib):
                node.set(name, kept.get(node.attrib[name], node.attrib[name]))
    if not kept:
        return html
    return _TOKEN.sub(lambda m: escape(kept[m.group(0)], quote=True) if m.group(0) in kept else m.group(0), html)


def fragment(text: str) -> Parsed:
    """An HTML fragment, as `format=html` sends: translated and written back as a fragment."""
    if not text.strip():
        return Parsed([], lambda translations, target: text.encode("utf-8"), aligned=True)
    try:
        holder = _checked(partial(lxml.html.fragment_fromstring, create_parent="div"), text, lxml.html.HTMLParser())
    except (etree.ParserError, ValueError) as err:
        raise DocumentError(f"the HTML cannot be read: {err}") from None
    texts = MarkupTexts(holder)

    def render_fragment(translations: Sequence[Translated], target: str) -> bytes:
        texts.apply(translations)
        parts = [escape(holder.text or "", quote=False)] + [_serialize(child) for child in holder]
        return "".join(parts).encode("utf-8")

    return Parsed(texts.texts, render_fragment, aligned=True)


def parse_xhtml(data: bytes, name: str) -> Parsed:
    """An XHTML document, written back as well-formed XML."""
    try:
        root = etree.fromstring(data, safe_xml_parser())
    except etree.XMLSyntaxError as err:
        raise DocumentError(f"{name} is not well-formed XHTML: {err}") from None
    tree = root.getroottree()
    texts = MarkupTexts(root)

    def render_xhtml(translations: Sequence[Translated], target: str) -> bytes:
        texts.apply(translations)
        root.set("lang", target)
        if root.get("{http://www.w3.org/XML/1998/namespace}lang") is not None:
            root.set("{http://www.w3.org/XML/1998/namespace}lang", target)
        head = b'<?xml version="1.0" encoding="UTF-8"?>\n' if data.lstrip().startswith(b"<?xml") else b""
        if tree.docinfo.doctype:
            head += tree.docinfo.doctype.encode("utf-8") + b"\n"
        # a copy outside the document: libxml2 adds a <meta> of its own to anything under an XHTML doctype
        return head + etree.tostring(copy.deepcopy(root), encoding="utf-8")

    return Parsed(texts.texts, render_xhtml, aligned=True)

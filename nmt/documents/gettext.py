"""Gettext catalogs (.po, .pot): untranslated and fuzzy entries filled by the model and marked fuzzy.

Read and written by polib: contexts, comments, references, flags, obsolete entries and the
header stay as they are; translated entries are left alone. A plural entry gets every form the
target language has (its singular from `msgid`, the others from `msgid_plural`), and the header
gets the target's `Language` and, where it has none, its `Plural-Forms`, with UTF-8 as the
charset, so that `msgfmt --check` accepts the result. A message's leading and trailing line
breaks are kept, as `msgfmt` demands; placeholders and accelerators are kept by the translator.
"""

from __future__ import annotations

from collections.abc import Sequence

import polib

from nmt.documents.base import DocumentError, Parsed, decode_utf8
from nmt.markup import Translated

PLURAL_FORMS = {
    "cs": "nplurals=3; plural=(n==1) ? 0 : (n>=2 && n<=4) ? 1 : 2;",
    "de": "nplurals=2; plural=(n != 1);",
    "en": "nplurals=2; plural=(n != 1);",
    "es": "nplurals=2; plural=(n != 1);",
    "fr": "nplurals=2; plural=(n > 1);",
    "it": "nplurals=2; plural=(n != 1);",
    "nl": "nplurals=2; plural=(n != 1);",
    "pl": "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);",
    "pt": "nplurals=2; plural=(n != 1);",
}
FUZZY = "fuzzy"


def _wanted(entry: polib.POEntry) -> bool:
    return not entry.obsolete and bool(entry.msgid) and (not entry.translated() or FUZZY in entry.flags)


def _split(text: str) -> tuple[str, str, str]:
    """Leading white space, the message, trailing white space."""
    core = text.strip()
    if not core:
        return text, "", ""
    start = text.index(core)
    return text[:start], core, text[start + len(core) :]


def _plurals(catalog: polib.POFile, target: str) -> int:
    forms = catalog.metadata.get("Plural-Forms") or PLURAL_FORMS.get(target, PLURAL_FORMS["en"])
    try:
        return max(1, int(forms.split("nplurals=")[1].split(";")[0]))
    except (IndexError, ValueError):
        return 2


def parse_po(data: bytes, name: str) -> Parsed:
    """A .po or .pot catalog."""
    text = decode_utf8(data, name)
    try:
        catalog = polib.pofile("\n" + text, wrapwidth=0)  # never a path: polib would open a file so named
    except (OSError, ValueError, UnicodeError) as err:
        raise DocumentError(f"{name} is not a valid gettext catalog: {err}") from None
    entries = [e for e in catalog if _wanted(e)]
    texts: list[str] = []
    for entry in entries:
        texts.append(_split(entry.msgid)[1])
        if entry.msgid_plural:
            texts.append(_split(entry.msgid_plural)[1])

    def render(translations: Sequence[Translated], target: str) -> bytes:
        if len(translations) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(translations)} translations")
        catalog.metadata["Language"] = target
        catalog.metadata["Content-Type"] = "text/plain; charset=UTF-8"
        catalog.metadata.setdefault("MIME-Version", "1.0")
        catalog.metadata.setdefault("Content-Transfer-Encoding", "8bit")
        if any(e.msgid_plural for e in entries) or "Plural-Forms" not in catalog.metadata:
            catalog.metadata.setdefault("Plural-Forms", PLURAL_FORMS.get(target, PLURAL_FORMS["en"]))
        catalog.encoding = "utf-8"
        done = iter(translations)
        for entry in entries:
            singular = _like(entry.msgid, next(done).text)
            if entry.msgid_plural:
                plural = _like(entry.msgid_plural, next(done).text)
                count = _plurals(catalog, target)
                entry.msgstr_plural = {k: singular if k == 0 else plural for k in range(count)}
            else:
                entry.msgstr = singular
            if FUZZY not in entry.flags:
                entry.flags.append(FUZZY)
        return str(catalog).encode("utf-8")

    return Parsed(texts, render)


def _like(source: str, translation: str) -> str:
    """The translation with the source's leading and trailing white space."""
    lead, _, trail = _split(source)
    return lead + translation.strip() + trail if translation.strip() else source

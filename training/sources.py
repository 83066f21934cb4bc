"""Readers of parallel text: plain parallel files, TSV, TMX, gettext catalogs and the Ding dictionary.

Each reader yields `Pair`s: a text per language and the group it came from (a line of a file,
a gettext package), the unit by which held-out sets are split off, so that no test sentence
shares its line or package with training data. Readers only read; cleaning and filtering are
`training.corpus`'s.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polib

from nmt.fileio import open_text


class SourceError(Exception):
    """A corpus source that cannot be read: missing, malformed, or not obtainable here."""


@dataclass(frozen=True)
class Pair:
    """One aligned pair: `texts` maps a language code to its text; `group` is its held-out unit."""

    texts: dict[str, str]
    group: str
    kind: str = "text"  # for Ding: "sentence", "phrase" or "word"


@dataclass
class GettextStats:
    """What a gettext catalog held besides the pairs read from it."""

    files: int = 0
    fuzzy: int = 0
    untranslated: int = 0
    obsolete: int = 0
    inputs: list[str] = field(default_factory=list)


def read_moses(files: dict[str, Path]) -> Iterator[Pair]:
    """Line-aligned plain files, one per language (plain or gzipped); unequal lengths are an error."""
    langs = list(files)
    handles = [open_text(files[lang]) for lang in langs]
    try:
        number = 0
        while True:
            lines = [h.readline() for h in handles]
            ended = [line == "" for line in lines]
            if all(ended):
                return
            if any(ended):
                raise SourceError(f"parallel files {', '.join(str(files[lang]) for lang in langs)} differ in length")
            number += 1
            yield Pair({lang: line.rstrip("\r\n") for lang, line in zip(langs, lines, strict=True)}, f"line {number}")
    finally:
        for h in handles:
            h.close()


def read_tsv(path: Path, columns: list[str]) -> Iterator[Pair]:
    """Tab-separated pairs, a column per language as `columns` names them (empty names skip a column)."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            cells = line.rstrip("\r\n").split("\t")
            if len(cells) < len(columns):
                continue
            yield Pair({lang: cells[i] for i, lang in enumerate(columns) if lang}, f"line {number}")


def read_tmx(path: Path, languages: list[str]) -> Iterator[Pair]:
    """Translation units of a TMX file holding a segment in each of `languages` (xml:lang, any region)."""
    lang_attr = "{http://www.w3.org/XML/1998/namespace}lang"
    try:
        for number, (_, elem) in enumerate(ET.iterparse(str(path), events=("end",)), 1):
            if elem.tag != "tu":
                continue
            texts: dict[str, str] = {}
            for tuv in elem.iter("tuv"):
                lang = (tuv.get(lang_attr) or tuv.get("lang") or "").split("-")[0].split("_")[0].lower()
                seg = tuv.find("seg")
                if lang in languages and seg is not None:
                    texts[lang] = "".join(seg.itertext())
            if all(lang in texts for lang in languages):
                yield Pair(texts, f"unit {number}")
            elem.clear()
    except ET.ParseError as err:
        raise SourceError(f"{path}: not well-formed TMX: {err}") from None


def read_gettext(path: Path, english: str, lang: str, group: str, stats: GettextStats) -> Iterator[Pair]:
    """msgid/msgstr pairs of a `.po` or `.mo` catalog (msgid is English); plural forms pair the
    singular with the first form and the plural with the last; fuzzy, obsolete and untranslated
    entries and the header are skipped and counted."""
    try:
        catalog = polib.mofile(str(path)) if path.suffix == ".mo" else polib.pofile(str(path))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise SourceError(f"{path}: not a gettext catalog: {err}") from None
    stats.files += 1
    for entry in catalog:
        if entry.obsolete:
            stats.obsolete += 1
        elif "fuzzy" in entry.flags:
            stats.fuzzy += 1
        elif not entry.msgid:
            continue
        elif entry.msgid_plural:
            forms = [entry.msgstr_plural[k] for k in sorted(entry.msgstr_plural)]
            if not forms or not all(forms):
                stats.untranslated += 1
                continue
            yield Pair({english: entry.msgid, lang: forms[0]}, group)
            yield Pair({english: entry.msgid_plural, lang: forms[-1]}, group)
        elif not entry.msgstr:
            stats.untranslated += 1
        else:
            yield Pair({english: entry.msgid, lang: entry.msgstr}, group)


def debian_package(name: str, cache: Path) -> Path:
    """The unpacked files of Debian package `name`, fetched once into `cache` with apt-get download."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name):
        raise SourceError(f"{name!r} is not a Debian package name")
    unpacked = cache / name
    if (unpacked / ".unpacked").exists():
        return unpacked
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SourceError(f"package {name}: apt-get and dpkg-deb are needed to fetch Debian packages")
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob(f"{name}_*.deb"))
    if not debs:
        done = subprocess.run(["apt-get", "download", "-q", name], cwd=cache, capture_output=True, text=True)
        debs = sorted(cache.glob(f"{name}_*.deb"))
        if done.returncode != 0 or not debs:
            raise SourceError(f"package {name}: apt-get download failed: {done.stderr.strip()[-300:]}")
    unpacked.mkdir(exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(unpacked)], check=True)
    (unpacked / ".unpacked").write_text(debs[-1].name, encoding="utf-8")
    return unpacked


def package_catalogs(root: Path, locale: str) -> list[Path]:
    """The gettext catalogs for `locale` (exactly that locale, no region variants) below an unpacked package."""
    return sorted(p for p in root.glob(f"usr/share/locale/{locale}/LC_MESSAGES/*") if p.suffix in (".mo", ".po"))


# ----- the Ding dictionary ---------------------------------------------------------------------

_ANNOTATION = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]|<[^<>]*>|\s/[^/\s][^/]*/(?=\s|$)")
_PARENS = re.compile(r"\s*\([^()]*\)")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)]*$")


def _ding_clean(text: str, sentence: bool) -> str:
    text = _ANNOTATION.sub(" ", text)
    if not sentence:
        text = _PARENS.sub(" ", text)
    return " ".join(text.split())


def _is_sentence(text: str) -> bool:
    return len(text.split()) >= 3 and bool(_SENTENCE_END.search(text)) and text[:1].isupper()


def ding_parts(line: str) -> list[tuple[str, str, str]] | None:
    """(German, English, kind) pairs of one Ding line, or None where its sides do not align."""
    sides = line.split(" :: ")
    if len(sides) != 2:
        return None
    de_parts, en_parts = sides[0].split(" | "), sides[1].split(" | ")
    if len(de_parts) != len(en_parts):
        return None
    out = []
    for de_part, en_part in zip(de_parts, en_parts, strict=True):
        sentence = _is_sentence(_ding_clean(de_part, True)) and _is_sentence(_ding_clean(en_part, True))
        de_syn = [s for s in (_ding_clean(x, sentence) for x in de_part.split("; ")) if s]
        en_syn = [s for s in (_ding_clean(x, sentence) for x in en_part.split("; ")) if s]
        if not de_syn or not en_syn:
            continue
        pairs = list(zip(de_syn, en_syn, strict=True)) if len(de_syn) == len(en_syn) else [(de_syn[0], en_syn[0])]
        for de, en in pairs:
            kind = "sentence" if sentence else ("phrase" if len(de.split()) > 1 or len(en.split()) > 1 else "word")
            out.append((de, en, kind))
    return out


def read_ding(path: Path, german: str = "de", english: str = "en") -> Iterator[Pair]:
    """Aligned parts of the Ding dictionary (`de parts :: en parts`); comment lines and lines whose
    sides have different numbers of parts are skipped."""
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            for de, en, kind in ding_parts(line) or []:
                yield Pair({german: de, english: en}, f"line {number}", kind)

"""`nmt-corpus build CORPUS.yaml [key=value ...]`: build cleaned, deduplicated parallel text.

A corpus recipe names its two languages, an output folder and its sources (plain parallel files,
TSV, TMX, gettext catalogs from files or Debian packages, the Ding dictionary), each with a domain
and a licence. The build cleans every pair (Unicode NFC, control characters and line breaks to
spaces), drops what a model should not learn from, each drop counted by reason (empty, too long,
length ratio, untranslated copy, wrong language, placeholders that differ between the sides,
duplicate), splits held-out sets off by group (a dictionary line, a gettext package) and writes:

    train.L1 train.L2            training pairs (a source's `repeat` copies it)
    valid.L1 valid.L2            validation pairs of every domain
    test.DOMAIN.L1 test.DOMAIN.L2  a test set per domain, with no text seen in training
    manifest.json                languages, sources with inputs, licences and counts, outputs

The same recipe and inputs give the same files; the folder is replaced whole, only on success.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nmt.fileio import atomic_directory
from nmt.langid import shipped_profiles
from nmt.placeholders import protect, protect_like
from training import sources as src
from training.config import ConfigError, apply_override, format_errors

log = logging.getLogger(__name__)

Split = Literal["train", "valid", "test"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filters(_Section):
    """What a kept pair must satisfy; each rule's drops are counted in the manifest."""

    max_chars: int = Field(400, ge=1, description="longest text kept, in characters")
    max_ratio: float = Field(3.0, ge=1.0, description="longest / shortest side, in characters")
    ratio_from_chars: int = Field(20, ge=1, description="the ratio applies where a side is at least this long")
    untranslated_words: int = Field(3, ge=1, description="identical sides of this many words are untranslated")
    language_words: int = Field(5, ge=1, description="texts of this many words are checked for their language")
    language_confidence: float = Field(95.0, ge=50.0, le=100.0, description="how sure the wrong-language call is")


class Source(_Section):
    """One input; `format` says which of the other fields it reads."""

    name: str = Field(min_length=1)
    format: Literal["moses", "tsv", "tmx", "gettext", "ding"]
    domain: str = Field(min_length=1, pattern=r"^[a-z0-9_-]+$")
    licence: str = Field(min_length=1)
    files: dict[str, Path] = Field(default_factory=dict, description="moses: a file per language")
    path: Path | None = Field(None, description="tsv, tmx, ding: the file")
    columns: list[str] = Field(default_factory=list, description="tsv: the language of each column")
    catalogs: list[Path] = Field(default_factory=list, description="gettext: .po/.mo files (msgid in English)")
    packages: list[str] = Field(default_factory=list, description="gettext: Debian packages to fetch")
    locale: str | None = Field(None, description="gettext: the locale folder (default: the other language)")
    split: Split | None = Field(None, description="put the whole source in this split")
    test: int = Field(0, ge=0, description="pairs held out for the test set, by group")
    valid: int = Field(0, ge=0, description="pairs held out for validation, by group")
    test_groups: list[str] = Field(default_factory=list, description="gettext: packages held out for the test set")
    valid_groups: list[str] = Field(default_factory=list, description="gettext: packages held out for validation")
    heldout_kinds: list[str] = Field(default_factory=lambda: ["text", "sentence"], description="kinds held out")
    kinds: list[str] = Field(
        default_factory=lambda: ["text", "sentence", "phrase", "word"], description="ding: which kinds of part"
    )
    repeat: int = Field(1, ge=1, description="copies of its training pairs")

    @model_validator(mode="after")
    def _inputs(self) -> Source:
        needs = {"moses": bool(self.files), "tsv": self.path is not None and bool(self.columns)}
        needs |= {"tmx": self.path is not None, "ding": self.path is not None}
        needs["gettext"] = bool(self.catalogs or self.packages)
        if not needs[self.format]:
            wanted = {"moses": "files", "tsv": "path and columns", "tmx": "path", "ding": "path"}
            raise ValueError(f"format {self.format} needs {wanted.get(self.format, 'catalogs or packages')}")
        return self


class CorpusConfig(_Section):
    """A whole corpus recipe."""

    languages: tuple[str, str]
    out_dir: Path
    seed: int = 1
    english: str = Field("en", description="the language of gettext msgids")
    cache_dir: Path = Field(Path("runs/corpus-cache"), description="where fetched packages are kept")
    filters: Filters = Field(default_factory=Filters)
    sources: list[Source] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> CorpusConfig:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("source names must differ")
        if self.languages[0] == self.languages[1]:
            raise ValueError("the two languages must differ")
        return self


@dataclass
class SourceReport:
    """What one source gave: inputs read, pairs per outcome, pairs per split."""

    inputs: list[str] = field(default_factory=list)
    read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    splits: Counter[str] = field(default_factory=Counter)
    notes: dict[str, int] = field(default_factory=dict)


def clean(text: str) -> str:
    """NFC, control characters and line breaks as spaces, runs of white space as one."""
    text = unicodedata.normalize("NFC", text)
    if not text.isprintable():
        text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return " ".join(text.split())


def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\0".join(map(str, parts)).encode()).digest()[:8], "big")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Builder:
    """Reads the sources of a recipe, filters and splits their pairs; see the module docstring."""

    def __init__(self, config: CorpusConfig) -> None:
        self.config = config
        self.langs = config.languages
        self.profiles = shipped_profiles()

    def _pairs(self, source: Source, report: SourceReport) -> Iterator[src.Pair]:
        """The source's raw pairs, its inputs recorded in `report`."""
        if source.format == "moses":
            report.inputs += [f"{p} sha256:{_sha256(p)}" for p in source.files.values()]
            yield from src.read_moses(dict(source.files))
        elif source.format in ("tsv", "tmx", "ding"):
            assert source.path is not None
            if not source.path.is_file():
                raise src.SourceError(f"source {source.name}: {source.path} does not exist")
            report.inputs.append(f"{source.path} sha256:{_sha256(source.path)}")
            if source.format == "tsv":
                yield from src.read_tsv(source.path, source.columns)
            elif source.format == "tmx":
                yield from src.read_tmx(source.path, list(self.langs))
            else:
                yield from (p for p in src.read_ding(source.path, *self.langs) if p.kind in source.kinds)
        else:
            yield from self._gettext(source, report)

    def _gettext(self, source: Source, report: SourceReport) -> Iterator[src.Pair]:
        english = self.config.english
        other = next((lang for lang in self.langs if lang != english), None)
        if english not in self.langs or other is None:
            raise src.SourceError(f"source {source.name}: gettext needs {english} as one of the languages")
        locale = source.locale or other
        stats = src.GettextStats()
        for path in source.catalogs:
            if not path.is_file():
                raise src.SourceError(f"source {source.name}: {path} does not exist")
            report.inputs.append(f"{path} sha256:{_sha256(path)}")
            yield from src.read_gettext(path, english, other, path.stem, stats)
        for package in source.packages:
            root = src.debian_package(package, self.config.cache_dir)
            deb = (root / ".unpacked").read_text(encoding="utf-8").strip()
            catalogs = src.package_catalogs(root, locale)
            report.inputs.append(f"debian:{deb} ({len(catalogs)} catalogs for {locale})")
            for path in catalogs:
                yield from src.read_gettext(path, english, other, package, stats)
        report.notes.update(
            catalogs=stats.files, fuzzy=stats.fuzzy, untranslated=stats.untranslated, obsolete=stats.obsolete
        )

    def _reject(self, texts: dict[str, str]) -> str | None:
        """Why a cleaned pair is not kept, or None."""
        f = self.config.filters
        a, b = (texts[lang] for lang in self.langs)
        if not a or not b:
            return "empty"
        if max(len(a), len(b)) > f.max_chars:
            return "too_long"
        if max(len(a), len(b)) >= f.ratio_from_chars and max(len(a), len(b)) > f.max_ratio * min(len(a), len(b)):
            return "length_ratio"
        if a.casefold() == b.casefold() and len(a.split()) >= f.untranslated_words:
            return "untranslated"
        for lang, text in texts.items():
            if len(text.split()) >= f.language_words:
                ranked = self.profiles.rank(text, list(self.langs))
                if ranked and ranked[0][0] != lang and ranked[0][1] >= f.language_confidence:
                    return "wrong_language"
        if protect_like(b, protect(a)) is None:
            return "placeholders"
        return None

    def _split_of(self, source: Source, pairs: list[src.Pair]) -> dict[str, Split]:
        """The split of every group of the source (groups not named are training)."""
        groups: dict[str, Split] = {}
        if source.split is not None:
            return {p.group: source.split for p in pairs}
        for name in source.test_groups:
            groups[name] = "test"
        for name in source.valid_groups:
            groups[name] = "valid"
        if source.test or source.valid:
            eligible: Counter[str] = Counter(p.group for p in pairs if p.kind in source.heldout_kinds)
            order = sorted(eligible, key=lambda g: _hash(self.config.seed, source.name, g))
            wanted: list[tuple[Split, int]] = [("test", source.test), ("valid", source.valid)]
            for split, count in wanted:
                taken = 0
                while taken < count and order:
                    group = order.pop()
                    groups[group] = split
                    taken += eligible[group]
        return groups

    def build(self) -> dict[str, Any]:
        """Read, filter and split every source, write the corpus folder; returns the manifest."""
        train: list[tuple[str, str]] = []
        heldout: dict[tuple[Split, str], list[tuple[str, str, str]]] = {}
        reports: dict[str, SourceReport] = {}
        seen_train: set[tuple[str, str]] = set()
        for source in self.config.sources:
            report = reports[source.name] = SourceReport()
            kept: list[src.Pair] = []
            for pair in self._pairs(source, report):
                report.read += 1
                texts = {lang: clean(pair.texts.get(lang, "")) for lang in self.langs}
                why = self._reject(texts)
                if why is None:
                    kept.append(src.Pair(texts, pair.group, pair.kind))
                else:
                    report.dropped[why] += 1
            groups = self._split_of(source, kept)
            for pair in kept:
                a, b = (pair.texts[lang] for lang in self.langs)
                split = groups.get(pair.group, "train")
                if split == "train":
                    if (a, b) in seen_train:
                        report.dropped["duplicate"] += 1
                        continue
                    seen_train.add((a, b))
                    train.extend([(a, b)] * source.repeat)
                    report.splits["train"] += source.repeat
                elif pair.kind in source.heldout_kinds:
                    heldout.setdefault((split, source.domain), []).append((a, b, source.name))
            log.info("%s: %d pairs read, %s", source.name, report.read, dict(report.dropped) or "none dropped")
        sets = self._heldout_sets(heldout, seen_train, reports)
        return self._write(train, sets, reports)

    def _heldout_sets(
        self,
        heldout: dict[tuple[Split, str], list[tuple[str, str, str]]],
        seen_train: set[tuple[str, str]],
        reports: dict[str, SourceReport],
    ) -> dict[str, list[tuple[str, str]]]:
        """Valid and per-domain test pairs: deduplicated, none with a text seen in training."""
        train_texts = [{a for a, _ in seen_train}, {b for _, b in seen_train}]
        sets: dict[str, list[tuple[str, str]]] = {}
        seen: set[str] = set()
        for (split, domain), pairs in sorted(heldout.items()):
            name = "valid" if split == "valid" else f"test.{domain}"
            for a, b, source in pairs:
                if a in train_texts[0] or b in train_texts[1]:
                    reports[source].dropped["seen_in_training"] += 1
                elif a in seen:
                    reports[source].dropped["duplicate"] += 1
                else:
                    seen.add(a)
                    sets.setdefault(name, []).append((a, b))
                    reports[source].splits[name] += 1
        return sets

    def _write(
        self, train: list[tuple[str, str]], sets: dict[str, list[tuple[str, str]]], reports: dict[str, SourceReport]
    ) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        with atomic_directory(self.config.out_dir) as tmp:
            for name, pairs in {"train": train, **sets}.items():
                for i, lang in enumerate(self.langs):
                    path = tmp / f"{name}.{lang}"
                    path.write_text("".join(p[i] + "\n" for p in pairs), encoding="utf-8")
                    outputs[path.name] = {"lines": len(pairs), "sha256": _sha256(path)}
            manifest = {
                "languages": list(self.langs),
                "command": "nmt-corpus build",
                "recipe": self.config.model_dump(mode="json"),
                "sources": {
                    s.name: {
                        "format": s.format,
                        "domain": s.domain,
                        "licence": s.licence,
                        "inputs": reports[s.name].inputs,
                        "read": reports[s.name].read,
                        "dropped": dict(sorted(reports[s.name].dropped.items())),
                        "splits": dict(sorted(reports[s.name].splits.items())),
                        **({"catalog_entries": reports[s.name].notes} if reports[s.name].notes else {}),
                    }
                    for s in self.config.sources
                },
                "outputs": outputs,
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")
        return manifest


def load_corpus_config(path: Path, overrides: Iterable[str] = ()) -> CorpusConfig:
    """Read and validate a corpus recipe; paths in it are relative to the directory the command runs in."""
    try:
        tree = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"corpus recipe {path} does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"corpus recipe {path} is not valid YAML: {err}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"corpus recipe {path} must hold a mapping")
    for override in overrides:
        apply_override(tree, override)
    try:
        return CorpusConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(format_errors(err)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `nmt-corpus`; returns the exit status."""
    parser = argparse.ArgumentParser(prog="nmt-corpus", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the corpus a recipe describes")
    build.add_argument("recipe", type=Path, help="YAML corpus recipe")
    build.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. out_dir=/tmp/c")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    try:
        config = load_corpus_config(args.recipe, args.overrides)
        manifest = Builder(config).build()
    except (ConfigError, src.SourceError, OSError) as err:
        print(f"nmt-corpus: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    for name, out in manifest["outputs"].items():
        print(f"{config.out_dir / name}\t{out['lines']} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())

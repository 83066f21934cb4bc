"""The corpus builder: every reader, every filter counted, held-out splits by group, reproducible output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polib
import pytest
import yaml

from training.corpus import clean, main
from training.sources import ding_parts

DATA = Path(__file__).parent / "data"


def _recipe(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    mo = tmp_path / "app.de.mo"
    polib.pofile(str(DATA / "app.de.po")).save_as_mofile(str(mo))
    recipe: dict[str, Any] = {
        "languages": ["de", "en"],
        "out_dir": str(tmp_path / "corpus"),
        "filters": {"language_words": 50},
        "sources": [
            {
                "name": "captions",
                "format": "moses",
                "domain": "captions",
                "licence": "test",
                "files": {"de": str(DATA / "captions.de"), "en": str(DATA / "captions.en")},
                "repeat": 2,
            },
            {"name": "ding", "format": "ding", "domain": "general", "licence": "GPL-2.0-or-later",
             "path": str(DATA / "ding.txt.gz"), "heldout_kinds": ["sentence"], "test": 1},
            {"name": "po", "format": "gettext", "domain": "software", "licence": "GPL",
             "catalogs": [str(DATA / "app.de.po"), str(DATA / "tools.de.po")], "test_groups": ["tools.de"]},
            {"name": "mo", "format": "gettext", "domain": "software", "licence": "GPL", "catalogs": [str(mo)]},
            {"name": "tmx", "format": "tmx", "domain": "general", "licence": "CC0", "path": str(DATA / "memory.tmx")},
            {"name": "tsv", "format": "tsv", "domain": "general", "licence": "CC0",
             "path": str(DATA / "phrases.tsv"), "columns": ["de", "en"]},
        ],
    }  # fmt: skip
    recipe.update(extra)
    return recipe


def _build(tmp_path: Path, recipe: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "corpus.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    code = main(["build", str(path)])
    manifest_path = Path(recipe["out_dir"]) / "manifest.json"
    return code, json.loads(manifest_path.read_text()) if manifest_path.exists() else {}


def _pairs(folder: Path, name: str) -> list[tuple[str, str]]:
    de = (folder / f"{name}.de").read_text(encoding="utf-8").splitlines()
    en = (folder / f"{name}.en").read_text(encoding="utf-8").splitlines()
    assert len(de) == len(en)
    return list(zip(de, en, strict=True))


def test_builds_cleaned_split_corpus_with_a_manifest(tmp_path: Path) -> None:
    code, manifest = _build(tmp_path, _recipe(tmp_path))
    assert code == 0
    out = tmp_path / "corpus"
    train = _pairs(out, "train")
    # gettext: plurals both ways, line breaks folded, placeholders and markup kept as written
    assert ("%d Datei gelöscht", "%d file deleted") in train
    assert ("%d Dateien gelöscht", "%d files deleted") in train
    assert ("Dieses Programm kommt OHNE JEDE GARANTIE. Details stehen in der Lizenz.",
            "This program comes with ABSOLUTELY NO WARRANTY. See the licence for details.") in train  # fmt: skip
    assert any("<b>%(name)s</b>" in de and "{count}" in en for de, en in train)
    # fuzzy, untranslated, a lost placeholder and an untranslated copy are not trained on
    texts = {t for pair in train for t in pair}
    assert not {"Die Seite drucken", "Close the window", "%s kopieren"} & texts
    assert "The quick brown fox jumps over the lazy dog" not in texts
    # the Ding dictionary: annotations removed, aligned parts and synonyms paired
    assert ("Haus", "house") in train and ("Gebäude", "building") in train and ("Häuser", "houses") in train
    assert ("Aal", "eel") in train
    assert ("kaputt", "broken") in train
    # captions: the duplicate pair once, repeated twice; the empty line dropped
    assert train.count(("Ein Hund läuft über die Wiese.", "A dog runs across the meadow.")) == 2
    assert ("Der Drucker hat kein Papier mehr.", "The printer is out of paper.") in train
    assert ("Guten Morgen", "Good morning") in train
    # held-out: a whole package for software, whole Ding lines for general text
    software = _pairs(out, "test.software")
    assert ("Die ganze Festplatte durchsuchen", "Search the whole disk") in software
    assert ("Öffnen", "Open") not in software  # seen in training
    assert not any(de == "Suchen" for de, _ in train)
    general = _pairs(out, "test.general")
    assert len(general) == 1 and general[0][0].endswith(".")
    assert general[0] not in train and all(de != general[0][0] for de, _ in train)

    sources = manifest["sources"]
    assert sources["po"]["catalog_entries"]["fuzzy"] == 1 and sources["po"]["catalog_entries"]["untranslated"] == 1
    assert sources["po"]["dropped"]["placeholders"] == 1 and sources["po"]["dropped"]["untranslated"] == 1
    assert sources["captions"]["dropped"] == {"duplicate": 1, "empty": 1}
    assert sources["ding"]["licence"] == "GPL-2.0-or-later"
    assert all("sha256:" in i for i in sources["ding"]["inputs"])
    assert manifest["outputs"]["train.de"]["lines"] == len(train)
    for source in sources.values():  # nothing read is unaccounted for
        kept = sum(source["splits"].values())
        assert source["read"] >= kept


def test_the_same_recipe_builds_the_same_files(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    _build(tmp_path, recipe)
    first = {p.name: p.read_bytes() for p in (tmp_path / "corpus").iterdir()}
    _build(tmp_path, recipe)
    assert {p.name: p.read_bytes() for p in (tmp_path / "corpus").iterdir()} == first


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"languages": ["de", "de"]}, "the two languages must differ"),
        ({"sources": [{"name": "x", "format": "tmx", "domain": "d", "licence": "l"}]}, "sources.0: Value error"),
        ({"sources": [{"name": "x", "format": "csv", "domain": "d", "licence": "l", "path": "a"}]}, "sources.0.format"),
        ({"filters": {"max_ratio": 0.5}}, "filters.max_ratio"),
        ({"colour": "blue"}, "colour: unknown key"),
    ],
)
def test_a_bad_recipe_fails_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], message: str
) -> None:
    code, _ = _build(tmp_path, _recipe(tmp_path, **change))
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_missing_or_broken_input_fails_and_leaves_no_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = _recipe(tmp_path)
    recipe["sources"][1]["path"] = str(tmp_path / "missing.txt")
    code, _ = _build(tmp_path, recipe)
    assert code == 1 and "missing.txt does not exist" in capsys.readouterr().err
    broken = tmp_path / "broken.tmx"
    broken.write_text("<tmx><body><tu>", encoding="utf-8")
    recipe = _recipe(tmp_path)
    recipe["sources"][4]["path"] = str(broken)
    code, _ = _build(tmp_path, recipe)
    assert code == 1 and "not well-formed TMX" in capsys.readouterr().err
    assert not (tmp_path / "corpus").exists()


def test_unequal_parallel_files_are_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = tmp_path / "short.en"
    short.write_text("one line\n", encoding="utf-8")
    recipe = _recipe(tmp_path)
    recipe["sources"][0]["files"]["en"] = str(short)
    code, _ = _build(tmp_path, recipe)
    assert code == 1 and "differ in length" in capsys.readouterr().err


def test_ding_lines_whose_parts_do_not_align_give_nothing() -> None:
    assert ding_parts("Haus {n} | Häuser {pl} :: house") is None
    assert ding_parts("no separator here") is None
    assert ding_parts("Ich weiß es nicht. :: I do not know.") == [("Ich weiß es nicht.", "I do not know.", "sentence")]


def test_clean_folds_control_characters_and_normalises() -> None:
    assert clean("  Zeile\neins\t und\u200b zwei ") == "Zeile eins und zwei"
    assert clean("Cafe\u0301") == "Café"

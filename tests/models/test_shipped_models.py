"""The shipped models: each loads, is small, says what it serves and how well, and translates sensibly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmt.placeholders import placeholders_in
from nmt.routing import find_model_dirs, reachable
from nmt.search import SearchOptions
from nmt.translator import Translator

MODELS = Path(__file__).resolve().parents[2] / "models"
SIZE_BUDGET = 64 * 2**20  # models/ in all

# source sentence -> words the translation must contain (any one of each group), per direction
CASES = {
    "de-en": [
        ("Ein Hund rennt durch den Schnee.", [{"dog"}, {"snow"}]),
        ("Zwei Männer spielen Fußball auf einem Feld.", [{"two"}, {"men"}, {"soccer", "football"}]),
        ("Eine Frau sitzt auf einer Bank im Park.", [{"woman", "lady"}, {"bench"}, {"park"}]),
        ("Ein kleines Mädchen isst einen roten Apfel.", [{"girl"}, {"apple"}, {"red"}]),
        ("Ein Mann fährt Fahrrad auf der Straße.", [{"man"}, {"bike", "bicycle"}, {"street", "road"}]),
    ],
    "en-de": [
        ("A dog runs through the snow.", [{"hund"}, {"schnee"}]),
        ("Two men are playing soccer on a field.", [{"zwei"}, {"männer"}, {"fußball"}]),
        ("A woman is sitting on a bench in the park.", [{"frau"}, {"bank"}, {"park"}]),
    ],
    "en-fr": [
        ("A dog runs through the snow.", [{"chien"}, {"neige"}]),
        ("Two men are playing soccer on a field.", [{"deux"}, {"hommes"}, {"football"}]),
        ("A woman is sitting on a bench in the park.", [{"femme"}, {"banc"}, {"parc"}]),
    ],
    "fr-en": [
        ("Un chien court dans la neige.", [{"dog"}, {"snow"}]),
        ("Une femme est assise sur un banc.", [{"woman", "lady"}, {"bench"}]),
    ],
    "en-cs": [
        ("A dog runs through the snow.", [{"pes"}]),
        ("Two men are playing soccer.", [{"dva"}, {"muži"}]),
    ],
    "cs-en": [
        ("Pes běží sněhem.", [{"dog"}]),
        ("Dva muži hrají fotbal.", [{"two"}, {"men"}]),
    ],
}
# test_2016_flickr / test_2017_flickr beam-5 BLEU each direction must reach
PROMISED = {"de-en": (41.5, 37.0), "en-de": (37.0, None), "en-fr": (57.0, None)}
SHIPPED = [p.name for p in find_model_dirs(MODELS)]


def test_de_en_ships_and_all_of_models_fits_the_budget() -> None:
    assert "de-en" in SHIPPED
    assert sum(f.stat().st_size for f in MODELS.rglob("*") if f.is_file()) <= SIZE_BUDGET


def test_every_source_reaches_every_other_language_directly_or_through_english() -> None:
    config = {name: json.loads((MODELS / name / "config.json").read_text()) for name in SHIPPED}
    pairs = {(c["source_language"], c["target_language"]) for c in config.values()}
    languages = {lang for pair in pairs for lang in pair}
    for source, targets in reachable(pairs).items():
        assert set(targets) == languages - {source}, source


@pytest.mark.parametrize("name", SHIPPED)
def test_each_model_is_small_says_what_it_serves_and_how_well(name: str) -> None:
    config = json.loads((MODELS / name / "config.json").read_text())
    assert config["weights"]["dtype"] == "int8"
    assert f"{config['source_language']}-{config['target_language']}" == name
    assert sum(f.stat().st_size for f in (MODELS / name).iterdir()) <= 12 * 10**6
    scores = config["metrics"]["test_2016_flickr"]
    assert scores["beam_size"] == 5 and scores["sentences"] == 1000
    card = (MODELS / name / "MODEL_CARD.md").read_text()
    assert "test_2016_flickr" in card and f"{scores['BLEU']:.2f}" in card
    for test_set, floor in zip(("test_2016_flickr", "test_2017_flickr"), PROMISED.get(name, ()), strict=False):
        if floor is not None:
            assert config["metrics"][test_set]["BLEU"] >= floor, (name, test_set)


@pytest.mark.parametrize("name", SHIPPED)
def test_each_model_translates_sensibly(name: str) -> None:
    translator = Translator.from_dir(MODELS / name, device="cpu")
    cases = CASES[name]
    results = translator.translate([src for src, _ in cases], SearchOptions(beam_size=5))
    for (src, groups), result in zip(cases, results, strict=True):
        words = set(result.text.lower().replace(".", " ").replace(",", " ").split())
        missing = [g for g in groups if not g & words]
        assert not missing, f"{src!r} -> {result.text!r} lacks {missing}"


_RSS_PROBE = """
import json, sys
from pathlib import Path
from nmt.memory import release_free_memory, rss_bytes
from nmt.search import SearchOptions
from nmt.translator import Translator
dirs = [Path(p) for p in sys.argv[1:]]
held, sizes = [], []
for path in dirs:
    translator = Translator.from_dir(path, device="cpu", footprint="lean")
    translator.translate(["Warm-up."], SearchOptions(beam_size=2))
    release_free_memory()  # as the service does after each load
    held.append(translator)
    sizes.append(rss_bytes())
print(json.dumps(sizes))
"""


def test_each_extra_model_in_the_lean_footprint_costs_at_most_twice_its_weights_file() -> None:
    """A service holding many models: after the first (libraries, buffers), each costs about its weights."""
    import subprocess
    import sys

    dirs = find_model_dirs(MODELS)
    assert len(dirs) >= 3
    done = subprocess.run([sys.executable, "-c", _RSS_PROBE, *map(str, dirs)], capture_output=True, text=True,
                          timeout=300, check=True)  # fmt: skip
    sizes = json.loads(done.stdout.strip().splitlines()[-1])
    for path, before, after in zip(dirs[1:], sizes[:-1], sizes[1:], strict=True):
        weights = (path / "model.safetensors").stat().st_size
        assert after - before <= 2 * weights, (
            f"{path.name}: {(after - before) / 2**20:.1f} MB for {weights / 2**20:.1f} MB of weights"
        )


SOFTWARE = Path(__file__).parent / "data" / "software.en"


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.startswith("en-")])
def test_software_strings_keep_exactly_their_placeholders_and_accelerators(name: str) -> None:
    """UI strings with printf, braces, variables, tags, entities, URLs and accelerators: every output holds
    exactly its source's placeholders (the issue's bar is 99 %; restoring makes it all of them)."""
    strings = SOFTWARE.read_text(encoding="utf-8").splitlines()
    translator = Translator.from_dir(MODELS / name, device="cpu")
    outputs = [t.text for t in translator.translate(strings, SearchOptions(beam_size=5))]
    for source, output in zip(strings, outputs, strict=True):
        assert placeholders_in(output) == placeholders_in(source), (source, output)
        for marker in "_&~":
            if source.startswith(marker) and source[1:2].isalpha():
                assert output.count(marker) == 1, (source, output)

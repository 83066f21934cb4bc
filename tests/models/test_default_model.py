"""The shipped default model loads, is small, and translates German into sensible English."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmt.search import SearchOptions
from nmt.translator import Translator

MODEL = Path(__file__).resolve().parents[2] / "models" / "de-en"

# German input -> words its English translation must contain (any one of each group)
CASES = [
    ("Ein Hund rennt durch den Schnee.", [{"dog"}, {"snow"}]),
    ("Zwei Männer spielen Fußball auf einem Feld.", [{"two"}, {"men"}, {"soccer", "football"}]),
    ("Eine Frau sitzt auf einer Bank im Park.", [{"woman", "lady"}, {"bench"}, {"park"}]),
    ("Ein kleines Mädchen isst einen roten Apfel.", [{"girl"}, {"apple"}, {"red"}]),
    ("Ein Mann fährt Fahrrad auf der Straße.", [{"man"}, {"bike", "bicycle"}, {"street", "road"}]),
]


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator.from_dir(MODEL, device="cpu")


def test_it_is_a_small_int8_stored_model_with_a_card() -> None:
    config = json.loads((MODEL / "config.json").read_text())
    assert config["weights"]["dtype"] == "int8"
    assert config["source_language"] == "de" and config["target_language"] == "en"
    assert sum(f.stat().st_size for f in MODEL.iterdir()) <= 12 * 10**6
    assert "test_2016_flickr" in (MODEL / "MODEL_CARD.md").read_text()


def test_it_translates_to_sensible_english(translator: Translator) -> None:
    results = translator.translate([src for src, _ in CASES], SearchOptions(beam_size=5))
    for (src, groups), result in zip(CASES, results, strict=True):
        words = set(result.text.lower().replace(".", " ").replace(",", " ").split())
        missing = [g for g in groups if not g & words]
        assert not missing, f"{src!r} -> {result.text!r} lacks {missing}"

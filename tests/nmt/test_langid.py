"""Language identification: the shipped character n-gram profiles and the script that builds them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmt.langid import LanguageProfiles, char_ngrams, shipped_profiles
from training.langid import main as build_profiles

ALL = ["en", "de", "fr", "cs"]
SENTENCES = {
    "en": ["A little girl climbs into a wooden playhouse.", "Two dogs play", "the beach"],
    "de": ["Ein kleines Mädchen klettert in ein Spielhaus aus Holz.", "Zwei Hunde spielen", "Straße"],
    "fr": ["Une petite fille grimpe dans une maisonnette en bois.", "Deux chiens jouent", "château"],
    "cs": ["Malá holčička leze do dřevěného domečku.", "Dva psi si hrají", "ulice přes"],
}


@pytest.mark.parametrize("lang", ALL)
def test_the_shipped_profiles_know_the_four_languages(lang: str) -> None:
    profiles = shipped_profiles()
    assert profiles.languages == sorted(ALL)
    for text in SENTENCES[lang]:
        ranked = profiles.rank(text, ALL)
        assert ranked[0][0] == lang, (text, ranked)
        assert sum(conf for _, conf in ranked) == pytest.approx(100, abs=0.3)


def test_odd_texts_get_equal_shares_and_unknown_languages_no_rank() -> None:
    profiles = shipped_profiles()
    assert profiles.rank("", ["de", "en"]) == [("de", 50.0), ("en", 50.0)]
    assert profiles.rank("123 !!! ...", ["de", "en"])[0][1] <= 100
    assert profiles.rank("Hallo", ["es", "xx"]) == []
    assert profiles.rank("x" * 10_000, ALL)  # long, one repeated letter: no overflow


def test_char_ngrams_pad_words() -> None:
    assert list(char_ngrams("Ab", (1, 2, 3))) == ["a", "b", " a", "ab", "b ", " ab", "ab "]


def test_building_profiles_from_files(tmp_path: Path) -> None:
    (tmp_path / "train.aa").write_text("lorem ipsum dolor\n" * 20, encoding="utf-8")
    (tmp_path / "train.bb").write_text("zzyzx qwerty\n" * 20, encoding="utf-8")
    out = tmp_path / "p.json"
    assert build_profiles([str(tmp_path / "train.aa"), str(tmp_path / "train.bb"), "--out", str(out)]) == 0
    profiles = LanguageProfiles(json.loads(out.read_text(encoding="utf-8")))
    assert profiles.rank("dolor sit", ["aa", "bb"])[0][0] == "aa"
    assert profiles.rank("qwerty", ["aa", "bb"])[0][0] == "bb"

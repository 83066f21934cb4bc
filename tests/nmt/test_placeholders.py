"""Placeholders and markup survive translation: whatever a model writes, the output keeps the source's."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmt.placeholders import SYMBOLS, protect, protect_like, restore, symbols_in

CASES = [
    ("Save the file as %s", ["%s"]),
    ("%d files deleted", ["%d"]),
    ("Copy %1$s to %2$s", ["%1$s", "%2$s"]),
    ("Hello %(name)s, you have {count} messages", ["%(name)s", "{count}"]),
    ("Item {0} of {1}", ["{0}", "{1}"]),
    ("Set ${HOME} and $1", ["${HOME}", "$1"]),
    ("Press <b>OK</b> &amp; wait", ["<b>", "</b>", "&amp;"]),
    ('<a href="https://example.org/a?b=1">link</a>', ['<a href="https://example.org/a?b=1">', "</a>"]),
    ("%1 of %2 done", ["%1", "%2"]),
    ("Use {{ user.name }} here", ["{{ user.name }}"]),
    ("100%% complete", ["%%"]),
    ("Visit https://example.org/docs.", ["https://example.org/docs"]),
    ("Mail root@example.org now", ["root@example.org"]),
    ("%s: %s", ["%s", "%s"]),
    ("Line<br/>break", ["<br/>"]),
    ("%C18$1%O joined%B!", ["%C18", "$1", "%O", "%B"]),  # IRC clients' colour and style codes
    ("%C23*%O$tDCC CHAT", ["%C23", "%O", "$t"]),
]


def _placeholders(text: str) -> Counter[str]:
    masked = protect(text)
    return Counter(masked.spans[k - 1] for k in symbols_in(masked.text))


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_each_kind_of_placeholder_is_found(text: str, expected: list[str]) -> None:
    assert _placeholders(text) == Counter(expected)
    assert restore(protect(text).text, protect(text)) == text


@pytest.mark.parametrize("text", ["100% sure", "Tom & Jerry", "a {b c} d", "50 % off", "$ 5", "x < y > z"])
def test_plain_text_is_not_taken_for_placeholders(text: str) -> None:
    assert protect(text).text == text and not protect(text).changed


@pytest.mark.parametrize(
    ("label", "translation", "expected"),
    [
        ("_File", "Datei", "_Datei"),
        ("&Open", "Öffnen", "&Öffnen"),
        ("~Save As", "Speichern unter", "~Speichern unter"),
        ("Save _As", "Speichern _als", "Speichern _als"),  # a marker the model wrote is not doubled
        ("Save _As", "Speichern als", "Speichern _als"),  # the same letter at a word start
        ("_Quit", "Beenden", "_Beenden"),  # no such letter: the first letter
        ("Ö_ffnen", "Open", "_Open"),
        ("_Print %s", "｟1｠ drucken", "%s _drucken"),  # never inside a placeholder
    ],
)
def test_accelerators_are_removed_and_put_back_once(label: str, translation: str, expected: str) -> None:
    masked = protect(label)
    assert masked.accelerator is not None and masked.accelerator.marker not in masked.text
    assert restore(translation, masked) == expected


@pytest.mark.parametrize("text", ["file_name", "a_b_c", "Tom && Jerry", "A & B", "&amp;", "x ~ y"])
def test_things_that_look_like_accelerators_are_left_alone(text: str) -> None:
    assert protect(text).accelerator is None


def test_a_model_that_drops_duplicates_or_invents_placeholders_is_corrected() -> None:
    masked = protect("Copy %1$s to %2$s")
    assert masked.text == "Copy ｟1｠ to ｟2｠"
    assert restore("Kopiere ｟1｠ nach ｟2｠", masked) == "Kopiere %1$s nach %2$s"
    assert restore("Kopiere ｟1｠ ｟1｠ nach ｟2｠ ｟7｠", masked) == "Kopiere %1$s nach %2$s"
    assert _placeholders(restore("Kopiere nach", masked)) == _placeholders("Copy %1$s to %2$s")


def test_a_placeholder_the_model_spells_out_of_ordinary_pieces_is_removed() -> None:
    masked = protect("Datei %s öffnen")
    assert restore(f"Open {SYMBOLS[0]} file %d now", masked) == "Open %s file now"
    assert restore("A %e <b>bold</b> dog", protect("Ein Hund")) == "A bold dog"  # a source without any


def test_a_missing_placeholder_goes_where_the_attention_points() -> None:
    masked = protect("Delete %s now")
    src = ["▁Delete", "▁", "｟1｠", "▁now", "</s>"]
    tgt = ["▁Jetzt", "▁löschen", "</s>"]
    attention = [[0.1, 0.0, 0.1, 0.8, 0.0], [0.1, 0.1, 0.7, 0.1, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]]
    assert restore("Jetzt löschen", masked, src, tgt, attention) == "Jetzt löschen %s"
    attention[1] = [0.7, 0.1, 0.1, 0.1, 0.0]
    attention[0] = [0.1, 0.1, 0.7, 0.1, 0.0]
    assert restore("Jetzt löschen", masked, src, tgt, attention) == "Jetzt %s löschen"


def test_training_pairs_are_numbered_as_their_source() -> None:
    source = protect("Move %1$s to %2$s")
    assert protect_like("%2$s: %1$s verschieben", source) == "｟2｠: ｟1｠ verschieben"
    assert protect_like("%1$s verschieben", source) is None  # one lost: not a pair to learn from
    assert protect_like("%1$s %1$s nach %2$s", source) is None  # one doubled
    assert protect_like("_Datei", protect("_File")) == "Datei"


def test_text_already_holding_the_symbols_is_left_as_it_is() -> None:
    text = "literal ｟1｠ and %s"
    assert protect(text).text == text and restore("wörtlich ｟1｠", protect(text)) == "wörtlich ｟1｠"


def test_more_placeholders_than_symbols_leaves_the_rest_as_text() -> None:
    text = " ".join(f"{{v{i}}}" for i in range(len(SYMBOLS) + 5))
    masked = protect(text)
    assert len(masked.spans) == len(SYMBOLS)
    assert restore(masked.text, masked) == text


_PIECES = [p for _, spans in CASES for p in spans] + ["_", "&", "~"]
_WORDS = ["Datei", "open", "the", "Fenster", "100%", "a&b", "x", "über", "<", ">", "{", "}", "$"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES + _WORDS), min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_whatever_the_model_writes_the_output_keeps_the_source_placeholders(
    words: list[str], rng: random.Random
) -> None:
    text = " ".join(words)
    masked = protect(text)
    # a model's output: the symbols shuffled among new words, some dropped, some doubled, some invented
    symbols = re.findall(r"｟\d+｠", masked.text)
    noise = [s for s in symbols if rng.random() > 0.3] + [rng.choice(SYMBOLS) for _ in range(rng.randint(0, 2))]
    noise += [s for s in symbols if rng.random() < 0.2]
    output = ["Wort"] * rng.randint(0, 5) + noise
    rng.shuffle(output)
    restored = restore(" ".join(output), masked)
    assert _placeholders(restored) == _placeholders(text)
    if masked.accelerator is not None:
        assert restored.count(masked.accelerator.marker) >= 1


def test_the_translator_removes_placeholders_invented_for_a_source_without_any() -> None:
    """The guarantee is the Translator's, for every source: one without placeholders gets none back."""
    from pathlib import Path

    from nmt.search import Hypothesis
    from nmt.translator import Translator

    translator = Translator.from_dir(Path(__file__).resolve().parents[2] / "models" / "de-en", device="cpu")
    sources = translator.encode(["Ein Hund", "Datei %s"])
    model_wrote = translator.tokenizer.encode_tgt(["A %s dog $1", "File %s %d"])
    done = translator.finish(["Ein Hund", "Datei %s"], sources, [[Hypothesis(ids, 0.0, 0.0)] for ids in model_wrote])
    assert [d.text for d in done] == ["A dog", "File %s"]

"""Word alignments: every word of a translation points at a word of its own source, whatever the
placeholders, sentence splitting or pivot did to the texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from nmt.alignment import compose, masked_alignment, piece_words, restored_alignment
from nmt.placeholders import protect
from nmt.routing import translate_texts
from nmt.search import SearchOptions
from nmt.segment import split_text
from nmt.translator import Translator

SHIPPED = Path(__file__).resolve().parents[2] / "models"


def test_pieces_group_into_the_words_they_spell() -> None:
    assert piece_words(["▁Ein", "▁Ma", "nn", "▁", ",", "▁ja"]) == [0, 1, 1, 2, 2, 3]
    assert piece_words(["Hal", "lo"]) == [0, 0]  # no leading mark still starts a word


def test_each_target_word_takes_the_source_word_its_pieces_attend_to_most() -> None:
    weights = [[0.9, 0.1, 0.0], [0.2, 0.1, 0.7], [0.1, 0.0, 0.9], [0.0, 0.0, 0.0]]  # last row: eos
    words = masked_alignment("rotes Haus", "red house", weights, ["▁rote", "s", "▁Haus"], ["▁red", "▁hou", "se"])
    assert words == [0, 1]


def test_pieces_that_do_not_spell_the_words_fall_back_to_positions() -> None:
    weights = [[1.0, 0.0], [0.0, 1.0]]
    # the pieces spell one word, the texts have two: piece k is word k * words // pieces
    assert masked_alignment("a b", "x y", weights, ["▁a", "b"], ["▁x", "y"]) == [0, 1]
    assert masked_alignment("", "x", weights, [], ["▁x"]) == [-1]


def test_placeholders_holding_spaces_count_as_their_words_on_both_sides() -> None:
    source = protect('Klick <a href="x y">hier</a> jetzt')  # the tag holds a space: 5 source words
    assert source.text.split() == ["Klick", "｟1｠hier｟2｠", "jetzt"]
    masked_target = "Click ｟1｠here｟2｠ now"
    final = 'Click <a href="x y">here</a> now'
    aligned = restored_alignment(source, masked_target, final, [0, 1, 2])
    assert final.split()[1:4] == ["<a", 'href="x', 'y">here</a>']
    assert aligned == [0, 1, 1, 1, 4]  # the three words of the tag point at the first of its source words


def test_a_placeholder_restoring_inserted_points_at_the_source_word_that_holds_it() -> None:
    source = protect("Datei %s fehlt")
    aligned = restored_alignment(source, "File missing", "File %s missing", [0, 2])
    assert aligned == [0, 1, 2]


def test_alignments_compose_through_a_pivot_and_unknowns_stay_unknown() -> None:
    assert compose([2, 0, -1], [1, 0, 2, 5, -1]) == [0, 2, -1, -1, -1]


def test_sentences_joined_into_one_text_shift_their_word_indices() -> None:
    seg = split_text("Ein Hund. Zwei Katzen laufen.\nEnde.")
    assert seg.sentences == ["Ein Hund.", "Zwei Katzen laufen.", "Ende."]
    words = seg.join_alignments(["A dog.", "Two cats run.", "End."], [[0, 1], [0, 1, 2], [0]])
    assert words == [0, 1, 2, 3, 4, 5]
    assert seg.join_alignments(["A dog.", "", "End here."], [[0, 1], None, [0]]) == [0, 1, 5, -1]


@pytest.fixture(scope="module")
def de_en() -> Translator:
    return Translator.from_dir(SHIPPED / "de-en", device="cpu")


def test_a_real_translation_aligns_every_word_to_a_word_of_its_source(de_en: Translator) -> None:
    options = SearchOptions(beam_size=3, return_attention=True)
    texts = ["Ein Mann spielt Gitarre. Eine Frau singt.", "Zwei Hunde laufen auf dem Gras.", "", "%s Hunde"]
    for text, result in zip(texts, translate_texts([de_en], texts, options), strict=True):
        assert result.word_alignment is not None
        assert len(result.word_alignment) == len(result.text.split())
        assert all(-1 <= a < len(text.split()) for a in result.word_alignment)


PAIRS = {"Mann": "man", "Frau": "woman", "Hund": "dog", "Gitarre": "guitar", "Gras": "grass", "Strand": "beach"}


def test_attention_points_nouns_at_their_translations(de_en: Translator) -> None:
    texts = ["Ein Mann spielt Gitarre.", "Eine Frau sitzt am Strand.", "Ein Hund läuft über das Gras.",
             "Ein Mann und ein Hund sind am Strand.", "Eine Frau spielt Gitarre auf dem Gras."]  # fmt: skip
    options = SearchOptions(beam_size=5, return_attention=True)
    hits = total = 0
    for text, result in zip(texts, translate_texts([de_en], texts, options), strict=True):
        source = [w.strip(".") for w in text.split()]
        target = [w.strip(".").lower() for w in result.text.split()]
        for i, word in enumerate(source):
            if word in PAIRS and PAIRS[word] in target:
                total += 1
                hits += (result.word_alignment or [])[target.index(PAIRS[word])] == i
    assert total >= 8 and hits / total >= 0.7, (hits, total)

"""Sentence splitting keeps a text's layout: line breaks exactly, one space between sentences."""

from __future__ import annotations

import pytest

from nmt.segment import split_sentences, split_text


@pytest.mark.parametrize(
    ("line", "sentences"),
    [
        ("Ein Hund läuft. Eine Katze schläft!", ["Ein Hund läuft.", "Eine Katze schläft!"]),
        ("Dr. Müller kommt z.B. heute. Er geht.", ["Dr. Müller kommt z.B. heute.", "Er geht."]),
        ('Er sagt: "Hallo." Dann geht er.', ['Er sagt: "Hallo."', "Dann geht er."]),
        ("J. Smith arrived. 3 dogs ran?", ["J. Smith arrived.", "3 dogs ran?"]),
        ("no capital. after the stop", ["no capital. after the stop"]),
        ("eins.zwei. drei", ["eins.zwei. drei"]),
        ("   ", []),
    ],
)
def test_split_sentences(line: str, sentences: list[str]) -> None:
    assert split_sentences(line) == sentences


@pytest.mark.parametrize(
    ("text", "rebuilt"),
    [
        ("", ""),
        ("one", "one"),
        ("Ab cd. Ef gh!\n\nIj kl.\r\nMn", "Ab cd. Ef gh!\n\nIj kl.\r\nMn"),
        ("\n\nx\n", "\n\nx\n"),
        ("  Trailing.   Spaces  \n", "Trailing. Spaces\n"),
    ],
)
def test_join_keeps_line_breaks_and_single_spaces(text: str, rebuilt: str) -> None:
    seg = split_text(text)
    assert seg.join(seg.sentences) == rebuilt


def test_translations_replace_sentences_in_order() -> None:
    seg = split_text("Ab cd. Ef gh!\n\nIj kl.")
    assert seg.sentences == ["Ab cd.", "Ef gh!", "Ij kl."]
    assert seg.join(["1", "2", "3"]) == "1 2\n\n3"

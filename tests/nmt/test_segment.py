"""Sentence splitting keeps a text's layout: line breaks exactly, one space between sentences."""

from __future__ import annotations

import time

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


@pytest.mark.parametrize(
    "text",
    ["." * 4998 + " a", "!?…" * 1666 + " a", "A. " * 1666, "Dr. " * 1250, "z.B. " * 1000, ". A" * 1666],
)
def test_segmentation_takes_linear_time_on_pathological_text(text: str) -> None:
    """Runs of stops and of abbreviations were quadratic: 5,000 dots took 0.25 s, 128 of them froze the server."""
    started = time.perf_counter()
    for _ in range(10):
        split_text(text)
    assert (time.perf_counter() - started) / 10 < 0.02

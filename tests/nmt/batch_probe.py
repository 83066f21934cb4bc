"""Translate German sentences alone and in batches with the shipped model; print what differs, as JSON.

Run as `python -m tests.nmt.batch_probe --precision int8` by tests that lower the instruction
set through environment variables, which only take effect in a fresh process.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

from nmt.precision import PRECISION_CHOICES
from nmt.search import SearchOptions
from nmt.translator import Translator
from tests.cpu import cpu_description

MODEL = Path(__file__).resolve().parents[2] / "models" / "de-en"
_SUBJECTS = ["Ein Hund", "Zwei Männer", "Eine junge Frau mit einem roten Hut", "Ein kleines Kind", "Die Arbeiter"]
_ACTIONS = ["rennt durch den Schnee", "sitzt auf einer Bank", "spielt Fußball auf einem grünen Feld neben dem See",
            "isst einen Apfel", "fährt Fahrrad auf der Straße, während es regnet"]  # fmt: skip


def sentences(n: int) -> list[str]:
    """n German captions of 3 to 20 words, Multi30k-like."""
    pairs = itertools.islice(itertools.cycle(itertools.product(_SUBJECTS, _ACTIONS)), n)
    return [f"{s} {a}." if i % 3 else f"{s}." for i, (s, a) in enumerate(pairs)]


def probe(precision: str, shortlist: bool, n: int = 30, beam: int = 5) -> dict[str, object]:
    """Each sentence alone, then all of them under 64- and 4,096-token budgets: the rows that differ."""
    translator = Translator.from_dir(MODEL, device="cpu", precision=precision, shortlist="on" if shortlist else "off")
    assert (translator.shortlist is not None) == shortlist, "the shipped model has no shortlist"
    texts = sentences(n)
    options = SearchOptions(beam_size=beam)
    alone = [translator.translate([t], options)[0] for t in texts]
    differ = []
    for budget in (64, 4096):
        together = translator.translate(texts, options, batch_tokens=budget)
        for i, (a, b) in enumerate(zip(alone, together, strict=True)):
            if (a.text, a.score) != (b.text, b.score):
                differ.append({"budget": budget, "index": i, "alone": [a.text, a.score], "batched": [b.text, b.score]})
    return {"cpu": cpu_description(), "precision": translator.precision, "differ": differ}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto")
    parser.add_argument("--shortlist", choices=["on", "off"], default="on")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(probe(args.precision, args.shortlist == "on")))


if __name__ == "__main__":
    main()

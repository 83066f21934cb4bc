"""The whole pipeline learns: config -> Trainer -> model directory -> Translator.

The recipe (tests/synthetic.py) trains in well under a minute on 2 CPU cores (200 steps of
a 1-layer model); the session fixture `reverse_model` runs it once and other tests reuse the
trained model. Speed itself is measured by benchmarks/, not asserted here.
"""

from __future__ import annotations

from pathlib import Path

from nmt.search import SearchOptions
from nmt.translator import Translator
from training.trainer import TrainResult


def test_reversal_task_is_learned(reverse_model: TrainResult, reverse_corpus: dict[str, tuple[Path, Path]]) -> None:
    assert reverse_model.best_bleu is not None and reverse_model.best_bleu > 80
    src_path, tgt_path = reverse_corpus["test"]
    sources = src_path.read_text().splitlines()
    references = tgt_path.read_text().splitlines()
    translator = Translator.from_dir(reverse_model.model_dir, device="cpu", options=SearchOptions(beam_size=1))
    hyps = [t.text for t in translator.translate(sources)]
    exact = sum(h == r for h, r in zip(hyps, references, strict=True)) / len(references)
    assert exact >= 0.95, f"exact match {exact:.1%} on held-out sequences"

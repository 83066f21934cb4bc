"""The whole pipeline learns: config -> Trainer -> model directory -> Translator.

The recipe is sized to train in well under a minute on 2 CPU cores (200 steps of a 1-layer
model); speed itself is measured by benchmarks/, not asserted here.
"""

from __future__ import annotations

from pathlib import Path

from nmt.translator import Translator
from training.config import parse_config
from training.trainer import Trainer


def reverse_config(corpus: dict[str, tuple[Path, Path]], spm: Path, out: Path, **train: object) -> dict:
    """A small recipe for the reversal task, shared by the training tests."""
    (train_src, train_tgt), (valid_src, valid_tgt) = corpus["train"], corpus["valid"]
    return {
        "data": {
            "train_src": str(train_src),
            "train_tgt": str(train_tgt),
            "valid_src": str(valid_src),
            "valid_tgt": str(valid_tgt),
            "src_lang": "xx",
            "tgt_lang": "yy",
        },
        "tokenizer": {"model": str(spm)},
        "model": {
            "emb_size": 32,
            "enc_hidden": 64,
            "enc_layers": 1,
            "dec_hidden": 128,
            "dec_layers": 1,
            "dropout": 0.0,
        },
        "train": {
            "out_dir": str(out),
            "batch_tokens": 1200,
            "lr": 0.003,
            "label_smoothing": 0.0,
            "max_steps": 200,
            "valid_every": 100,
            "log_every": 50,
            "device": "cpu",
            **train,
        },
    }


def test_reversal_task_is_learned(tmp_path: Path, reverse_corpus: dict[str, tuple[Path, Path]], word_spm: Path) -> None:
    config = parse_config(reverse_config(reverse_corpus, word_spm, tmp_path / "run"))
    result = Trainer(config).train()
    assert result.best_bleu is not None and result.best_bleu > 80
    src_path, tgt_path = reverse_corpus["test"]
    sources = src_path.read_text().splitlines()
    references = tgt_path.read_text().splitlines()
    hyps = [t.text for t in Translator.from_dir(result.model_dir).translate(sources)]
    exact = sum(h == r for h, r in zip(hyps, references, strict=True)) / len(references)
    assert exact >= 0.95, f"exact match {exact:.1%} on held-out sequences"

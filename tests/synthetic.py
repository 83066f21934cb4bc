"""Synthetic data and tiny architectures for tests: tasks a working model learns in seconds."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from nmt.config import ModelConfig

SYMBOLS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]


def reverse_pairs(n: int, seed: int, min_len: int = 3, max_len: int = 8) -> list[tuple[str, str]]:
    """Random symbol sequences and their reversals: a task a working model learns fast."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        words = [rng.choice(SYMBOLS) for _ in range(rng.randint(min_len, max_len))]
        pairs.append((" ".join(words), " ".join(reversed(words))))
    return pairs


def write_pairs(folder: Path, name: str, pairs: list[tuple[str, str]]) -> tuple[Path, Path]:
    """Write pairs as `name.src` / `name.tgt` and return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    src, tgt = folder / f"{name}.src", folder / f"{name}.tgt"
    src.write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
    tgt.write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    return src, tgt


def tiny_config(vocab: int, **overrides: object) -> ModelConfig:
    """A small but complete architecture: 2 layers each side, dropout off."""
    base: dict[str, object] = dict(
        src_vocab_size=vocab,
        tgt_vocab_size=vocab,
        emb_size=16,
        enc_hidden=12,
        enc_layers=2,
        dec_hidden=24,
        dec_layers=2,
        dropout=0.0,
    )
    base.update(overrides)
    return ModelConfig(**base)  # type: ignore[arg-type]


def reverse_config(corpus: dict[str, tuple[Path, Path]], spm: Path, out: Path, **train: object) -> dict[str, Any]:
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


def shout(texts: list[str], reverse: bool = False) -> list[Any]:
    """A stand-in translator for document tests: every word upper-cased (the words of untouched
    pieces kept), in reverse order with `reverse`, each aligned to the word it came from."""
    from nmt.markup import MARKER
    from nmt.translator import Translation

    out = []
    for text in texts:
        words = text.split()
        upper = [w if MARKER.search(w) else w.upper() for w in words]
        order = list(range(len(words)))[:: -1 if reverse else 1]
        out.append(Translation(" ".join(upper[i] for i in order), 0.0, word_alignment=order))
    return out

"""Shared fixtures: synthetic corpora, a word-level sentencepiece model, tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nmt.model import Seq2Seq, build_model
from nmt.model_dir import ModelInfo, save_model_dir
from nmt.tokenizer import Tokenizer, train_sentencepiece
from tests.cpu import cpu_description
from tests.synthetic import SYMBOLS, reverse_config, reverse_pairs, tiny_config, write_pairs
from training.config import parse_config
from training.trainer import Trainer, TrainResult


@pytest.fixture(scope="session")
def reverse_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Train / valid / test files of the reversal task (disjoint seeds)."""
    folder = tmp_path_factory.mktemp("reverse")
    return {
        "train": write_pairs(folder, "train", reverse_pairs(4000, seed=1)),
        "valid": write_pairs(folder, "valid", reverse_pairs(100, seed=2)),
        "test": write_pairs(folder, "test", reverse_pairs(200, seed=3)),
    }


@pytest.fixture(scope="session")
def word_spm(tmp_path_factory: pytest.TempPathFactory, reverse_corpus: dict[str, tuple[Path, Path]]) -> Path:
    """A word-level sentencepiece model over the symbols (one piece per symbol)."""
    folder = tmp_path_factory.mktemp("spm")
    return train_sentencepiece(
        list(reverse_corpus["train"]),
        folder / "spm",
        vocab_size=len(SYMBOLS) + 4,
        model_type="word",
        placeholders=False,
    )


@pytest.fixture(scope="session")
def tokenizer(word_spm: Path) -> Tokenizer:
    """Joint tokenizer over the synthetic symbols."""
    return Tokenizer(word_spm)


@pytest.fixture
def tiny_model(tokenizer: Tokenizer) -> Seq2Seq:
    """Randomly initialised (seeded) tiny model in eval mode."""
    torch.manual_seed(0)
    return build_model(tiny_config(tokenizer.src_vocab_size)).eval()


@pytest.fixture(scope="session")
def reverse_model(
    tmp_path_factory: pytest.TempPathFactory, reverse_corpus: dict[str, tuple[Path, Path]], word_spm: Path
) -> TrainResult:
    """A model trained on the reversal task through the real training pipeline (about 30 s)."""
    out = tmp_path_factory.mktemp("reverse_model") / "run"
    return Trainer(parse_config(reverse_config(reverse_corpus, word_spm, out))).train()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer) -> Path:
    """Two seeded random tiny models, de-en and fr-en, as a service would find them."""
    root = tmp_path_factory.mktemp("models")
    for seed, src in ((0, "de"), (1, "fr")):
        torch.manual_seed(seed)
        model = build_model(tiny_config(tokenizer.src_vocab_size)).eval()
        save_model_dir(root / f"{src}-en", model, ModelInfo(model.config, src, "en"), tokenizer)
    return root


def pytest_report_header() -> str:
    """Every run's log names the CPU code paths: batch invariance is checked per instruction set."""
    return f"cpu: {cpu_description()}"

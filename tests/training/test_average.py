"""nmt-average: checkpoint averaging and dtype conversion of model directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nmt.model import build_model
from nmt.model_dir import ModelInfo, load_model_dir, save_model_dir
from nmt.tokenizer import Tokenizer
from tests.synthetic import tiny_config
from training.average import main


def write(path: Path, tokenizer: Tokenizer, seed: int, **overrides: object) -> Path:
    torch.manual_seed(seed)
    model = build_model(tiny_config(tokenizer.src_vocab_size, **overrides))
    save_model_dir(path, model, ModelInfo(model.config, "de", "en"), tokenizer)
    return path


def test_average_is_the_mean_of_the_weights(tmp_path: Path, tokenizer: Tokenizer) -> None:
    a, b = write(tmp_path / "a", tokenizer, 0), write(tmp_path / "b", tokenizer, 1)
    assert main([str(a), str(b), "--output", str(tmp_path / "avg")]) == 0
    avg = load_model_dir(tmp_path / "avg").model.state_dict()
    wa, wb = load_model_dir(a).model.state_dict(), load_model_dir(b).model.state_dict()
    for name, tensor in avg.items():
        torch.testing.assert_close(tensor, (wa[name] + wb[name]) / 2)
    assert load_model_dir(tmp_path / "avg").info.training["averaged_from"] == ["a", "b"]


def test_one_input_converts_to_fp16_with_a_model_card(tmp_path: Path, tokenizer: Tokenizer) -> None:
    a = write(tmp_path / "a", tokenizer, 0)
    card = tmp_path / "card.md"
    card.write_text("# card\n")
    assert main([str(a), "--output", str(tmp_path / "half"), "--dtype", "fp16", "--model-card", str(card)]) == 0
    half = tmp_path / "half"
    assert json.loads((half / "config.json").read_text())["weights"]["dtype"] == "float16"
    assert main([str(a), "--output", str(tmp_path / "old"), "--dtype", "float16"]) == 0  # the old spelling
    old = load_model_dir(tmp_path / "old").model.state_dict()
    assert all(torch.equal(t, old[n]) for n, t in load_model_dir(half).model.state_dict().items())
    assert (half / "MODEL_CARD.md").read_text() == "# card\n"
    full_size, half_size = (a / "model.safetensors").stat().st_size, (half / "model.safetensors").stat().st_size
    assert half_size < 0.6 * full_size
    ref = load_model_dir(a).model.state_dict()
    for name, tensor in load_model_dir(half).model.state_dict().items():
        torch.testing.assert_close(tensor, ref[name], atol=2e-3, rtol=2e-3)


def test_different_architectures_are_refused(
    tmp_path: Path, tokenizer: Tokenizer, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = write(tmp_path / "a", tokenizer, 0), write(tmp_path / "b", tokenizer, 0, dec_hidden=32)
    assert main([str(a), str(b), "--output", str(tmp_path / "x")]) == 1
    assert "another architecture" in capsys.readouterr().err
    assert main([str(tmp_path / "missing"), "--output", str(tmp_path / "x")]) == 1

"""Model directory round trip, atomic layout, and clear errors for damaged directories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nmt.errors import ModelLoadError
from nmt.model import Seq2Seq, build_model
from nmt.model_dir import ModelInfo, load_model_dir, read_config, save_model_dir
from nmt.tokenizer import Tokenizer
from nmt.translator import Translator
from tests.synthetic import tiny_config

TEXTS = ["a b c d", "l k", "e f g h i j", ""]


def _save(path: Path, model: Seq2Seq, tokenizer: Tokenizer, dtype: str = "float32") -> None:
    info = ModelInfo(model.config, "xx", "yy", metrics={"valid_bleu": 1.0})
    save_model_dir(path, model, info, tokenizer, dtype=dtype)


def test_round_trip_gives_bit_identical_outputs(tmp_path: Path, tiny_model: Seq2Seq, tokenizer: Tokenizer) -> None:
    _save(tmp_path / "m", tiny_model, tokenizer)
    loaded = load_model_dir(tmp_path / "m")
    for name, tensor in tiny_model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name]), name
    before = Translator(tiny_model, tokenizer).translate(TEXTS)
    after = Translator(loaded.model, loaded.tokenizer).translate(TEXTS)
    assert before == after  # same text and exactly the same float scores
    assert loaded.info.model_id == "xx-yy"
    assert loaded.info.model == tiny_model.config
    assert not loaded.model.training


def test_config_json_describes_the_model(tmp_path: Path, tiny_model: Seq2Seq, tokenizer: Tokenizer) -> None:
    _save(tmp_path / "m", tiny_model, tokenizer)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["format_version"] == 1
    assert (config["source_language"], config["target_language"]) == ("xx", "yy")
    assert config["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert config["model"]["src_vocab_size"] == tokenizer.src_vocab_size
    assert config["tokenizer"] == {"type": "sentencepiece", "joint": "spm.model"}
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors", "spm.model"]


def test_tied_weights_and_fp16_storage_round_trip(tmp_path: Path, tokenizer: Tokenizer) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config(tokenizer.src_vocab_size, tie_target_embeddings=True, share_embeddings=True))
    _save(tmp_path / "m", model.eval(), tokenizer, dtype="float16")
    loaded = load_model_dir(tmp_path / "m").model
    assert loaded.decoder.generator.weight is loaded.decoder.embedding.weight
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor.half().float())


def test_int8_storage_is_a_quarter_of_fp32_and_within_a_row_step(tmp_path: Path, tokenizer: Tokenizer) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config(tokenizer.src_vocab_size, tie_target_embeddings=True, share_embeddings=True))
    _save(tmp_path / "fp32", model.eval(), tokenizer)
    _save(tmp_path / "int8", model, tokenizer, dtype="int8")
    assert read_config(tmp_path / "int8")["weights"]["dtype"] == "int8"
    sizes = [(tmp_path / d / "model.safetensors").stat().st_size for d in ("fp32", "int8")]
    assert sizes[1] < 0.4 * sizes[0]  # a quarter, plus the row scales and fp16 vectors of a tiny model
    loaded = load_model_dir(tmp_path / "int8").model
    assert loaded.decoder.generator.weight is loaded.decoder.embedding.weight
    for name, tensor in model.state_dict().items():
        got = loaded.state_dict()[name]
        assert got.dtype == torch.float32, name
        if tensor.dim() >= 2:  # each element within half a step of its row's 127-level grid
            step = tensor.reshape(tensor.shape[0], -1).abs().amax(1) / 127
            error = (got - tensor).reshape(tensor.shape[0], -1).abs().amax(1)
            assert bool((error <= step / 2 + 1e-7).all()), name
        else:
            torch.testing.assert_close(got, tensor.half().float())
    # stored integers survive a second round trip unchanged (int8 inference quantizes them again)
    _save(tmp_path / "again", loaded, tokenizer, dtype="int8")
    for name, tensor in load_model_dir(tmp_path / "again").model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_overwrite_is_atomic_and_leaves_no_temporaries(
    tmp_path: Path, tiny_model: Seq2Seq, tokenizer: Tokenizer
) -> None:
    _save(tmp_path / "m", tiny_model, tokenizer)
    _save(tmp_path / "m", tiny_model, tokenizer)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_truncated_weights_fail_with_a_clear_error(tmp_path: Path, tiny_model: Seq2Seq, tokenizer: Tokenizer) -> None:
    _save(tmp_path / "m", tiny_model, tokenizer)
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match=r"model\.safetensors is corrupted or truncated"):
        load_model_dir(tmp_path / "m")


def test_corrupted_weights_fail_even_without_a_checksum(
    tmp_path: Path, tiny_model: Seq2Seq, tokenizer: Tokenizer
) -> None:
    _save(tmp_path / "m", tiny_model, tokenizer)
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    del config["weights"]["sha256"]
    config_path.write_text(json.dumps(config))
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(b"\xff" * 16 + weights.read_bytes()[16:])
    with pytest.raises(ModelLoadError, match="not a valid safetensors file"):
        load_model_dir(tmp_path / "m")


def test_bit_flip_is_caught_by_the_checksum(tmp_path: Path, tiny_model: Seq2Seq, tokenizer: Tokenizer) -> None:
    _save(tmp_path / "m", tiny_model, tokenizer)
    weights = tmp_path / "m" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="checksum"):
        load_model_dir(tmp_path / "m")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "config.json").unlink(), "config.json is missing"),
        (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "model.safetensors").unlink(), "model.safetensors is missing"),
        (lambda d: (d / "spm.model").write_bytes(b"junk"), "cannot load sentencepiece model"),
    ],
    ids=["no-config", "bad-json", "no-weights", "bad-spm"],
)
def test_damaged_directories_fail_with_a_clear_error(
    tmp_path: Path, tiny_model: Seq2Seq, tokenizer: Tokenizer, damage: object, message: str
) -> None:
    _save(tmp_path / "m", tiny_model, tokenizer)
    damage(tmp_path / "m")  # type: ignore[operator]
    with pytest.raises(ModelLoadError, match=message):
        load_model_dir(tmp_path / "m")


def test_missing_directory_and_newer_format(tmp_path: Path, tiny_model: Seq2Seq, tokenizer: Tokenizer) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model_dir(tmp_path / "nowhere")
    _save(tmp_path / "m", tiny_model, tokenizer)
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["format_version"] = 99
    config_path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="format version 99"):
        read_config(tmp_path / "m")


def test_loading_never_unpickles(
    tmp_path: Path, tiny_model: Seq2Seq, tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _save(tmp_path / "m", tiny_model, tokenizer)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.load (pickle) was called")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr("pickle.load", refuse)
    load_model_dir(tmp_path / "m")

"""Language pairs and pivots (nmt.routing), and the command line's --source/--target and --record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nmt.cli import eval_main, translate_main
from nmt.errors import InputError
from nmt.model import build_model
from nmt.model_dir import ModelInfo, read_config, save_model_dir
from nmt.routing import UnsupportedPair, find_route, model_route, reachable, route
from nmt.tokenizer import Tokenizer
from tests.synthetic import tiny_config

PAIRS = {("de", "en"), ("en", "de"), ("fr", "en"), ("en", "fr"), ("cs", "de"), ("de", "cs")}


def test_direct_first_then_english_then_other_pivots() -> None:
    assert find_route(PAIRS, "de", "en") == [("de", "en")]
    assert find_route(PAIRS, "fr", "de") == [("fr", "en"), ("en", "de")]
    assert find_route(PAIRS, "cs", "en") == [("cs", "de"), ("de", "en")]  # no cs-en: German is the pivot
    assert find_route(PAIRS, "de", "de") is None and find_route(PAIRS, "fr", "cs") is None  # at most one pivot
    with pytest.raises(UnsupportedPair, match="fr->cs is not supported; available: cs->"):
        route(PAIRS, "fr", "cs")


def test_reachable_lists_no_pair_twice_and_never_a_language_into_itself() -> None:
    found = reachable(PAIRS)
    assert all(source not in targets for source, targets in found.items())
    assert found["fr"] == ["de", "en"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, tokenizer: Tokenizer) -> Path:
    """de-en and fr-en (the shared tiny models) and en-de, as copies (--record writes into them)."""
    root = tmp_path_factory.mktemp("cli_models")
    for seed, (src, tgt) in enumerate((("de", "en"), ("fr", "en"), ("en", "de"))):
        torch.manual_seed(10 + seed)
        model = build_model(tiny_config(tokenizer.src_vocab_size)).eval()
        save_model_dir(root / f"{src}-{tgt}", model, ModelInfo(model.config, src, tgt), tokenizer)
    return root


def test_model_route_in_a_folder_of_models(folder: Path) -> None:
    assert model_route(folder, "fr", "de") == [folder / "fr-en", folder / "en-de"]
    assert model_route(folder / "de-en", None, None) == [folder / "de-en"]
    assert model_route(folder / "de-en", "de", "en") == [folder / "de-en"]
    with pytest.raises(InputError, match="holds 3 models"):
        model_route(folder, None, None)
    with pytest.raises(InputError, match="go together"):
        model_route(folder, "de", None)
    with pytest.raises(UnsupportedPair):
        model_route(folder / "de-en", "fr", "en")


def test_translate_and_eval_through_a_pivot(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.fr"
    src.write_text("a b c\nd e\n", encoding="utf-8")
    mid, out = tmp_path / "mid.en", tmp_path / "out.de"
    args = ["--device", "cpu", "--quiet", "--beam-size", "2"]
    assert translate_main(["--model", str(folder / "fr-en"), "--input", str(src), "--output", str(mid), *args]) == 0
    assert translate_main(["--model", str(folder / "en-de"), "--input", str(mid), "--output", str(out), *args]) == 0
    chained = tmp_path / "chained.de"
    assert translate_main(["--model", str(folder), "--source", "fr", "--target", "de", "--input", str(src),
                           "--output", str(chained), *args]) == 0  # fmt: skip
    assert chained.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert translate_main(["--model", str(folder), "--source", "fr", "--target", "cs", "--input", str(src)]) == 1
    assert "fr->cs is not supported" in capsys.readouterr().err
    code = eval_main(["--model", str(folder), "--source", "fr", "--target", "de", "--src", str(src),
                      "--ref", str(out), "--device", "cpu", "--beam-size", "2", "--json"])  # fmt: skip
    assert code == 0 and json.loads(capsys.readouterr().out)["BLEU"]["score"] == 100.0


def test_eval_records_scores_for_the_models_route(folder: Path, tmp_path: Path) -> None:
    src, ref = tmp_path / "t.de", tmp_path / "t.en"
    src.write_text("a b\n", encoding="utf-8")
    ref.write_text("b a\n", encoding="utf-8")
    args = ["--src", str(src), "--ref", str(ref), "--device", "cpu", "--record", "toy_test"]
    assert eval_main(["--model", str(folder), "--source", "de", "--target", "en", *args]) == 0
    recorded = read_config(folder / "de-en")["metrics"]["toy_test"]
    assert set(recorded) >= {"BLEU", "chrF2", "beam_size", "sentences", "signatures"}
    assert recorded["sentences"] == 1 and recorded["beam_size"] == 1
    assert recorded["precision"] in ("int8", "fp32") and recorded["shortlist"] is False  # what produced the score
    assert eval_main(["--model", str(folder), "--source", "fr", "--target", "de", *args]) == 1  # a chain: no owner

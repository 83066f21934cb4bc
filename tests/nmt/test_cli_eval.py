"""`nmt-eval`: scores with signatures; user errors give one line and a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.cli import eval_main
from nmt.model import Seq2Seq
from nmt.model_dir import ModelInfo, save_model_dir
from nmt.tokenizer import Tokenizer


@pytest.fixture
def model_dir(tmp_path: Path, tiny_model: Seq2Seq, tokenizer: Tokenizer) -> Path:
    save_model_dir(tmp_path / "model", tiny_model, ModelInfo(tiny_model.config, "xx", "yy"), tokenizer)
    return tmp_path / "model"


def test_prints_bleu_and_chrf_with_signatures(
    model_dir: Path, reverse_corpus: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    src, ref = reverse_corpus["valid"]
    assert eval_main(["--model", str(model_dir), "--src", str(src), "--ref", str(ref)]) == 0
    out = capsys.readouterr().out
    assert "BLEU = " in out and "chrF2 = " in out
    assert "signature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in out


def test_json_output_and_hypotheses_file(
    tmp_path: Path, model_dir: Path, reverse_corpus: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    src, ref = reverse_corpus["valid"]
    hyp = tmp_path / "hyp.txt"
    assert (
        eval_main(["--model", str(model_dir), "--src", str(src), "--ref", str(ref), "--json", "--output", str(hyp)])
        == 0
    )
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"BLEU", "chrF2"}
    assert len(hyp.read_text().splitlines()) == len(src.read_text().splitlines())


@pytest.mark.parametrize("problem", ["no-model", "no-src", "mismatch", "not-utf8"])
def test_user_errors_give_one_line_and_exit_1(tmp_path: Path, model_dir: Path, problem: str) -> None:
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("a b\nc d\n")
    ref.write_text("b a\nd c\n")
    model = model_dir
    if problem == "no-model":
        model = tmp_path / "missing"
    elif problem == "no-src":
        src = tmp_path / "absent.txt"
    elif problem == "mismatch":
        ref.write_text("b a\n")
    else:
        src.write_bytes(b"\xff\xfe a\n\xc3\x28\n")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "nmt-eval"), "--model", str(model), "--src", str(src), "--ref", str(ref)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("nmt-eval: error: ")
    assert len(proc.stderr.strip().splitlines()) == 1

"""`nmt-translate`: line-for-line output, streaming in chunks, sharding, n-best JSONL, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.cli import translate_main
from training.trainer import TrainResult

TRANSLATE = str(Path(sys.executable).parent / "nmt-translate")
LINES = ["a b c", "", "l k j i", "d e f", "  ", "g h", "c c a b", "k", "j i h g f", "b"]


@pytest.fixture(scope="module")
def model(reverse_model: TrainResult) -> str:
    return str(reverse_model.model_dir)


@pytest.fixture
def input_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.txt"
    path.write_text("".join(line + "\n" for line in LINES), encoding="utf-8")
    return path


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TRANSLATE, *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_stdin_to_stdout_one_line_per_line_in_order(model: str) -> None:
    proc = _run("--model", model, "--device", "cpu", stdin="".join(line + "\n" for line in LINES))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert len(out) == len(LINES)
    assert out[0] == "c b a" and out[2] == "i j k l" and out[1] == "" and out[4] == ""
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal


def test_chunked_streaming_equals_one_chunk_and_output_file(model: str, input_file: Path, tmp_path: Path) -> None:
    whole, chunked = tmp_path / "whole.txt", tmp_path / "chunked.txt"
    assert (
        translate_main(["--model", model, "--device", "cpu", "--input", str(input_file), "--output", str(whole)]) == 0
    )
    assert translate_main(["--model", model, "--device", "cpu", "--input", str(input_file), "--output", str(chunked),
                           "--chunk-lines", "3", "--quiet"]) == 0  # fmt: skip
    assert whole.read_text() == chunked.read_text()
    assert len(whole.read_text().splitlines()) == len(LINES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked.txt", "in.txt", "whole.txt"]  # no temporaries


def test_sharded_outputs_joined_equal_the_unsharded_output(model: str, input_file: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.txt"
    assert translate_main(["--model", model, "--device", "cpu", "--input", str(input_file), "--output", str(full)]) == 0
    parts = []
    for i in range(3):
        part = tmp_path / f"out.{i}"
        argv = [
            "--model",
            model,
            "--device",
            "cpu",
            "--input",
            str(input_file),
            "--output",
            str(part),
            "--shard",
            f"{i}/3",
        ]
        assert translate_main(argv) == 0
        parts.append(part.read_text())
    assert "".join(parts) == full.read_text()
    assert [len(p.splitlines()) for p in parts] == [3, 3, 4]


def test_nbest_jsonl_with_scores_and_alignments(
    model: str, input_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--model", model, "--device", "cpu", "--input", str(input_file), "--format", "jsonl", "--n-best", "3",
            "--beam-size", "4", "--alignments"]  # fmt: skip
    assert translate_main(argv) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == len(LINES)
    first = records[0]
    assert first["text"] == "c b a" and isinstance(first["score"], float)
    assert len(first["alternatives"]) == 2
    assert first["score"] >= first["alternatives"][0]["score"] >= first["alternatives"][1]["score"]
    assert len(first["alignment"]) == len(first["target_tokens"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "/nonexistent/model"], "model directory /nonexistent/model does not exist"),
        (["--input", "/nonexistent/in.txt"], "/nonexistent/in.txt: no such file"),
        (["--output", "/nonexistent/dir/out.txt"], "cannot write"),
        (["--output", "/tmp"], "/tmp: is a directory"),  # not the name of a temporary file
        (["--shard", "3/2"], "need 0 <= I < N"),
        (["--device", "cuda"], "no CUDA GPU"),
    ],
)
def test_user_errors_give_one_line_and_exit_1(model: str, input_file: Path, args: list[str], message: str) -> None:
    base = {"--model": model, "--input": str(input_file)}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    proc = _run(*[x for kv in base.items() for x in kv])
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("nmt-translate: error: ") and message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_non_utf8_input_names_the_line(model: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a b\n\xff\xfe c\n")
    proc = _run("--model", model, "--input", str(bad), "--output", str(tmp_path / "out.txt"))
    assert proc.returncode == 1
    assert "line 2 is not UTF-8" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out.txt").exists()  # nothing half-written under the output name


def test_nbest_needs_jsonl(model: str) -> None:
    proc = _run("--model", model, "--n-best", "2", stdin="a\n")
    assert proc.returncode == 2 and "--format jsonl" in proc.stderr

"""`nmt-translate`: line-for-line output, streaming in chunks, sharding, n-best JSONL, clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nmt.cli import translate_main
from nmt.resume import ChunkPlan
from training.trainer import TrainResult

TRANSLATE = str(Path(sys.executable).parent / "nmt-translate")
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="the error is about a machine without a CUDA GPU")
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
        pytest.param(["--device", "cuda"], "no CUDA GPU", marks=NO_GPU),
        pytest.param(["--precision", "bf16"], "precision bf16 needs a CUDA device", marks=NO_GPU),
        pytest.param(["--dtype", "fp16"], "precision fp16 needs a CUDA device", marks=NO_GPU),  # earlier versions' flag
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


def test_a_sentence_too_large_for_the_gpu_is_a_one_line_error(
    model: str, input_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Out of memory even after halving the batch down to one sentence: a message, exit 1, no traceback."""

    def out_of_memory(*_: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("nmt.translator.Translator._search_rows", out_of_memory)
    out = tmp_path / "out.txt"
    assert translate_main(["--model", model, "--device", "cpu", "--input", str(input_file), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert "out of GPU memory searching a single sentence" in err and "Traceback" not in err
    assert not out.exists()


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


def _big_input(tmp_path: Path, lines: int) -> Path:
    path = tmp_path / "big.txt"
    path.write_text("".join(" ".join("abcdefghijkl"[(i * 5 + j) % 12] for j in range(4 + i % 9)) + "\n"
                            for i in range(lines)), encoding="utf-8")  # fmt: skip
    return path


def _kill_when_durable(command: list[str], record: Path, lines: int) -> int:
    """Start `command`, SIGKILL it once its progress record holds `lines` durable lines; the lines it held."""
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if record.exists() and json.loads(record.read_text() or "{}").get("lines_done", 0) >= lines:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    return int(json.loads(record.read_text())["lines_done"])


def test_a_killed_run_resumes_where_it_stopped_and_writes_the_same_bytes(model: str, tmp_path: Path) -> None:
    """SIGKILL half-way, run the same command again: it continues, and the output equals an uninterrupted run."""
    source = _big_input(tmp_path, 3000)
    common = ["--model", model, "--input", str(source), "--chunk-lines", "100", "--format", "jsonl", "--quiet"]
    assert _run(*common, "--output", str(tmp_path / "straight.jsonl")).returncode == 0

    out = tmp_path / "resumed.jsonl"
    record = tmp_path / ".resumed.jsonl.progress.json"
    done = _kill_when_durable([TRANSLATE, *common, "--output", str(out)], record, 1800)  # well over half
    assert not out.exists()  # only complete output ever appears under its name

    again = _run(*common, "--output", str(out))
    assert again.returncode == 0, again.stderr
    # where the killed run's durable lines end, not at the start (a wall-clock check was CUDA's start-up on a GPU)
    assert f"at input line {done + 1} " in again.stderr and done >= 1800, (done, again.stderr)
    assert out.read_bytes() == (tmp_path / "straight.jsonl").read_bytes()
    assert not record.exists() and not (tmp_path / ".resumed.jsonl.partial").exists()


def test_a_changed_input_or_option_starts_over_with_a_message(model: str, tmp_path: Path) -> None:
    source = _big_input(tmp_path, 300)
    out = tmp_path / "out.txt"
    partial, record = tmp_path / ".out.txt.partial", tmp_path / ".out.txt.progress.json"
    # what a run killed after 100 lines leaves behind, for other options
    partial.write_text("x\n" * 100)
    record.write_text(json.dumps({"fingerprint": "another run", "lines_done": 100, "bytes_done": 200}))
    r = _run("--model", model, "--input", str(source), "--output", str(out), "--chunk-lines", "100", "--quiet")
    assert r.returncode == 0 and "starting over" in r.stderr
    straight = _run("--model", model, "--input", str(source), "--quiet")
    assert out.read_text() == straight.stdout


def test_precision_and_shortlist_flags_and_the_earlier_flags(model: str, input_file: Path) -> None:
    """--quantize int8 still means int8; fp32 and int8 agree on this model's texts; a shortlist-less model runs."""
    outputs = {}
    for flags in (["--precision", "fp32"], ["--precision", "int8"], ["--quantize", "int8"], ["--shortlist", "on"]):
        proc = _run("--model", model, "--device", "cpu", "--input", str(input_file), "--quiet", *flags)  # int8: x86
        assert proc.returncode == 0, proc.stderr
        outputs[" ".join(flags)] = proc.stdout
    assert outputs["--precision int8"] == outputs["--quantize int8"]
    assert outputs["--precision fp32"] == outputs["--precision int8"]
    proc = _run("--model", model, "--input", str(input_file), "--precision", "int4")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr  # argparse names the choices


def test_chunks_stay_under_a_thousand_lines_and_about_twenty_seconds() -> None:
    """What a kill can lose is one chunk: the plan keeps each within 1,000 lines and about 20 s of work."""
    plan = ChunkPlan()
    assert plan.next_size() == 8  # a first small chunk measures the speed
    plan.record(8, 0.008)  # 1 ms a line: the line cap decides
    assert plan.next_size() == 1000
    plan.record(1000, 100.0)  # it got 100x slower (longer lines): the next chunk shrinks at once
    assert plan.next_size() * 0.1 <= 20.0
    slow = ChunkPlan()
    slow.record(8, 8 * 5.0)  # 5 s a line
    assert slow.next_size() == 4


def _html_document(tmp_path: Path, paragraphs: int) -> Path:
    rows = "".join(f"<p>{' '.join('abcdefghijkl'[(i * 5 + j) % 12] for j in range(3 + i % 5))} "
                   f"<b>{'abcdefghijkl'[i % 12]}</b> {'lk'[i % 2]}</p>\n" for i in range(paragraphs))  # fmt: skip
    path = tmp_path / "page.html"
    path.write_text(f"<!DOCTYPE html>\n<html><body>\n{rows}</body></html>\n", encoding="utf-8")
    return path


def test_a_document_is_translated_into_its_own_layout(model: str, tmp_path: Path) -> None:
    source = _html_document(tmp_path, 20)
    out = tmp_path / "page.en.html"
    r = _run("--model", model, "--input", str(source), "--output", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<p>") == 20 and html.count("<b>") == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.en.html", "page.html"]  # no side files left
    r = _run("--model", model, "--input", str(source), "--format", "jsonl")
    assert r.returncode == 2 and "apply to lines only" in r.stderr
    broken = tmp_path / "broken.xlf"
    broken.write_text("<xliff><file>", encoding="utf-8")
    r = _run("--model", model, "--input", str(broken), "--output", str(tmp_path / "out.xlf"))
    assert r.returncode == 1 and "not well-formed" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "out.xlf").exists()


def test_a_killed_document_run_resumes_and_writes_the_same_bytes(model: str, tmp_path: Path) -> None:
    source = _html_document(tmp_path, 4000)
    common = ["--model", model, "--input", str(source), "--chunk-lines", "100", "--quiet"]
    assert _run(*common, "--output", str(tmp_path / "straight.html")).returncode == 0
    out = tmp_path / "resumed.html"
    record = tmp_path / ".resumed.html.texts.progress.json"
    done = _kill_when_durable([TRANSLATE, *common, "--output", str(out)], record, 1000)
    assert not out.exists()
    again = _run(*common, "--output", str(out))
    assert again.returncode == 0, again.stderr
    assert f"at input line {done + 1} " in again.stderr
    assert out.read_bytes() == (tmp_path / "straight.html").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html", "resumed.html", "straight.html"]

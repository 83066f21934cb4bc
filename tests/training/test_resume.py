"""A killed run, started again with the same command, reaches the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from tests.synthetic import reverse_config
from training.checkpoint import list_checkpoints

STEPS = 120


def _write_config(tmp_path: Path, corpus: dict[str, tuple[Path, Path]], spm: Path, out: Path) -> Path:
    tree = reverse_config(
        corpus, spm, out, max_steps=STEPS, valid_every=40, save_every=10, keep_checkpoints=2, threads=1, log_every=5
    )
    tree["model"].update(
        {"emb_size": 16, "enc_hidden": 16, "dec_hidden": 32, "enc_layers": 2, "dec_layers": 2, "dropout": 0.2}
    )  # dropout: the RNG state must be restored too
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def _train(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "training.cli", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    step, path = list_checkpoints(out)[-1]
    assert step == STEPS
    return load_file(path / "model.safetensors")


def test_killed_run_resumes_to_the_same_weights(
    tmp_path: Path, reverse_corpus: dict[str, tuple[Path, Path]], word_spm: Path
) -> None:
    straight = _write_config(tmp_path, reverse_corpus, word_spm, tmp_path / "straight")
    interrupted = _write_config(tmp_path, reverse_corpus, word_spm, tmp_path / "interrupted")

    proc = _train(interrupted)
    deadline = time.monotonic() + 120
    metrics = tmp_path / "interrupted" / "metrics.csv"

    def logged_past_a_checkpoint() -> bool:  # the worst moment: rows that the resumed run logs again
        rows = metrics.read_text().splitlines()[1:] if metrics.exists() else []
        checkpoints = list_checkpoints(tmp_path / "interrupted")
        return bool(checkpoints and rows) and int(rows[-1].split(",")[0]) > checkpoints[-1][0]

    while not logged_past_a_checkpoint() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = list_checkpoints(tmp_path / "interrupted")[-1][0]
    assert killed_at < STEPS

    resumed = _train(interrupted)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"resuming from {tmp_path / 'interrupted' / 'checkpoints'}" in err

    baseline = _train(straight)
    _, err = baseline.communicate(timeout=300)
    assert baseline.returncode == 0, err

    a, b = _final_weights(tmp_path / "straight"), _final_weights(tmp_path / "interrupted")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0, msg=name)
    assert len(list_checkpoints(tmp_path / "interrupted")) == 2  # keep_checkpoints
    # metrics.csv tells the same story as an uninterrupted run: no step twice
    rows = (tmp_path / "interrupted" / "metrics.csv").read_text().splitlines()
    steps = [(row.split(",")[0], row.split(",")[1]) for row in rows[1:]]
    assert len(steps) == len(set(steps)), steps
    assert steps == [
        (r.split(",")[0], r.split(",")[1]) for r in (tmp_path / "straight" / "metrics.csv").read_text().splitlines()[1:]
    ]

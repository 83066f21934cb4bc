"""Two processes under torchrun with the gloo backend: the DDP code path used on GPUs, on CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from nmt.model_dir import load_model_dir
from tests.synthetic import reverse_config
from training.checkpoint import list_checkpoints


def test_two_process_gloo_training(
    tmp_path: Path, reverse_corpus: dict[str, tuple[Path, Path]], word_spm: Path
) -> None:
    out = tmp_path / "ddp"
    tree = reverse_config(reverse_corpus, word_spm, out, max_steps=30, valid_every=15, save_every=15, threads=1)
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(tree))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "training.cli",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "validation step 30" in proc.stderr
    assert [step for step, _ in list_checkpoints(out)] == [15, 30]
    loaded = load_model_dir(out / "best")
    assert loaded.info.training["steps"] in (15, 30)
    # losses are logged once (rank 0) with the target tokens of both processes
    assert proc.stderr.count("step 30/30") == 1

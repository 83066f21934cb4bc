"""Training checkpoints: a model directory plus the trainer state, so a killed run resumes exactly.

    <out_dir>/checkpoints/step_00001000/   config.json, model.safetensors, spm.model(s),
                                            trainer_state.pt (optimizer, schedule, RNG, data position)

Each checkpoint is written atomically (a half-written one never looks complete); only the
last K are kept. The trainer state holds tensors and plain values only and is loaded with
`weights_only=True`, so resuming never runs pickled code either.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from nmt.model import Seq2Seq
from nmt.model_dir import ModelInfo, load_model_dir, save_model_dir
from nmt.tokenizer import Tokenizer

STATE_FILE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def checkpoints_root(out_dir: Path) -> Path:
    """Folder holding the step checkpoints of a run."""
    return Path(out_dir) / "checkpoints"


def list_checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoints_root(out_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def save_checkpoint(
    out_dir: Path,
    step: int,
    model: Seq2Seq,
    info: ModelInfo,
    tokenizer: Tokenizer,
    state: dict[str, Any],
    keep: int,
) -> Path:
    """Write the checkpoint of `step` and delete all but the newest `keep`."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path = checkpoints_root(out_dir) / f"step_{step:08d}"
    save_model_dir(path, model, info, tokenizer, extra_files={STATE_FILE: buffer.getvalue()})
    for _, old in list_checkpoints(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_checkpoint(path: Path, model: torch.nn.Module) -> dict[str, Any]:
    """Load a checkpoint's weights into `model` and return its trainer state."""
    loaded = load_model_dir(path)
    model.load_state_dict(loaded.model.state_dict())
    return torch.load(Path(path) / STATE_FILE, map_location="cpu", weights_only=True)

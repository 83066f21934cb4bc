"""Where models run: the one place that turns `auto`, `cpu` or `cuda` into a torch device."""

from __future__ import annotations

import torch

from nmt.errors import InputError


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present else CPU; asking for CUDA without a GPU is an `InputError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device cuda was asked for but no CUDA GPU is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise InputError(f"unknown device {name!r}: use cpu, cuda or auto")
    return torch.device(name)

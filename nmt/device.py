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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512-BF16 or AMX), where bf16 beats fp32."""
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)

"""The one vocabulary of floating-point types: what users type, what config.json stores, what torch uses.

Users write `fp32`, `fp16` or `bf16` everywhere (`nmt-translate --dtype`, `nmt-average --dtype`,
`NMT_DTYPE`, `train.amp`); torch's names (`float32`, `float16`, `bfloat16`) are accepted too, as
earlier versions of `nmt-average` took them. config.json stores torch's name, as it always has.
"""

from __future__ import annotations

from typing import Literal

import torch

from nmt.errors import InputError

DtypeName = Literal["fp32", "fp16", "bf16"]
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
ALIASES: dict[str, str] = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}
CHOICES: list[str] = [*DTYPES, *ALIASES]  # for command-line choices
INT8_STORAGE = "int8"  # weights stored as int8 with a scale per row (model directories only; loaded as floats)
STORAGE_CHOICES: list[str] = [*CHOICES, INT8_STORAGE]


def dtype_name(name: str) -> DtypeName:
    """The user spelling of a dtype name given in either spelling; InputError names the choices."""
    canonical = ALIASES.get(name, name)
    if canonical not in DTYPES:
        raise InputError(f"unknown dtype {name!r}: use fp32, fp16 or bf16")
    return canonical  # type: ignore[return-value]


def to_torch(name: str) -> torch.dtype:
    """torch dtype of a name in either spelling."""
    return DTYPES[dtype_name(name)]


def storage_name(name: str) -> str:
    """How config.json names the dtype of stored weights (torch's spelling, or int8)."""
    return INT8_STORAGE if name == INT8_STORAGE else str(to_torch(name)).removeprefix("torch.")

"""Inference precisions: what `auto` picks on the hardware at hand, and turning a trained model into one.

| precision | where | products | batch invariance |
| --- | --- | --- | --- |
| int8 | x86 CPUs, LSTM models (`auto` there) | exact integer sums (fbgemm, or oneDNN on AMX/VNNI) | bitwise |
| fp32 | anywhere (`auto` on non-x86 CPUs and GRU models) | BLAS fp32 | same text, score within ~1e-6 |
| bf16, fp16 | CUDA (`auto`: bf16 where supported, else fp16) | cuDNN/cuBLAS | as the GPU's kernels give |

bf16 on CPU is not offered: at the decoder's shapes oneDNN's bf16 products change a row's
bits with the number of rows (from ~33 rows on Sapphire Rapids), so translations would
depend on their batch; on the same AMX units int8 runs the LSTM's products as fast (and the
smaller ones at 75-95% of bf16's rate) with exact sums (benchmarks/matmul_kernels.py).

An int8 model has two footprints. `fast` keeps, beside its int8 weights, the decoder's token
table (the embedding's share of its first layer, a (vocabulary x 4H) fp32 table: 62.5 MB for
the shipped models) and, where AMX pays, every weight packed twice, for fbgemm (fewer than 32
rows) and for oneDNN. `lean` keeps one packed copy, oneDNN's wherever this PyTorch has it
(fbgemm's packed weight keeps the unpacked integers beside it: two copies), no table, and the
embeddings of a model stored in int8 as int8 codes (`CodedEmbedding`): about 1.5x the weights
file, at ~0.9x the speed on AMX, for a service holding many models (docs/benchmarks.md). Both
are batch-invariant; their outputs differ slightly (the table sums the embedding's share in
float, the int8 product on its 7-bit grid).

Converting to int8 replaces every linear and recurrent layer that the encoder, bridge and
decoder declare in their `input_ranges()`; a layer that is not declared would stay in
float, so conversion refuses a model that still has one afterwards.
"""

from __future__ import annotations

import functools
from typing import Literal, get_args

import torch
from torch import nn

from nmt.config import ModelConfig
from nmt.dtypes import DTYPES
from nmt.encoder import InputRange
from nmt.errors import InputError
from nmt.layers import LinearFactory, StepBiLSTM, StepLSTM
from nmt.model import Seq2Seq
from nmt.quantize import CodedEmbedding, Int8Linear, int8_kernels

Precision = Literal["fp32", "bf16", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
PrecisionChoice = Literal["auto", "fp32", "bf16", "fp16", "int8"]
PRECISION_CHOICES: list[str] = ["auto", *PRECISIONS]  # for command lines and settings
FLOAT_LAYERS = (nn.Linear, nn.RNNBase)  # what int8 conversion must leave none of
Footprint = Literal["fast", "lean"]
FOOTPRINTS: tuple[str, ...] = get_args(Footprint)
FootprintChoice = Literal["auto", "fast", "lean"]  # auto: the service's choice (service.settings)
FOOTPRINT_CHOICES: list[str] = ["auto", *FOOTPRINTS]  # for command lines and settings


def weight_dtype(precision: Precision) -> torch.dtype:
    """The dtype a model is loaded in to run in `precision` (int8 converts fp32 weights)."""
    return torch.float32 if precision == "int8" else DTYPES[precision]


def auto_precision(device: torch.device, config: ModelConfig) -> Precision:
    """The fastest precision that keeps quality and batch invariance here: see the module's table."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if int8_kernels() and config.cell == "lstm":
        return "int8"
    return "fp32"


def resolve_precision(name: str, device: torch.device, config: ModelConfig) -> Precision:
    """The precision to run `name` ('auto' or one of PRECISIONS) as; InputError where it cannot run."""
    if name == "auto":
        return auto_precision(device, config)
    if name not in PRECISIONS:
        raise InputError(f"unknown precision {name!r}: use {', '.join(PRECISION_CHOICES)}")
    if name in ("bf16", "fp16") and device.type != "cuda":
        raise InputError(f"precision {name} needs a CUDA device; on CPU use int8 (the default) or fp32")
    if name == "int8":
        if device.type != "cpu" or not int8_kernels():
            raise InputError("precision int8 runs on x86 CPUs only; on CUDA use bf16 or fp16")
        if config.cell != "lstm":
            raise InputError("precision int8 needs an LSTM model; use fp32 for GRU models")
    return name  # type: ignore[return-value]


def _replace(layer: nn.Module, make: LinearFactory, declared: InputRange, token_table: bool) -> nn.Module:
    """`layer` rebuilt from linear products that `make` supplies."""
    if isinstance(layer, nn.Linear):
        return make(layer.weight.detach(), None if layer.bias is None else layer.bias.detach(), declared.bounds)
    if isinstance(layer, nn.LSTM) and declared.bounds is not None:
        if layer.bidirectional:
            return StepBiLSTM(layer, make, declared.bounds)
        return StepLSTM(layer, make, declared.bounds, declared.tokens if token_table else None)
    raise TypeError(f"no inference replacement for {type(layer).__name__}")


def convert(model: Seq2Seq, make: LinearFactory, token_table: bool = True) -> Seq2Seq:
    """Rebuild every declared linear and recurrent layer of `model` with `make`, in place.

    Raises TypeError if a float layer is left over: a layer whose inputs no module declared.
    """
    for module in list(model.modules()):
        ranges = getattr(module, "input_ranges", None)
        if ranges is None:
            continue
        for name, declared in ranges().items():
            setattr(module, name, _replace(getattr(module, name), make, declared, token_table))
    leftover = [name for name, m in model.named_modules() if isinstance(m, FLOAT_LAYERS)]
    if leftover:
        raise TypeError(f"layers without a declared input range would stay in float: {', '.join(leftover)}")
    return model


def _code_embeddings(model: Seq2Seq) -> None:
    """Embedding tables as int8 codes where they are exactly that (a model stored in int8), shared ones once."""
    coded: dict[int, nn.Module] = {}
    for owner in (model.encoder, model.decoder):
        table = owner.embedding
        if isinstance(table, nn.Embedding) and id(table) not in coded:
            coded[id(table)] = CodedEmbedding.of(table) or table
        setattr(owner, "embedding", coded[id(table)])  # noqa: B010 (an nn.Embedding attribute takes a Module)


def prepare(
    model: Seq2Seq,
    precision: Precision,
    footprint: Footprint = "fast",
    token_table: bool | None = None,
    kernels: str | None = None,
) -> Seq2Seq:
    """`model` (eval mode, loaded in `weight_dtype(precision)`) made ready to run in `precision`, in place.

    int8 rebuilds its layers (see `convert`) in `footprint` (see the module docstring); the
    float precisions run the trained modules. `token_table` and `kernels` override the
    footprint's choice, for benchmarks that measure each on its own.
    """
    if token_table is None:
        token_table = footprint == "fast"
    if kernels is None:
        kernels = "auto" if footprint == "fast" else ("onednn" if "onednn" in int8_kernels() else "fbgemm")
    if precision == "int8":
        convert(model, functools.partial(Int8Linear, kernels=kernels), token_table)
        if footprint == "lean":
            _code_embeddings(model)
    for module in model.modules():
        if isinstance(module, nn.RNNBase):
            module.flatten_parameters()  # after a dtype change cuDNN wants its weights in one block again
    return model

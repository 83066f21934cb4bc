"""Batch-invariant int8 linear layers on CPU: int8 weights, activations quantised with fixed scales, exact sums.

PyTorch's dynamic quantisation takes each activation scale from the whole batch, so a
sentence's translation would depend on the sentences batched with it. Here no scale
depends on other rows:

- inputs whose range the architecture fixes are quantised with a constant scale: LSTM
  hidden states and attentional vectors are tanh outputs in [-1, 1], attention contexts
  are averages of encoder LSTM outputs, embeddings lie within their table's largest value
  (each input column is divided by its bound, and the weight column multiplied by it);
- inputs with no tight fixed range (the generator's input when it is a projection, the
  bridge's cell-state input) are quantised per row: divided by their own largest value,
  the product multiplied back.

Activations use 7 bits (-63..63, stored as 1..127 with zero point 64): fbgemm's and
oneDNN's AVX2 kernels add pairs of u8 x s8 products in 16 bits, which full 8-bit
activations can overflow. Weights are int8 per output channel. The kernels are asked for
the bare integer sums (unit scales: below 2**24 for inputs up to 2,000 wide, so exact in
fp32) and the scales and bias are applied here, elementwise; so the result is the same
bits whichever kernel ran, at any batch size, on any x86 CPU. Two kernels compute them:
fbgemm, and, where the CPU has AMX, oneDNN, which runs them on AMX tiles at 1.3-2x fbgemm's
speed from 32 rows (below that fbgemm's lower per-call cost wins); `Int8Linear` picks per
call by the number of rows. Without AMX (AVX2 code paths) fbgemm was as fast or faster at
every size measured, so it runs alone (docs/benchmarks.md).
"""

from __future__ import annotations

import copy
import functools
import warnings

import torch
from torch import nn

_LEVELS = 63  # activations in [-1, 1] map to -63..63
_ZERO_POINT = 64  # ... stored as 1..127
_MAX_WIDTH = 2**24 // (_LEVELS * 127)  # widest input whose integer sums fp32 holds exactly (2,096)
ONEDNN_MIN_ROWS = 32  # below this many rows fbgemm's lower per-call cost wins (measured: docs/benchmarks.md)


@functools.cache
def int8_kernels() -> tuple[str, ...]:
    """The int8 kernels this build of PyTorch offers on this CPU: fbgemm and/or onednn (empty off x86)."""
    kernels = []
    if "fbgemm" in torch.backends.quantized.supported_engines:
        kernels.append("fbgemm")
        onednn = getattr(torch.ops, "onednn", None)
        if torch.backends.mkldnn.is_available() and hasattr(onednn, "qlinear_pointwise"):
            kernels.append("onednn")
    return tuple(kernels)


@functools.cache
def amx_int8() -> bool:
    """Whether int8 products may run on AMX tiles here, where oneDNN beats fbgemm (not when code paths are lowered)."""
    amx = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
    return amx and torch.backends.cpu.get_cpu_capability() not in ("DEFAULT", "AVX2")


def _pack_fbgemm(weight: torch.Tensor) -> torch.Tensor:
    """fbgemm-packed integer weight (out, in) with unit scale."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks quantised tensors deprecated in favour of torchao
        qweight = torch.quantize_per_tensor(weight.float(), 1.0, 0, torch.qint8)
    return torch.ops.quantized.linear_prepack(qweight, None)


class Int8Linear(nn.Module):
    """A linear layer on int8 weights for inputs with known per-column bounds, or per-row scales."""

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None, bounds: torch.Tensor | None, kernels: str = "auto"
    ) -> None:
        """Weight (out, in) and bias of a linear layer; `bounds` (in,): largest |input| per column,
        or None to quantise each row by its own max. `kernels`: auto (both, by rows), fbgemm or onednn."""
        super().__init__()
        if not int8_kernels():
            raise RuntimeError("int8 needs an x86 CPU (PyTorch's fbgemm engine)")
        if weight.size(1) > _MAX_WIDTH:
            raise ValueError(f"int8 sums are exact for inputs up to {_MAX_WIDTH} wide, not {weight.size(1)}")
        weight = weight.detach().float()
        self.in_features = weight.size(1)
        self.per_row = bounds is None
        self.inv_bounds: torch.Tensor | None = None
        if bounds is not None:
            bounds = bounds.float().clamp(min=1e-6)
            weight = weight * bounds
            if not bool((bounds == 1.0).all()):
                self.inv_bounds = 1 / bounds
        w_scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12)
        integers = torch.round(weight / w_scale.unsqueeze(1)).clamp_(-127, 127)
        bias = None if bias is None else bias.detach().float()
        self._pack(integers, w_scale / _LEVELS, bias, kernels)

    def _pack(self, integers: torch.Tensor, out_scale: torch.Tensor, bias: torch.Tensor | None, kernels: str) -> None:
        available = int8_kernels()
        self.kernels = kernels
        self.out_scale = out_scale  # integer sum -> output, per output channel
        self.bias = bias
        self.out_features = integers.size(0)
        onednn = "onednn" in available and (kernels == "onednn" or (kernels == "auto" and amx_int8()))
        self.use_onednn = onednn
        self.use_fbgemm = kernels != "onednn" or not onednn
        self.fbgemm = _pack_fbgemm(integers) if self.use_fbgemm else None
        if self.use_onednn:
            self.onednn = torch.ops.onednn.qlinear_prepack(integers.to(torch.int8), None)
            self.unit_scales = torch.ones(self.out_features)
            self.zero_points = torch.zeros(self.out_features, dtype=torch.int32)

    def select_outputs(self, index: torch.Tensor) -> Int8Linear:
        """This layer restricted to outputs `index` (1-D long tensor): the same bits for those outputs."""
        sub = copy.copy(self)
        bias = None if self.bias is None else self.bias.index_select(0, index)
        sub._pack(self.integers().index_select(0, index), self.out_scale.index_select(0, index), bias, self.kernels)
        return sub

    def integers(self) -> torch.Tensor:
        """The weight's integers (out, in) as floats, unpacked from a kernel's copy (none is kept as floats)."""
        if self.fbgemm is not None:
            qweight, _ = torch.ops.quantized.linear_unpack(self.fbgemm)
            return qweight.int_repr().float()
        return self.onednn.to_dense().t().float()  # oneDNN packs (in, out)

    def integer_sums(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in) floats within [-1, 1] -> the exact (N, out) sums of their 7-bit grid values times the weights."""
        q = torch.round(x * _LEVELS).clamp_(-_LEVELS, _LEVELS)
        if self.use_onednn and (x.size(0) >= ONEDNN_MIN_ROWS or not self.use_fbgemm):
            qx = q.add_(_ZERO_POINT).to(torch.uint8)
            return torch.ops.onednn.qlinear_pointwise(
                qx, 1.0, _ZERO_POINT, self.onednn, self.unit_scales, self.zero_points,
                None, 1.0, 0, torch.float32, "none", [], "",
            )  # fmt: skip
        return torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(q, 1.0, _ZERO_POINT, self.fbgemm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same contract as nn.Linear: (..., in) -> (..., out) in fp32."""
        shape = x.shape[:-1]
        sums, row_max = self._sums(x.reshape(-1, self.in_features))
        return self._finish(sums, row_max, self.out_scale, self.bias).view(*shape, self.out_features)

    def forward_at(self, x: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """`forward(x)` at some outputs only: x (G * R, in) in G groups of R rows, columns (G, L) each group's
        outputs -> (G * R, L), the same bits, scaled and biased on those outputs alone (a generator over a
        whole vocabulary, of which each sentence reads a shortlist: 8,000 columns scaled for ~350 read)."""
        sums, row_max = self._sums(x)
        groups, width = columns.shape
        picked = sums.view(groups, -1, self.out_features).gather(
            2, columns.unsqueeze(1).expand(-1, x.size(0) // groups, -1)
        )
        scale = self.out_scale[columns].unsqueeze(1)
        bias = None if self.bias is None else self.bias[columns].unsqueeze(1)
        rows = None if row_max is None else row_max.view(groups, -1, 1)
        return self._finish(picked, rows, scale, bias).view(x.size(0), width)

    def _sums(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Integer sums of rows x (N, in), and each row's scale where it is quantised by its own max."""
        x = x.float()
        row_max = None
        if self.per_row:
            row_max = x.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12)
            x = x / row_max
        elif self.inv_bounds is not None:
            x = x * self.inv_bounds
        return self.integer_sums(x), row_max

    @staticmethod
    def _finish(
        sums: torch.Tensor, row_max: torch.Tensor | None, scale: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """Outputs from integer sums: one rounding per operation, in one order, so any subset of them gets the
        same bits as the whole."""
        y = sums.mul_(scale)
        if row_max is not None:
            y.mul_(row_max)
        if bias is not None:
            y.add_(bias)
        return y


class CodedEmbedding(nn.Module):
    """An embedding table held as int8 codes times an fp32 scale per row: a quarter of its fp32 memory.

    Only built (`of`) where the fp32 table is exactly such codes times scales, as a model stored
    in int8 (`nmt.model_dir.pack_int8`) loads: a lookup multiplies the same two numbers as loading
    did, so it returns the same bits as the fp32 table.
    """

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.codes, self.scale = codes, scale
        self.num_embeddings, self.embedding_dim = codes.shape

    @classmethod
    def of(cls, embedding: nn.Embedding) -> CodedEmbedding | None:
        """The coded form of `embedding`, or None where its values are not int8 codes times row scales."""
        weight = embedding.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp_min(1e-12) / 127.0
        codes = torch.round(weight / scale[:, None]).clamp_(-127, 127)
        if not torch.equal(codes * scale[:, None], weight):
            return None
        return cls(codes.to(torch.int8), scale)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """nn.Embedding's contract: ids (...) -> (..., embedding_dim) in fp32."""
        return self.codes[ids].float() * self.scale[ids].unsqueeze(-1)

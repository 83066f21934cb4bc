"""Luong global attention with the dot-product score, masked on source padding.

    score(h_t, m_i) = m_i . h_t          a_t = softmax(score) over non-padding i
    c_t = sum_i a_t,i m_i

Shapes: B batch, T query steps, S source length, H width of queries and memory.

Two implementations of the same maths:

- `dot_attention`: plain float matrix products, differentiable; used in training.
- `exact_dot_attention`: for inference. A float dot product or softmax sum depends on the
  order of its additions, and BLAS and vectorised kernels pick that order by shape, so a
  sentence padded to a longer neighbour's length (or alone) could get attention weights
  a few ulps apart, enough to flip an int8 rounding or a beam tie on some CPUs. Here
  every sum is over integers: queries, memory, exponentials and weights are rounded to
  integer grids (float64 values below 2**53, where every addition is exact), so each
  result is the same in any order, on any CPU or GPU, whatever the padding. The grids are
  fine (21+ bits for queries and memory, 30+ for weights): the result is as close to the
  real-valued attention as fp32 arithmetic is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_EXACT_BITS = 52  # float64 integers up to 2**53 add exactly; one bit of margin
_EXP_BITS = 38  # exp(score - max) in [0, 1] on a grid of 2**-38: sums exact for S < 2**14


def dot_attention(query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attend queries (B, T, H) over memory (B, S, H); mask (B, S) is True on real tokens.

    Returns the context (B, T, H) and the weights (B, T, S), exactly 0 on padding.
    """
    scores = torch.bmm(query, memory.transpose(1, 2))
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return torch.bmm(weights, memory), weights


def grid_bits(width: int) -> int:
    """Grid bits of two vectors of `width` values: width * 2**(2 bits) stays below 2**52, so their float64 dot
    product over integer grid values is exact."""
    return (_EXACT_BITS - math.ceil(math.log2(max(width, 2)))) // 2


@dataclass(frozen=True)
class GridMemory:
    """Encoder memory on an integer grid, computed once per batch: memory ~= values * scale.

    values (B, S, H) float64 integers; scale (B, 1, 1) a power of two per sentence.
    """

    values: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def of(cls, memory: torch.Tensor) -> GridMemory:
        """The grid of memory (B, S, H); padding rows must be 0 (they are, from the encoders).

        Each sentence's scale comes from its own largest |value|, so its grid never looks at
        other sentences; scaling by a power of two is exact, rounding is half-to-even.
        """
        bits = grid_bits(memory.size(-1))
        memory = memory.double()
        _, exponent = torch.frexp(memory.abs().amax(dim=(1, 2), keepdim=True))  # peak < 2**exponent
        scale = torch.ldexp(torch.ones(exponent.shape, dtype=torch.float64, device=memory.device), exponent - bits)
        return cls(torch.round(memory / scale), scale)

    def select(self, index: torch.Tensor) -> GridMemory:
        """Rows `index` (1-D long tensor)."""
        return GridMemory(self.values.index_select(0, index), self.scale.index_select(0, index))


def exact_dot_attention(
    query: torch.Tensor, memory: GridMemory, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """`dot_attention` whose results do not depend on padding, batch or kernel: see the module docstring.

    Queries (B, T, H) are RNN outputs, within [-1, 1] (anything outside is clipped); mask
    (B, S) as for `dot_attention`. Context and weights come back in the query's dtype.
    """
    steps = memory.values.size(1)
    if steps >= 2 ** (_EXACT_BITS - _EXP_BITS):
        raise ValueError(f"exact attention covers sources up to {2 ** (_EXACT_BITS - _EXP_BITS) - 1} positions")
    bits = grid_bits(memory.values.size(-1))
    q = query.double().clamp_(-1.0, 1.0).mul_(2.0**bits).round_()
    scores = torch.bmm(q, memory.values.transpose(1, 2)).mul_(memory.scale * 2.0**-bits)
    scores.masked_fill_(~mask.unsqueeze(1), float("-inf"))
    # exp out of place: MKL's in-place vector math was not the same in every process (nmt/layers.py)
    exps = torch.exp(scores.sub_(scores.amax(dim=-1, keepdim=True))).mul_(2.0**_EXP_BITS).round_()
    weights = exps.div_(exps.sum(dim=-1, keepdim=True))
    # rounded weights sum to at most 1 + S / 2**weight_bits; times memory values below 2**bits: below 2**52
    weight_bits = _EXACT_BITS - bits - 1
    grid_weights = torch.round(weights * 2.0**weight_bits)
    context = torch.bmm(grid_weights, memory.values).mul_(memory.scale * 2.0**-weight_bits)
    return context.to(query.dtype), weights.to(query.dtype)

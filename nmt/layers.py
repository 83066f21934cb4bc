"""Inference LSTMs built from replaceable linear products: the recurrence is here, the arithmetic is a precision's.

A trained model holds `nn.LSTM`s (fast fused kernels for training). For inference a
precision (`nmt.precision`) rebuilds every LSTM from linear layers it makes itself, with a
`LinearFactory`, so the products of every layer, recurrent ones included, run in that
precision and nothing stays fp32 because its class was not foreseen:

- `StepLSTM`: a unidirectional LSTM stepped one position at a time, one product over
  [x_t; h] per layer and step. With `token_table` (the decoder's first layer under input
  feeding) the embedding's share of that product is looked up from a (V, 4H) table made
  once, so each step multiplies only [feed; h].
- `StepBiLSTM`: the bidirectional encoder LSTM over a padded batch. Each layer projects
  all its inputs at once (both directions in one product), then runs the two recurrences (for
  small batches together, position t forwards beside S-1-t backwards: one block-diagonal
  product and one cell update for both, half the operator calls, which dominate there),
  holding each row's state once it has passed its last token (forward) or until it reaches
  it (backward), so padding never changes a sentence's encoding.

Every operation besides the products is elementwise and rounds the same in any batch
(`sigmoid` explains which nonlinearities are safe for that).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nmt.attention import grid_bits
from nmt.encoder import EncoderFinal

# (weight (out, in), bias (out,) or None, bounds (in,) or None) -> a module computing x W^T + b.
# bounds: largest |input| per column when the architecture fixes it; None: the input's range is unknown.
LinearFactory = Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], nn.Module]


_GRAIN = 32768  # elements per thread below which ATen runs an elementwise op on one thread (at::internal)
_TAIL = 32  # ATen's vectorised loops take 2 x 16 fp32 per step (AVX-512; 2 x 8 on AVX2) and the rest scalar


def _threads(n: int) -> int:
    """Threads ATen splits an elementwise op over `n` elements between (equal shares, the last shorter)."""
    return min(torch.get_num_threads(), max(1, -(-n // _GRAIN)))


def _aligned(n: int) -> bool:
    """Whether every thread's share of `n` elements is a whole number of vector steps (no scalar tail)."""
    return n % _TAIL == 0 and (-(-n // _threads(n))) % _TAIL == 0


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """torch.sigmoid, the same bits for an element whatever the tensor's size, thread count or position.

    torch.sigmoid is ATen's own vectorised code, but the last elements of each thread's share
    go through scalar code that rounds differently (2 in 100,000 differ), and which elements
    those are depends on the tensor's size and the number of threads. So a tensor whose shares
    would have a tail is computed in a zero-padded buffer whose shares have none: every element
    takes the vector path. (Falling back to float64 for such tensors, as before, is not enough:
    float64-rounded and fp32 vector results differ for a third of inputs, so on 3 or more threads
    a gate row got other bits in a batch of 34 rows than in one of 33.)
    torch.tanh and torch.exp are no alternative: on fp32 they go to MKL's vector math, which on
    a Sapphire Rapids VM gave some processes (3 to 5 in 16) other, less accurate results on one
    of their two threads (docs/benchmarks.md).
    """
    n = x.numel()
    if x.is_contiguous() and _aligned(n):
        return torch.sigmoid(x)
    padded = -(-n // _TAIL) * _TAIL
    while not _aligned(padded):
        padded += _TAIL
    buffer = x.new_zeros(padded)
    buffer[:n] = x.reshape(-1)
    return torch.sigmoid(buffer)[:n].view(x.shape)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2 sigmoid(2x) - 1: see `sigmoid` for why not torch.tanh."""
    return sigmoid(x * 2.0).mul_(2.0).sub_(1.0)


def tanh_for(x: torch.Tensor, training: bool) -> torch.Tensor:
    """torch.tanh while training (autograd, the trained numerics); the batch-invariant `tanh` at inference."""
    return torch.tanh(x) if training else tanh(x)


def lstm_cell(gates: torch.Tensor, c: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM update from pre-activations (B, 4H) in `_weights`' order (i, f, o, 2g): one sigmoid for all gates."""
    gates = sigmoid(gates)
    gates[:, 3 * size :].mul_(2.0).sub_(1.0)  # tanh(g) = 2 sigmoid(2g) - 1, the 2g folded into the weights
    i, f, o, g = gates.split(size, dim=1)
    c = torch.addcmul(f * c, i, g)
    return o * tanh(c), c


def exact_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x W^T + b in fp32, the same bits on any CPU and in any process (BLAS fp32 products are neither).

    Rows of x and of W go on integer grids fine enough for fp32 (22+ bits) and are multiplied
    in float64, where their integer sums are exact; used once per model, for the token table.
    """
    bits = grid_bits(x.size(1))
    x, weight = x.double(), weight.double()
    # a power-of-two scale per row: x ~= x_int * x_scale with |x_int| <= 2**bits
    _, x_exp = torch.frexp(x.abs().amax(dim=1, keepdim=True))
    _, w_exp = torch.frexp(weight.abs().amax(dim=1, keepdim=True))
    x_int = torch.round(torch.ldexp(x, bits - x_exp))
    w_int = torch.round(torch.ldexp(weight, bits - w_exp))
    sums = x_int @ w_int.T  # below 2**52 in magnitude: exact, whatever the order
    return (torch.ldexp(sums, x_exp + w_exp.T - 2 * bits) + bias.double()).float()


def _weights(lstm: nn.LSTM, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W_ih, W_hh, b_ih + b_hh) of one layer and direction (name 'l0', 'l1_reverse', ...), as `lstm_cell` takes
    them: rows reordered from nn.LSTM's i, f, g, o to i, f, o, g, and those of g doubled (exactly)."""
    i, f, g, o = (torch.arange(lstm.hidden_size) + k * lstm.hidden_size for k in range(4))
    order = torch.cat([i, f, o, g])
    scale = torch.cat([torch.ones(3 * lstm.hidden_size), torch.full((lstm.hidden_size,), 2.0)])
    bias = getattr(lstm, f"bias_ih_{name}") + getattr(lstm, f"bias_hh_{name}")
    w_ih, w_hh = getattr(lstm, f"weight_ih_{name}"), getattr(lstm, f"weight_hh_{name}")

    def arrange(t: torch.Tensor) -> torch.Tensor:
        return t.detach()[order] * (scale if t.dim() == 1 else scale.unsqueeze(1))

    return arrange(w_ih), arrange(w_hh), arrange(bias)


class StepLSTM(nn.Module):
    """Unidirectional batch-first nn.LSTM as one product over [x_t; h] per layer and step, made by `make`."""

    def __init__(
        self,
        lstm: nn.LSTM,
        make: LinearFactory,
        input_bounds: torch.Tensor,
        token_table: nn.Embedding | None = None,
    ) -> None:
        """`input_bounds` (input_size,): largest |x| per input column of the first layer.

        With `token_table`, the first `embedding_dim` input columns are that table's embeddings,
        and `forward` takes the token ids instead of them (see the module docstring).
        """
        super().__init__()
        if lstm.bidirectional or not lstm.batch_first or lstm.proj_size:
            raise ValueError("StepLSTM replaces unidirectional batch-first LSTMs without projections")
        self.hidden_size, self.num_layers = lstm.hidden_size, lstm.num_layers
        unit = torch.ones(self.hidden_size)
        self.token_gates: nn.Embedding | None = None
        cells = []
        for layer in range(self.num_layers):
            w_ih, w_hh, bias = _weights(lstm, f"l{layer}")
            x_bounds = input_bounds if layer == 0 else unit
            if layer == 0 and token_table is not None:
                width = token_table.embedding_dim
                table = exact_linear(token_table.weight.detach(), w_ih[:, :width], bias)
                self.token_gates = nn.Embedding.from_pretrained(table)
                w_ih, x_bounds = w_ih[:, width:], x_bounds[width:]
                cells.append(make(torch.cat([w_ih, w_hh], dim=1), None, torch.cat([x_bounds, unit])))
                continue
            cells.append(make(torch.cat([w_ih, w_hh], dim=1), bias, torch.cat([x_bounds, unit])))
        self.cells = nn.ModuleList(cells)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], tokens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """nn.LSTM's batch-first contract: (B, T, I), ((L, B, H), (L, B, H)) -> (B, T, H), state.

        With a token table, x holds only the non-embedding inputs and `tokens` (B, T) the ids.
        """
        if (tokens is None) != (self.token_gates is None):
            raise ValueError("tokens are needed exactly when the LSTM has a token table")
        hs, cs = list(state[0].unbind(0)), list(state[1].unbind(0))
        outputs = []
        size = self.hidden_size
        for t in range(x.size(1)):
            inp = x[:, t]
            for layer, cell in enumerate(self.cells):
                gates = cell(torch.cat([inp, hs[layer]], dim=1))
                if layer == 0 and self.token_gates is not None and tokens is not None:
                    gates = gates.add_(self.token_gates(tokens[:, t]))
                inp, cs[layer] = lstm_cell(gates, cs[layer], size)
                hs[layer] = inp
            outputs.append(inp)
        return torch.stack(outputs, dim=1), (torch.stack(hs), torch.stack(cs))


class StepBiLSTM(nn.Module):
    """The encoder's bidirectional LSTM over a padded batch: (B, S, E), lengths -> outputs, finals.

    Same results as packing, row by row; see the module docstring. Below `FUSED_ROWS` rows the
    two directions step together: their recurrent products are one block-diagonal product over
    [h_forward; h_backward] (twice the multiply-adds, half the operator calls, which cost more at
    such sizes), and its zero blocks add nothing, so with exact sums (int8) both ways give the
    same bits. From `FUSED_ROWS` rows each direction runs on its own.
    """

    FUSED_ROWS = 48  # 2 cores, shipped model: fused 2.7 vs 4.5 ms at 1 row, 23 vs 28 at 32; 58 vs 48 at 64

    def __init__(self, lstm: nn.LSTM, make: LinearFactory, input_bounds: torch.Tensor) -> None:
        super().__init__()
        if not lstm.bidirectional or not lstm.batch_first or lstm.proj_size:
            raise ValueError("StepBiLSTM replaces bidirectional batch-first LSTMs without projections")
        self.num_layers, self.hidden_size = lstm.num_layers, lstm.hidden_size
        hidden = self.hidden_size
        inputs, fused, recurrent = [], [], []  # recurrent: layer 0 forward, layer 0 backward, layer 1 forward, ...
        for layer in range(self.num_layers):
            forward, backward = _weights(lstm, f"l{layer}"), _weights(lstm, f"l{layer}_reverse")
            bounds = input_bounds if layer == 0 else torch.ones(2 * hidden)
            inputs.append(make(torch.cat([forward[0], backward[0]]), torch.cat([forward[2], backward[2]]), bounds))
            fused.append(make(torch.block_diag(forward[1], backward[1]), None, torch.ones(2 * hidden)))
            recurrent += [make(w[1], None, torch.ones(hidden)) for w in (forward, backward)]
        self.inputs, self.fused, self.recurrent = nn.ModuleList(inputs), nn.ModuleList(fused), nn.ModuleList(recurrent)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, EncoderFinal]:
        """Embedded (B, S, E) with true lengths (B,) -> outputs (B, S, 2H), 0 on padding; finals (L, B, 2H)."""
        steps = x.size(1)
        # (S, B, 1): which rows hold a real token at each position
        real = (torch.arange(steps, device=x.device).unsqueeze(1) < lengths.to(x.device)).unsqueeze(2)
        x = x.float()
        finals_h, finals_c = [], []  # (B, 2H) per layer: forward, then backward
        for layer, inputs in enumerate(self.inputs):
            gates_in = inputs(x).view(x.size(0), steps, 2, 4 * self.hidden_size)
            run = self._together if x.size(0) < self.FUSED_ROWS else self._apart
            x, h, c = run(layer, gates_in, real)
            finals_h.append(h)
            finals_c.append(c)
        return x, (torch.stack(finals_h), torch.stack(finals_c))

    def _together(self, layer: int, gates_in: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Both directions of one layer at once: step t is position t forwards and S-1-t backwards."""
        batch, steps, size = gates_in.size(0), gates_in.size(1), self.hidden_size
        hh = self.fused[layer]
        gates_in = torch.stack([gates_in[:, :, 0], gates_in[:, :, 1].flip(1)], dim=2)
        real = torch.stack([real, real.flip(0)], dim=2)  # (S, B, 2, 1)
        h = gates_in.new_zeros(batch, 2, size)
        c = gates_in.new_zeros(batch, 2, size)
        outputs = []
        for t in range(steps):
            gates = hh(h.view(batch, 2 * size)).view(batch, 2, 4 * size).add_(gates_in[:, t])
            h_new, c_new = lstm_cell(gates.view(batch * 2, 4 * size), c.view(batch * 2, size), size)
            h_new, c_new = h_new.view(batch, 2, size), c_new.view(batch, 2, size)
            h, c = torch.where(real[t], h_new, h), torch.where(real[t], c_new, c)
            outputs.append(h_new.masked_fill_(~real[t], 0.0))
        out = torch.stack(outputs, dim=1)  # (B, S, 2, H), the backward half in reverse order
        out = torch.cat([out[:, :, 0], out[:, :, 1].flip(1)], dim=2)
        return out, h.view(batch, 2 * size), c.view(batch, 2 * size)

    def _apart(self, layer: int, gates_in: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One layer, one direction after the other."""
        batch, steps, size = gates_in.size(0), gates_in.size(1), self.hidden_size
        outputs = gates_in.new_zeros(batch, steps, 2, size)
        finals_h, finals_c = [], []
        for direction in (0, 1):
            hh = self.recurrent[2 * layer + direction]
            h = gates_in.new_zeros(batch, size)
            c = gates_in.new_zeros(batch, size)
            for t in range(steps) if direction == 0 else range(steps - 1, -1, -1):
                h_new, c_new = lstm_cell(gates_in[:, t, direction] + hh(h), c, size)
                h, c = torch.where(real[t], h_new, h), torch.where(real[t], c_new, c)
                outputs[:, t, direction] = h_new.masked_fill_(~real[t], 0.0)
            finals_h.append(h)
            finals_c.append(c)
        return outputs.view(batch, steps, 2 * size), torch.cat(finals_h, dim=1), torch.cat(finals_c, dim=1)

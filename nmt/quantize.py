"""Batch-invariant int8 inference on CPU: int8 weights, activations quantised with fixed scales.

PyTorch's dynamic quantisation takes each activation scale from the whole batch, so a
sentence's translation would depend on the sentences batched with it. Here no scale
depends on other rows:

- inputs whose range the architecture fixes are quantised with a constant scale: LSTM
  hidden states and attentional vectors are tanh outputs in [-1, 1], attention contexts
  are averages of encoder LSTM outputs, embeddings lie within their table's largest value
  (each input column is divided by its bound, and the weight column multiplied by it);
- the generator's input (a linear projection) and the bridge's cell-state input have no
  tight fixed range and are quantised per row: divided by their own largest value, the
  product multiplied back.

Integer products are exact, so a row's result is the same in any batch. Activations use
7 bits (0..127): fbgemm's AVX2 kernels add pairs of u8 x s8 products in 16 bits, which
full 8-bit activations can overflow. Weights are int8 per output channel.
The encoder, bridge and decoder are all quantised, so for LSTM models a sentence's int8
translation and score are bitwise the same in any batch. GRU models keep their fp32
recurrences (only their linear layers go int8) and with them fp32's small batch-to-batch
differences, which int8 rounding can then enlarge.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from nmt.encoder import Encoder, EncoderFinal, merge_directions
from nmt.errors import InputError
from nmt.model import Seq2Seq

_LEVELS = 63  # activations in [-1, 1] map to 1..127 (7 bits, zero point 64)
_ZERO_POINT = 64


def _pack(weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """fbgemm-packed int8 weight, symmetric per output channel, with its fp32 bias."""
    scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()
    zero = torch.zeros(weight.size(0), dtype=torch.long)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks quantised tensors deprecated in favour of torchao
        qweight = torch.quantize_per_channel(weight.float(), scale, zero, 0, torch.qint8)
    return torch.ops.quantized.linear_prepack(qweight, None if bias is None else bias.float())


def _q_linear(x: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
    """fp32 (N, K) in [-1, 1] -> fp32 (N, M): quantised with the fixed scale, int8 product, bias."""
    return torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(x, 1 / _LEVELS, _ZERO_POINT, packed)


class Int8Linear(nn.Module):
    """A linear layer on int8 weights for inputs with known per-column bounds, or per-row scales."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, bounds: torch.Tensor | None) -> None:
        """Weight (out, in) and bias of a linear layer; `bounds` (in,): largest |input| per column,
        or None to quantise each row by its own max."""
        super().__init__()
        weight = weight.detach().float()
        bias = None if bias is None else bias.detach().float()
        self.out_features = weight.size(0)
        self.per_row = bounds is None
        self.inv_bounds: torch.Tensor | None = None
        if bounds is not None:
            # rounding past a bound stays within the half level of slack above 127
            bounds = bounds.float().clamp(min=1e-6)
            weight = weight * bounds
            if not bool((bounds == 1.0).all()):
                self.inv_bounds = 1 / bounds
        # per-row results are scaled after the product, so the bias is added after that
        self.bias = bias if self.per_row else None
        self.packed = _pack(weight, None if self.per_row else bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same contract as nn.Linear: (..., in) -> (..., out)."""
        shape = x.shape[:-1]
        x = x.reshape(-1, x.size(-1)).float()
        if self.per_row:
            row_max = x.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12)
            y = _q_linear(x / row_max, self.packed)
            y = y.mul_(row_max) if self.bias is None else torch.addcmul(self.bias, y, row_max)
        else:
            y = _q_linear(x if self.inv_bounds is None else x * self.inv_bounds, self.packed)
        return y.view(*shape, self.out_features)


class Int8LSTM(nn.Module):
    """Unidirectional batch-first nn.LSTM on int8 weights: one product over [x_t; h] per layer and step."""

    def __init__(self, lstm: nn.LSTM, input_bounds: torch.Tensor) -> None:
        """`input_bounds` (input_size,): largest |x| per input column of the first layer."""
        super().__init__()
        if lstm.bidirectional or not lstm.batch_first or lstm.proj_size:
            raise ValueError("Int8LSTM replaces unidirectional batch-first LSTMs without projections")
        self.hidden_size, self.num_layers = lstm.hidden_size, lstm.num_layers
        cells = []
        for layer in range(lstm.num_layers):
            w_ih, w_hh = getattr(lstm, f"weight_ih_l{layer}"), getattr(lstm, f"weight_hh_l{layer}")
            bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
            x_bounds = input_bounds if layer == 0 else torch.ones(self.hidden_size)
            bounds = torch.cat([x_bounds, torch.ones(self.hidden_size)])
            cells.append(Int8Linear(torch.cat([w_ih, w_hh], dim=1), bias, bounds))
        self.cells = nn.ModuleList(cells)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Same contract as nn.LSTM with batch_first: (B, T, I), ((L, B, H), (L, B, H)) -> (B, T, H), state."""
        hs, cs = list(state[0].unbind(0)), list(state[1].unbind(0))
        outputs = []
        size = self.hidden_size
        for t in range(x.size(1)):
            inp = x[:, t]
            for layer, cell in enumerate(self.cells):
                inp, cs[layer] = _lstm_cell(cell(torch.cat([inp, hs[layer]], dim=1)), cs[layer], size)
                hs[layer] = inp
            outputs.append(inp)
        return torch.stack(outputs, dim=1), (torch.stack(hs), torch.stack(cs))


class Int8Encoder(nn.Module):
    """The bidirectional LSTM encoder on int8 weights: same contract as `Encoder`.

    Each layer projects all its inputs at once (both directions in one product), then runs
    the two recurrences step by step over the padded batch, holding each row's state once
    it has passed its last token (forward) or until it reaches it (backward). Every product
    is exact and every other operation elementwise, so each sentence's encoding is bitwise
    the same in any batch; padding rows compute values that are never used.
    """

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        lstm = encoder.rnn
        if not isinstance(lstm, nn.LSTM) or not lstm.bidirectional:
            raise ValueError("Int8Encoder replaces a bidirectional LSTM encoder")
        self.embedding = encoder.embedding
        self.num_layers, self.hidden_size = lstm.num_layers, lstm.hidden_size
        hidden = self.hidden_size
        inputs, recurrent = [], []
        for layer in range(self.num_layers):
            names = [f"l{layer}", f"l{layer}_reverse"]
            w_ih = torch.cat([getattr(lstm, f"weight_ih_{n}") for n in names])
            bias = torch.cat([getattr(lstm, f"bias_ih_{n}") + getattr(lstm, f"bias_hh_{n}") for n in names])
            bounds = _column_bounds(encoder.embedding) if layer == 0 else torch.ones(2 * hidden)
            inputs.append(Int8Linear(w_ih, bias, bounds))
            recurrent.append(
                nn.ModuleList(Int8Linear(getattr(lstm, f"weight_hh_{n}"), None, torch.ones(hidden)) for n in names)
            )
        self.inputs, self.recurrent = nn.ModuleList(inputs), nn.ModuleList(recurrent)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, EncoderFinal]:
        """Encode ids (B, S) with true lengths (B,) -> outputs (B, S, 2H), 0 on padding; finals (L, B, 2H)."""
        batch, steps = src.shape
        size = self.hidden_size
        # (S, B, 1): which rows hold a real token at each position
        real = (torch.arange(steps, device=src.device).unsqueeze(1) < lengths.to(src.device)).unsqueeze(2)
        x = self.embedding(src).float()
        finals_h, finals_c = [], []  # (B, H) per layer and direction, in nn.LSTM's order
        for layer in range(self.num_layers):
            gates_in = self.inputs[layer](x).view(batch, steps, 2, 4 * size)
            outputs = x.new_zeros(batch, steps, 2, size)
            recurrent: nn.ModuleList = self.recurrent[layer]  # type: ignore[assignment]
            for direction, hh in enumerate(recurrent):
                h = x.new_zeros(batch, size)
                c = x.new_zeros(batch, size)
                for t in range(steps) if direction == 0 else range(steps - 1, -1, -1):
                    h_new, c_new = _lstm_cell(gates_in[:, t, direction] + hh(h), c, size)
                    h, c = torch.where(real[t], h_new, h), torch.where(real[t], c_new, c)
                    outputs[:, t, direction] = h_new.masked_fill_(~real[t], 0.0)
                finals_h.append(h)
                finals_c.append(c)
            x = outputs.view(batch, steps, 2 * size)
        return x, (merge_directions(torch.stack(finals_h)), merge_directions(torch.stack(finals_c)))


def _column_bounds(embedding: nn.Embedding) -> torch.Tensor:
    """Largest |value| of each embedding column: the bound of every embedded input."""
    return embedding.weight.detach().abs().amax(dim=0).float()


def _int8(linear: nn.Linear, bounds: torch.Tensor | None) -> Int8Linear:
    """`linear` on int8 weights (see Int8Linear for `bounds`)."""
    return Int8Linear(linear.weight, linear.bias, bounds)


def _sigmoid_(x: torch.Tensor) -> torch.Tensor:
    """sigmoid(x) = (tanh(x / 2) + 1) / 2, in place.

    torch.sigmoid's vectorised and scalar code round differently, and which elements take
    the scalar path depends on the tensor's size and its split between threads, so a row's
    gates would depend on its batch; tanh, halving and adding one half round the same way
    everywhere.
    """
    return x.mul_(0.5).tanh_().add_(1.0).mul_(0.5)


def _lstm_cell(gates: torch.Tensor, c: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """LSTM update from pre-activations (B, 4H) in nn.LSTM's i, f, g, o order, in place on `gates`."""
    _sigmoid_(gates[:, : 2 * size])
    torch.tanh_(gates[:, 2 * size : 3 * size])
    _sigmoid_(gates[:, 3 * size :])
    c = torch.addcmul(gates[:, size : 2 * size] * c, gates[:, :size], gates[:, 2 * size : 3 * size])
    return gates[:, 3 * size :] * torch.tanh(c), c


def quantize_int8(model: Seq2Seq) -> Seq2Seq:
    """Replace the encoder's, bridge's and decoder's LSTMs and linear layers by batch-invariant int8 ones,
    in place (CPU only)."""
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        raise InputError("int8 quantization needs an x86 CPU (PyTorch's fbgemm engine); use fp32 here")
    if isinstance(model.encoder.rnn, nn.LSTM):
        model.encoder = Int8Encoder(model.encoder)  # type: ignore[assignment]
    bridge = model.bridge
    if bridge.proj_h is not None:  # final encoder h is in [-1, 1]; the cell state has no fixed range
        bridge.proj_h = _int8(bridge.proj_h, torch.ones(bridge.proj_h.in_features))  # type: ignore[assignment]
    if bridge.proj_c is not None:
        bridge.proj_c = _int8(bridge.proj_c, None)  # type: ignore[assignment]
    decoder = model.decoder
    hidden = decoder.hidden_size
    unit = torch.ones(hidden)
    if isinstance(decoder.rnn, nn.LSTM):
        emb_bound = _column_bounds(decoder.embedding)
        bounds = torch.cat([emb_bound, unit]) if decoder.input_feed else emb_bound
        decoder.rnn = Int8LSTM(decoder.rnn, bounds)  # type: ignore[assignment]
    # the memory is encoder LSTM output in [-1, 1], or its projection
    memory_bound = unit
    if decoder.memory_proj is not None:
        memory_bound = decoder.memory_proj.weight.detach().abs().sum(dim=1).float()
        decoder.memory_proj = _int8(decoder.memory_proj, torch.ones(decoder.memory_proj.in_features))  # type: ignore[assignment]
    decoder.combine = _int8(decoder.combine, torch.cat([memory_bound, unit]))  # type: ignore[assignment]
    if decoder.out_proj is not None:
        decoder.out_proj = _int8(decoder.out_proj, unit)  # type: ignore[assignment]
        decoder.generator = _int8(decoder.generator, None)  # type: ignore[assignment]
    else:
        decoder.generator = _int8(decoder.generator, unit)  # type: ignore[assignment]
    return model

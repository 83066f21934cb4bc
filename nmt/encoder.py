"""Bidirectional recurrent encoder over packed sequences.

Shapes: B batch, S source length, E embedding size, H hidden size per direction, L layers.
Padding never reaches the recurrence (sequences are packed), so a sentence gets the same
encoding alone or inside a padded batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

EncoderFinal = tuple[torch.Tensor, torch.Tensor | None]  # (h, c), each (L, B, 2H); c None for GRU


@dataclass(frozen=True)
class InputRange:
    """What a layer's inputs can hold: the largest |value| per input column, or None where no bound is known.

    `tokens`: for a recurrent layer whose first inputs are embeddings of token ids, their table.
    """

    bounds: torch.Tensor | None
    tokens: nn.Embedding | None = None


def column_bounds(embedding: nn.Embedding) -> torch.Tensor:
    """Largest |value| of each embedding column: the bound of every embedded input."""
    return embedding.weight.detach().abs().amax(dim=0).float()


class Encoder(nn.Module):
    """Embedding -> multi-layer bidirectional LSTM (or GRU); outputs (B, S, 2H)."""

    def __init__(
        self,
        embedding: nn.Embedding,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        cell: str = "lstm",
    ) -> None:
        super().__init__()
        self.embedding = embedding
        self.dropout = nn.Dropout(dropout)
        rnn_class = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_class(
            embedding.embedding_dim,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )

    def input_ranges(self) -> dict[str, InputRange]:
        """What each layer's inputs can hold, for precisions that quantise them (see `nmt.precision`)."""
        return {"rnn": InputRange(column_bounds(self.embedding))}

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, EncoderFinal]:
        """Encode ids (B, S) with true lengths (B,) -> outputs (B, S, 2H), final states (L, B, 2H)."""
        emb = self.dropout(self.embedding(src))
        if not isinstance(self.rnn, nn.RNNBase):  # an inference recurrence (nmt.layers.StepBiLSTM) takes lengths
            outputs, final_states = self.rnn(emb, lengths)
            return outputs, final_states
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out_packed, final = self.rnn(packed)
        outputs, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=src.size(1))
        if isinstance(final, tuple):
            return outputs, (merge_directions(final[0]), merge_directions(final[1]))
        return outputs, (merge_directions(final), None)


def merge_directions(state: torch.Tensor) -> torch.Tensor:
    """(L * 2, B, H) final states, directions interleaved per layer as nn.LSTM gives them -> (L, B, 2H)."""
    layers2, batch, hidden = state.shape
    state = state.view(layers2 // 2, 2, batch, hidden)
    return torch.cat([state[:, 0], state[:, 1]], dim=-1)

"""The attention encoder-decoder: encoder, bridge and decoder, built from a `ModelConfig`.

Shapes: B batch, S source length, T target length, V target vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn

from nmt.config import ModelConfig
from nmt.decoder import Decoder, DecoderState
from nmt.encoder import Encoder, InputRange
from nmt.layers import tanh_for
from nmt.tokenizer import PAD_ID


class Bridge(nn.Module):
    """Decoder initial states from the encoder's final states: tanh(W s) per layer, or zeros."""

    def __init__(self, kind: str, enc_layers: int, dec_layers: int, memory_size: int, hidden: int, cell: str):
        super().__init__()
        self.enc_layers, self.dec_layers, self.hidden = enc_layers, dec_layers, hidden
        self.proj_h = nn.Linear(memory_size, hidden) if kind == "dense" else None
        self.proj_c = nn.Linear(memory_size, hidden) if kind == "dense" and cell == "lstm" else None
        self.has_cell = cell == "lstm"

    def input_ranges(self) -> dict[str, InputRange]:
        """Final encoder h is an LSTM output in [-1, 1]; the cell state has no fixed range."""
        ranges = {}
        if self.proj_h is not None:
            ranges["proj_h"] = InputRange(torch.ones(self.proj_h.in_features))
        if self.proj_c is not None:
            ranges["proj_c"] = InputRange(None)
        return ranges

    def _layers(self, state: torch.Tensor) -> torch.Tensor:
        # Map encoder layers to decoder layers: the top ones, repeating the top if too few.
        if self.enc_layers >= self.dec_layers:
            return state[self.enc_layers - self.dec_layers :]
        extra = state[-1:].expand(self.dec_layers - self.enc_layers, -1, -1)
        return torch.cat([state, extra], dim=0)

    def forward(self, final_h: torch.Tensor, final_c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(Le, B, 2He) encoder finals -> (Ld, B, Hd) decoder initial h and c (c None for GRU)."""
        batch = final_h.size(1)
        if self.proj_h is None:
            zeros = final_h.new_zeros(self.dec_layers, batch, self.hidden)
            return zeros, (zeros.clone() if self.has_cell else None)
        h = tanh_for(self.proj_h(self._layers(final_h)), self.training)
        c = None
        if self.proj_c is not None and final_c is not None:
            c = tanh_for(self.proj_c(self._layers(final_c)), self.training)
        return h.contiguous(), None if c is None else c.contiguous()


class Seq2Seq(nn.Module):
    """Bidirectional RNN encoder + bridge + attention RNN decoder."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        src_emb = nn.Embedding(config.src_vocab_size, config.emb_size, padding_idx=PAD_ID)
        tgt_emb = (
            src_emb
            if config.share_embeddings
            else nn.Embedding(config.tgt_vocab_size, config.emb_size, padding_idx=PAD_ID)
        )
        self.encoder = Encoder(src_emb, config.enc_hidden, config.enc_layers, config.dropout, config.cell)
        self.bridge = Bridge(
            config.bridge, config.enc_layers, config.dec_layers, config.memory_size, config.dec_hidden, config.cell
        )
        self.decoder = Decoder(
            tgt_emb,
            config.dec_hidden,
            config.dec_layers,
            config.dropout,
            memory_size=config.memory_size,
            cell=config.cell,
            input_feed=config.input_feed,
            tie_embeddings=config.tie_target_embeddings,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-0.1, 0.1) initialisation, the usual choice for attention RNNs; pad rows zero."""
        for param in self.parameters():
            nn.init.uniform_(param, -0.1, 0.1)
        with torch.no_grad():
            self.encoder.embedding.weight[PAD_ID].zero_()
            self.decoder.embedding.weight[PAD_ID].zero_()

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> DecoderState:
        """Source ids (B, S) and lengths (B,) -> the decoder's start state."""
        memory, (final_h, final_c) = self.encoder(src, lengths)
        mask = torch.arange(src.size(1), device=src.device).unsqueeze(0) < lengths.to(src.device).unsqueeze(1)
        hidden, cell = self.bridge(final_h, final_c)
        return self.decoder.init_state(memory, mask, hidden, cell)

    def step(self, state: DecoderState, prev_tokens: torch.Tensor) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One decoder step shared by every search: see `Decoder.step`."""
        return self.decoder.step(state, prev_tokens)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V) for target inputs (B, T) that start with bos."""
        logits, _ = self.decoder(self.encode(src, lengths), tgt_in)
        return logits


def build_model(config: ModelConfig) -> Seq2Seq:
    """The one place a model is built from its configuration."""
    return Seq2Seq(config)

"""Recurrent decoder with Luong dot attention and input feeding, and its per-batch state.

At step t, with target embedding y_t and the previous attentional vector h~_{t-1}:

    h_t  = RNN([y_t; h~_{t-1}], state)      (input feeding; RNN(y_t, state) without it)
    a_t  = softmax(memory . h_t)            (masked on source padding)
    c_t  = sum_i a_t,i memory_i
    h~_t = tanh(W_c [c_t; h_t])
    p(y_{t+1}) = softmax(W_s h~_t)

The module holds weights only; everything per batch lives in `DecoderState`, so one model
serves concurrent batches and search can reorder or drop rows by selecting them.
Shapes: B batch, S source length, T target length, H decoder hidden, V target vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from nmt.attention import GridMemory, dot_attention, exact_dot_attention
from nmt.encoder import InputRange, column_bounds
from nmt.layers import StepLSTM, tanh_for
from nmt.shortlist import OutputVocab, exact_log_softmax


@dataclass(frozen=True)
class DecoderState:
    """Recurrent state (L, N, H) and input-feeding vector (N, H) per row; memory (B, S, H) and mask per sentence.

    A row is a sentence, or one of its `beams` beams: rows b * beams ... b * beams + beams - 1
    belong to sentence b, and share its memory, so beam search never copies the encoder
    output. `grid` is the memory on the integer grid of exact attention, present at inference,
    where `memory` is then empty (B, 0, H).
    """

    hidden: torch.Tensor
    cell: torch.Tensor | None
    feed: torch.Tensor | None
    memory: torch.Tensor
    mask: torch.Tensor
    grid: GridMemory | None = None
    beams: int = 1
    vocab: OutputVocab | None = None  # each sentence's output shortlist; None: the whole vocabulary

    @property
    def batch_size(self) -> int:
        """Number of rows (sentences, or sentences x beams)."""
        return self.hidden.size(1)

    def expand_beams(self, beams: int) -> DecoderState:
        """Each sentence's row repeated `beams` times (for beam search); the memory is not copied."""
        if self.beams != 1:
            raise ValueError("expand_beams needs one row per sentence")
        rows = torch.arange(self.batch_size, device=self.hidden.device).repeat_interleave(beams)
        return replace(self.reorder_beams(rows), beams=beams)

    def select(self, index: torch.Tensor) -> DecoderState:
        """Rows `index` (1-D long tensor) of the state: reorders beams or drops finished sentences.

        With several beams, `index` lists `beams` rows for each sentence kept, all of that sentence.
        """
        sentences = index if self.beams == 1 else index.view(-1, self.beams)[:, 0] // self.beams
        return replace(
            self.reorder_beams(index),
            memory=self.memory.index_select(0, sentences),
            mask=self.mask.index_select(0, sentences),
            grid=None if self.grid is None else self.grid.select(sentences),
            vocab=None if self.vocab is None else self.vocab.select(sentences),
        )

    def merge(self, other: DecoderState) -> DecoderState:
        """This state's rows, then `other`'s (same beams): sentences joining a running search.

        Memories are padded to the longer source (masked; exact attention ignores padding).
        """
        if self.beams != other.beams or (self.grid is None) != (other.grid is None):
            raise ValueError("merge needs states with the same beams, both at inference or both in training")
        width = max(self.mask.size(1), other.mask.size(1))

        def pad(t: torch.Tensor) -> torch.Tensor:  # (B, S, ...) -> (B, width, ...)
            if t.size(1) in (0, width):
                return t
            return torch.nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, width - t.size(1)))

        def cat(a: torch.Tensor | None, b: torch.Tensor | None, dim: int) -> torch.Tensor | None:
            return None if a is None or b is None else torch.cat([a, b], dim=dim)

        grid = None
        if self.grid is not None and other.grid is not None:
            grid = GridMemory(torch.cat([pad(self.grid.values), pad(other.grid.values)]),
                              torch.cat([self.grid.scale, other.grid.scale]))  # fmt: skip
        vocab = None
        if self.vocab is not None and other.vocab is not None:
            vocab = self.vocab.merge(other.vocab)
        elif (self.vocab is None) != (other.vocab is None):
            raise ValueError("merge needs both states with shortlists or both without")
        return DecoderState(
            hidden=torch.cat([self.hidden, other.hidden], dim=1),
            cell=cat(self.cell, other.cell, 1),
            feed=cat(self.feed, other.feed, 0),
            memory=torch.cat([pad(self.memory), pad(other.memory)]),
            mask=torch.cat([pad(self.mask), pad(other.mask)]),
            grid=grid,
            beams=self.beams,
            vocab=vocab,
        )

    def narrow(self, width: int) -> DecoderState:
        """The memory cut to its first `width` source positions: padding no sentence still needs
        (the longest one went), so attention stops paying for it."""
        if width >= self.mask.size(1):
            return self
        grid = None if self.grid is None else GridMemory(self.grid.values[:, :width].contiguous(), self.grid.scale)
        return replace(self, memory=self.memory[:, :width], mask=self.mask[:, :width].contiguous(), grid=grid)

    def reorder_beams(self, index: torch.Tensor) -> DecoderState:
        """Rows `index` when rows only move among the beams of one sentence: the memory stays as it is."""
        return replace(
            self,
            hidden=self.hidden.index_select(1, index),
            cell=None if self.cell is None else self.cell.index_select(1, index),
            feed=None if self.feed is None else self.feed.index_select(0, index),
        )


class Decoder(nn.Module):
    """Multi-layer LSTM (or GRU) decoder with dot attention, input feeding and a generator."""

    def __init__(
        self,
        embedding: nn.Embedding,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        memory_size: int,
        cell: str = "lstm",
        input_feed: bool = True,
        tie_embeddings: bool = False,
    ) -> None:
        super().__init__()
        emb_size = embedding.embedding_dim
        self.embedding = embedding
        self.input_feed = input_feed
        self.hidden_size = hidden_size
        self.dropout = nn.Dropout(dropout)
        rnn_class = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_class(
            emb_size + (hidden_size if input_feed else 0),
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        # The dot score needs memory and queries of one width: project the memory once if not.
        self.memory_proj = nn.Linear(memory_size, hidden_size, bias=False) if memory_size != hidden_size else None
        self.combine = nn.Linear(2 * hidden_size, hidden_size, bias=False)
        # Tying needs the generator input to be emb_size wide: project h~ down when it is not.
        self.out_proj = (
            nn.Linear(hidden_size, emb_size, bias=False) if tie_embeddings and emb_size != hidden_size else None
        )
        self.generator = nn.Linear(emb_size if tie_embeddings else hidden_size, embedding.num_embeddings)
        if tie_embeddings:
            self.generator.weight = embedding.weight

    def init_state(
        self,
        memory: torch.Tensor,
        mask: torch.Tensor,
        hidden: torch.Tensor,
        cell: torch.Tensor | None,
    ) -> DecoderState:
        """Start state from encoder outputs (B, S, M), their mask and initial (L, B, H) states.

        Outside training the state carries the memory's grid, and attention is exact.
        """
        if self.memory_proj is not None:
            memory = self.memory_proj(memory)
        feed = memory.new_zeros(memory.size(0), self.hidden_size) if self.input_feed else None
        if self.training:
            return DecoderState(hidden=hidden, cell=cell, feed=feed, memory=memory, mask=mask)
        # exact attention reads only the grid: an empty memory keeps dropping finished sentences cheap
        grid = GridMemory.of(memory)
        return DecoderState(hidden=hidden, cell=cell, feed=feed, memory=memory[:, :0], mask=mask, grid=grid)

    def input_ranges(self) -> dict[str, InputRange]:
        """What each layer's inputs can hold, for precisions that quantise them (see `nmt.precision`).

        LSTM outputs, h~ and attention over them lie in [-1, 1]; embeddings within their
        table's columns; a projected memory within its weights' row sums; the generator's
        input, when a projection of h~, has no fixed range.
        """
        unit = torch.ones(self.hidden_size)
        emb_bounds = column_bounds(self.embedding)
        rnn_bounds = torch.cat([emb_bounds, unit]) if self.input_feed else emb_bounds
        memory_bounds = unit
        ranges = {"rnn": InputRange(rnn_bounds, tokens=self.embedding)}
        if self.memory_proj is not None:
            memory_bounds = self.memory_proj.weight.detach().abs().sum(dim=1).float()
            ranges["memory_proj"] = InputRange(torch.ones(self.memory_proj.in_features))
        ranges["combine"] = InputRange(torch.cat([memory_bounds, unit]))
        if self.out_proj is not None:
            ranges["out_proj"] = InputRange(unit)
        ranges["generator"] = InputRange(None if self.out_proj is not None else unit)
        return ranges

    def _run(self, state: DecoderState, tokens: torch.Tensor) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """Core recurrence over input ids (B, T) -> h~ (B, T, H), state, attn (B, T, S)."""
        rnn_state = state.hidden if state.cell is None else (state.hidden, state.cell)
        # an inference LSTM with a token table looks up the embedding's share of its first product
        tabled = isinstance(self.rnn, StepLSTM) and self.rnn.token_gates is not None
        emb = None if tabled else self.dropout(self.embedding(tokens))
        if self.input_feed:
            assert state.feed is not None
            outputs, tildes, attns = [], [], []
            feed = state.feed
            for t in range(tokens.size(1)):
                if emb is None:
                    out, rnn_state = self.rnn(feed.unsqueeze(1), rnn_state, tokens[:, t : t + 1])
                else:
                    out, rnn_state = self.rnn(torch.cat([emb[:, t], feed], dim=-1).unsqueeze(1), rnn_state)
                tilde, attn = self._attend(out, state)
                feed = tilde.squeeze(1)
                outputs.append(out)
                tildes.append(tilde)
                attns.append(attn)
            tilde, attn = torch.cat(tildes, dim=1), torch.cat(attns, dim=1)
        else:
            feed = None
            if emb is None:
                out, rnn_state = self.rnn(state.hidden.new_empty(*tokens.shape, 0), rnn_state, tokens)
            else:
                out, rnn_state = self.rnn(emb, rnn_state)
            tilde, attn = self._attend(out, state)
        hidden, cell = rnn_state if isinstance(rnn_state, tuple) else (rnn_state, None)
        new_state = replace(state, hidden=hidden, cell=cell, feed=feed)
        return tilde, new_state, attn

    def _attend(self, out: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, torch.Tensor]:
        rows, steps = out.shape[:2]
        query = out.reshape(state.mask.size(0), -1, out.size(-1))  # the beams of a sentence attend together
        if state.grid is not None and not self.training:
            context, attn = exact_dot_attention(query, state.grid, state.mask)
        else:
            context, attn = dot_attention(query, state.memory, state.mask)
        context, attn = context.view(rows, steps, -1), attn.view(rows, steps, -1)
        tilde = self.dropout(tanh_for(self.combine(torch.cat([context, out], dim=-1)), self.training))
        return tilde, attn

    def logits(self, tilde: torch.Tensor) -> torch.Tensor:
        """Attentional vectors (..., H) -> unnormalised scores over the vocabulary (..., V)."""
        return self.generator(self._features(tilde))

    def _features(self, tilde: torch.Tensor) -> torch.Tensor:
        return tilde if self.out_proj is None else self.out_proj(tilde)

    def step(self, state: DecoderState, prev_tokens: torch.Tensor) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One step: previous tokens (B,) -> log-probs (B, V) in fp32, new state, attention (B, S).

        With a shortlist in the state, log-probs are over each row's list (B, L): `state.vocab.row_ids`.
        """
        tilde, new_state, attn = self._run(state, prev_tokens.unsqueeze(1))
        if state.vocab is None:
            log_probs = torch.log_softmax(self.logits(tilde.squeeze(1)).float(), dim=-1)
        else:
            log_probs = exact_log_softmax(state.vocab.logits(self._features(tilde.squeeze(1)), state.beams))
        return log_probs, new_state, attn.squeeze(1)

    def forward(self, state: DecoderState, tgt_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing over target inputs (B, T) -> logits (B, T, V), attention (B, T, S)."""
        tilde, _, attn = self._run(state, tgt_in)
        return self.logits(tilde), attn

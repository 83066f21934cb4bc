"""Batched search over a step function: greedy decoding (beam search builds on the same pieces).

A step function maps (state, previous tokens (B,)) to (log-probs (B, V), state, attention
(B, S)). All rows advance together as one batch; a row that finishes leaves the batch, so
each step costs only what is still being decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from nmt.decoder import DecoderState

StepFn = Callable[[DecoderState, torch.Tensor], tuple[torch.Tensor, DecoderState, torch.Tensor]]


@dataclass(frozen=True)
class Hypothesis:
    """One output: token ids (no bos/eos), total log-probability, attention (T, S) if kept."""

    tokens: list[int]
    score: float
    attention: torch.Tensor | None = None


def greedy_search(
    step: StepFn,
    state: DecoderState,
    max_lengths: torch.Tensor,
    bos: int,
    eos: int,
    min_length: int = 0,
    keep_attention: bool = False,
) -> list[Hypothesis]:
    """Pick the most probable token at each step for every row; `max_lengths` (B,) caps each row."""
    batch = state.batch_size
    device = state.memory.device
    active = torch.arange(batch, device=device)
    prev = torch.full((batch,), bos, dtype=torch.long, device=device)
    limits = max_lengths.to(device)
    tokens: list[list[int]] = [[] for _ in range(batch)]
    scores = [0.0] * batch
    attentions: list[list[torch.Tensor]] = [[] for _ in range(batch)]
    t = 0
    while active.numel() > 0:
        log_probs, state, attn = step(state, prev)
        if t < min_length:
            log_probs[:, eos] = float("-inf")
        best, prev = log_probs.max(dim=-1)
        t += 1
        done = (prev == eos) | (limits[active] <= t)
        for row, tok, sc in zip(active.tolist(), prev.tolist(), best.tolist(), strict=True):
            scores[row] += sc
            if tok != eos:
                tokens[row].append(tok)
        if keep_attention:
            for i, row in enumerate(active.tolist()):
                attentions[row].append(attn[i].float().cpu())
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            state, prev, active = state.select(keep), prev[keep], active[keep]
    return [
        Hypothesis(
            tokens=tokens[i],
            score=scores[i],
            attention=torch.stack(attentions[i]) if keep_attention and attentions[i] else None,
        )
        for i in range(batch)
    ]

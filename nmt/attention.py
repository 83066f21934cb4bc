"""Luong global attention with the dot-product score, masked on source padding.

    score(h_t, m_i) = m_i . h_t          a_t = softmax(score) over non-padding i
    c_t = sum_i a_t,i m_i

Shapes: B batch, T query steps, S source length, H width of queries and memory.
"""

from __future__ import annotations

import torch


def dot_attention(query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attend queries (B, T, H) over memory (B, S, H); mask (B, S) is True on real tokens.

    Returns the context (B, T, H) and the weights (B, T, S), exactly 0 on padding.
    """
    scores = torch.bmm(query, memory.transpose(1, 2))
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return torch.bmm(weights, memory), weights

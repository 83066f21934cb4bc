"""Length normalisation and n-gram repeat blocking: small pure functions used by search.

Length penalties divide a hypothesis's total log-probability by lp(length):
    none:     lp = 1
    average:  lp = length                          (fairseq's default, lenpen=1)
    gnmt:     lp = ((5 + length) / 6) ** alpha     (Wu et al. 2016; Marian/OpenNMT "wu")
"""

from __future__ import annotations

from typing import Literal

import torch

LengthPenalty = Literal["none", "average", "gnmt"]


def length_penalty(length: int, kind: LengthPenalty, alpha: float = 0.6) -> float:
    """Divisor of a total log-probability for a hypothesis of `length` tokens (eos counted)."""
    if kind == "average":
        return float(max(length, 1))
    if kind == "gnmt":
        return ((5.0 + length) / 6.0) ** alpha
    return 1.0


def normalized_score(log_prob: float, length: int, kind: LengthPenalty, alpha: float = 0.6) -> float:
    """Score used to rank finished hypotheses of different lengths."""
    return log_prob / length_penalty(length, kind, alpha)


def block_repeated_ngrams(
    log_probs: torch.Tensor,
    history: torch.Tensor,
    n: int,
    ids: torch.Tensor | None = None,
    produced: torch.Tensor | None = None,
) -> None:
    """Set to -inf, in place, every token that would repeat an n-gram already in a row's history.

    log_probs (N, V); history (N, t) tokens generated so far (bos excluded); `ids` (N, V): the
    token of each column when the columns are a shortlist, not the vocabulary; `produced` (N,): how
    many of a row's last history entries are its own (rows that joined later are right-aligned).
    """
    if n <= 0 or history.size(1) < n - 1:
        return
    rows = history.tolist()
    lengths = [len(r) for r in rows] if produced is None else produced.tolist()
    for i, (row, length) in enumerate(zip(rows, lengths, strict=True)):
        tokens = row[len(row) - length :]
        prefix = tuple(tokens[len(tokens) - (n - 1) :])
        banned = [tokens[j + n - 1] for j in range(len(tokens) - n + 1) if tuple(tokens[j : j + n - 1]) == prefix]
        if not banned:
            continue
        if ids is None:
            log_probs[i, banned] = float("-inf")
        else:
            log_probs[i].masked_fill_(torch.isin(ids[i], torch.tensor(banned, device=ids.device)), float("-inf"))

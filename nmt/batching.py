"""Turning id sequences into padded tensors, and grouping them by a token budget.

Used by inference (`Translator`) and by training, so both see sources in one layout:
subword ids followed by eos, right-padded with the pad id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID

log = logging.getLogger(__name__)
Item = TypeVar("Item")
Answer = TypeVar("Answer")

# Padded source subwords per inference batch (nmt-translate, Translator, the service), by device
# type. A GPU is host-bound at small batches: on an H100, beam 5 ran 21k target tokens/s at 4,096
# and 88-140k at 262,144 (8.3 GiB at its peak for the shipped model); see docs/benchmarks.md.
BATCH_TOKENS = {"cpu": 4096, "cuda": 262144}


def default_batch_tokens(device: torch.device | str) -> int:
    """The inference token budget for `device`: what fills a GPU would only spill a CPU's caches."""
    return BATCH_TOKENS.get(torch.device(device).type, BATCH_TOKENS["cpu"])


def source_ids(ids: Sequence[int]) -> list[int]:
    """Encoder input for subword ids: the ids then eos."""
    return [*ids, EOS_ID]


def target_io(ids: Sequence[int]) -> tuple[list[int], list[int]]:
    """Decoder input (bos + ids) and output (ids + eos) for teacher forcing."""
    return [BOS_ID, *ids], [*ids, EOS_ID]


def fits(sentences: int, longest: int, batch_tokens: int) -> bool:
    """The one batching rule: a batch of `sentences` sources padded to `longest` subwords stays within the budget."""
    return sentences * longest <= batch_tokens


def longest_first(lengths: Sequence[int]) -> list[int]:
    """Indices by length, longest first (ties in input order): the order sort-and-batch takes sources in."""
    return sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)


def token_batches(lengths: Sequence[int], batch_tokens: int, order: Sequence[int] | None = None) -> list[list[int]]:
    """Group indices, longest first (or in `order`), so rows x longest stays within the budget.

    A single sequence longer than the budget still gets a batch of its own.
    """
    if order is None:
        order = longest_first(lengths)
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        size = max(lengths[index], 1)
        if current and not fits(len(current) + 1, max(longest, size), batch_tokens):
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, size)
    if current:
        batches.append(current)
    return batches


def pad_batch(seqs: Sequence[Sequence[int]], device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into (B, S) with their lengths (B,); an empty list gets one eos."""
    seqs = [list(s) if s else [EOS_ID] for s in seqs]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max())), PAD_ID, dtype=torch.long)
    for i, seq in enumerate(seqs):
        out[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out.to(device), lengths.to(device)


def halving_on_oom(run: Callable[[list[Item]], list[Answer]], items: list[Item]) -> list[Answer]:
    """`run(items)`; where the device runs out of memory, the same on each half in turn, down to single items.

    Answers do not depend on how items are batched (batch invariance), so a smaller batch only costs time.
    """
    try:
        return run(items)
    except torch.cuda.OutOfMemoryError:
        if len(items) == 1:
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        half = len(items) // 2
        log.warning("out of memory on %d sentences: retrying in two halves", len(items))
        return halving_on_oom(run, items[:half]) + halving_on_oom(run, items[half:])

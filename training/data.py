"""Parallel training data: reading, filtering with counts, encoding, and seeded token batches.

Batches are built per epoch from the seed and the epoch number alone, so a resumed run can
skip to its data position exactly, and every distributed process sees the same list and
takes its own share.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from nmt.batching import token_batches
from nmt.errors import InputError
from nmt.fileio import read_lines
from nmt.placeholders import protect, protect_like
from nmt.tokenizer import Tokenizer

log = logging.getLogger(__name__)


class DataError(InputError):
    """Training data that cannot be used: missing, unreadable, or not parallel."""


@dataclass
class FilterStats:
    """What happened to each input pair; nothing is dropped without being counted."""

    read: int = 0
    kept: int = 0
    empty: int = 0
    too_long: int = 0
    bad_ratio: int = 0
    placeholders: int = 0

    def summary(self, name: str) -> str:
        """One log line."""
        return (
            f"{name}: {self.read} pairs read, {self.kept} kept; skipped {self.empty} empty, "
            f"{self.too_long} too long, {self.bad_ratio} over the length ratio, "
            f"{self.placeholders} with placeholders that differ between the sides"
        )


@dataclass
class ParallelData:
    """Encoded pairs (subword ids without specials) and the filter counts."""

    src: list[list[int]]
    tgt: list[list[int]]
    stats: FilterStats = field(default_factory=FilterStats)

    def __len__(self) -> int:
        return len(self.src)


def read_parallel(src_path: Path, tgt_path: Path) -> tuple[list[str], list[str]]:
    """Both sides of a parallel corpus; different line counts are an error naming both files."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: files must be parallel")
    return src, tgt


def encode_parallel(
    src_lines: list[str],
    tgt_lines: list[str],
    tokenizer: Tokenizer,
    max_len: int,
    max_ratio: float,
) -> ParallelData:
    """Encode and filter pairs: empty, longer than `max_len` subwords, or ratio above `max_ratio`.

    Placeholders are masked as the Translator masks them (`nmt.placeholders`), the target numbered
    as its source; pairs whose sides hold different placeholders are dropped."""
    stats = FilterStats(read=len(src_lines))
    pairs = [(s.strip(), t.strip()) for s, t in zip(src_lines, tgt_lines, strict=True)]
    nonempty = [(s, t) for s, t in pairs if s and t]
    stats.empty = len(pairs) - len(nonempty)
    masked = []
    for src_text, tgt_text in nonempty:
        source = protect(src_text)
        target = protect_like(tgt_text, source)
        if target is None:
            stats.placeholders += 1
        else:
            masked.append((source.text, target))
    nonempty = masked
    src_ids = tokenizer.encode_src([s for s, _ in nonempty])
    tgt_ids = tokenizer.encode_tgt([t for _, t in nonempty])
    data = ParallelData([], [], stats)
    for s, t in zip(src_ids, tgt_ids, strict=True):
        if not s or not t:
            stats.empty += 1
        elif len(s) > max_len or len(t) > max_len:
            stats.too_long += 1
        elif max(len(s), len(t)) > max_ratio * min(len(s), len(t)):
            stats.bad_ratio += 1
        else:
            data.src.append(s)
            data.tgt.append(t)
    stats.kept = len(data.src)
    return data


def epoch_batches(data: ParallelData, batch_tokens: int, seed: int, epoch: int) -> list[list[int]]:
    """Seeded batches of example indices for one epoch: length-bucketed, in shuffled order.

    Examples are shuffled, then sorted by length (the shuffle breaks ties), grouped by the
    padded token budget, and the batch order shuffled; so batches hold similar lengths and
    differ from epoch to epoch.
    """
    rng = random.Random(seed * 100_003 + epoch)
    lengths = [max(len(s), len(t)) + 1 for s, t in zip(data.src, data.tgt, strict=True)]
    order = list(range(len(lengths)))
    rng.shuffle(order)
    order.sort(key=lambda i: lengths[i])
    batches = token_batches(lengths, batch_tokens, order=order)
    rng.shuffle(batches)
    return batches


def shard_batches(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """This process's share of an epoch: equal counts for every process (the tail is dropped)."""
    usable = len(batches) - len(batches) % world_size
    return batches[rank:usable:world_size]

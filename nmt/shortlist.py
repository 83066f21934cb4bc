"""Vocabulary shortlists: each sentence is searched over the target pieces it can plausibly produce.

As Marian's lexical shortlists: the `frequent` most common target pieces, plus for each
source piece its likeliest translations (`candidates`, built from the training data by
`training/shortlist.py` and stored in the model directory as `shortlist.safetensors`).
Unlike Marian's, a list is made from its sentence alone and softmax runs over that list
alone, so a sentence's translation does not depend on its batch:

- a batch computes the generator once over the union of its sentences' lists, and each row
  then takes its own sentence's columns, in its list's order (eos first, then by id);
- the normaliser sums exponentials on an integer grid in float64 (as exact attention does),
  so it does not depend on how far a list is padded to the batch's longest.

Generator, softmax, top-k and the beam bookkeeping then cost a list's length (a few
hundred) instead of the vocabulary (8,000) per row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn

from nmt.errors import ModelLoadError
from nmt.fileio import atomic_write_bytes
from nmt.quantize import Int8Linear
from nmt.tokenizer import EOS_ID, PAD_ID

SHORTLIST_FILE = "shortlist.safetensors"
ShortlistUse = Literal["auto", "on", "off"]  # auto: on CPUs, where it pays; GPUs multiply the whole vocabulary faster
_EXP_BITS = 40  # exp(x - max) in [0, 1] on a grid of 2**-40: exact float64 sums for lists below 2**12


@dataclass(frozen=True)
class OutputVocab:
    """A batch's output lists: token ids (B, L) per sentence (eos first, PAD_ID padding) and the shared generator.

    `columns` (B, L): where each id sits in `union`, the ids the generator computes for the whole batch.
    """

    ids: torch.Tensor
    columns: torch.Tensor
    generator: nn.Module
    source: nn.Module  # the whole output layer, which `generator` restricts to the union

    @classmethod
    def of(cls, ids: torch.Tensor, source: nn.Module, whole: bool = False) -> OutputVocab:
        """Lists `ids` (B, L), PAD_ID-padded, and the output layer over their union, or `whole`.

        Restricting the layer costs a re-pack of its weights (~1-3 ms on 2 cores) and saves
        work at every step: worth it for a batch searched to its end, not for a running search
        that sentences join every few steps. A row's values are the same bits either way.
        """
        if whole:
            return cls(ids, ids, source, source)
        union, columns = torch.unique(ids, return_inverse=True)
        return cls(ids, columns, _rows(source, union), source)

    @property
    def whole(self) -> bool:
        """Whether the generator is the whole output layer (columns are token ids)."""
        return self.generator is self.source

    def merge(self, other: OutputVocab) -> OutputVocab:
        """These lists, then `other`'s, under a generator as this one is (see `of`): rows' values do not change."""
        width = max(self.ids.size(1), other.ids.size(1))
        pad = [torch.nn.functional.pad(v.ids, (0, width - v.ids.size(1)), value=PAD_ID) for v in (self, other)]
        return OutputVocab.of(torch.cat(pad), self.source, self.whole)

    def select(self, sentences: torch.Tensor) -> OutputVocab:
        """The lists of sentences `sentences` (1-D long tensor); the generator stays."""
        return OutputVocab(
            self.ids.index_select(0, sentences), self.columns.index_select(0, sentences), self.generator, self.source
        )

    def logits(self, features: torch.Tensor, beams: int) -> torch.Tensor:
        """Generator inputs (B * beams, E) -> logits (B * beams, L) over each row's own list, -inf on padding."""
        sentences, width = self.columns.shape
        if isinstance(self.generator, Int8Linear):
            rows = self.generator.forward_at(features, self.columns).view(sentences, beams, width)
        else:
            scores = self.generator(features).float()
            rows = scores.view(sentences, beams, -1).gather(2, self.columns.unsqueeze(1).expand(-1, beams, -1))
        rows = rows.masked_fill_((self.ids == PAD_ID).unsqueeze(1), float("-inf"))
        return rows.view(sentences * beams, width)

    def row_ids(self, beams: int) -> torch.Tensor:
        """Token ids (B * beams, L) of every row's list."""
        return self.ids.repeat_interleave(beams, dim=0)


def uses_shortlist(choice: ShortlistUse, device: torch.device) -> bool:
    """Whether to search shortlists: `auto` on CPUs (2x there), not on GPUs (the lists cost more host time
    than the generator they save: docs/benchmarks.md)."""
    return choice == "on" or (choice == "auto" and device.type == "cpu")


def exact_log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log_softmax over the last dimension whose value does not depend on the row's padding (-inf) or the kernel."""
    peak = logits.amax(dim=-1, keepdim=True)
    exps = torch.exp((logits - peak).double()).mul_(2.0**_EXP_BITS).round_()  # out of place: see nmt/layers.py
    log_total = torch.log(exps.sum(dim=-1, keepdim=True)) - _EXP_BITS * math.log(2.0)
    return logits - (peak + log_total.float())


def _rows(layer: nn.Module, ids: torch.Tensor) -> nn.Module:
    """The output layer restricted to output rows `ids`, in its own precision."""
    if isinstance(layer, Int8Linear):
        return layer.select_outputs(ids)
    if isinstance(layer, nn.Linear):
        sub = nn.Linear(layer.in_features, ids.numel(), bias=layer.bias is not None)
        sub = sub.to(device=layer.weight.device, dtype=layer.weight.dtype)
        with torch.no_grad():
            sub.weight.copy_(layer.weight.index_select(0, ids))
            if layer.bias is not None and sub.bias is not None:
                sub.bias.copy_(layer.bias.index_select(0, ids))
        return sub
    raise TypeError(f"no shortlist for an output layer of type {type(layer).__name__}")


class Shortlist:
    """Frequent target ids (F,) and per source id its candidate target ids (V_src, C), -1 where fewer."""

    def __init__(self, frequent: torch.Tensor, candidates: torch.Tensor, copy_source: bool = False) -> None:
        self.frequent = frequent.long()
        self.candidates = candidates.long()
        self.copy_source = copy_source  # a joint vocabulary: a source piece may be output as it is (names, numbers)
        self._common = set(self.frequent.tolist()) - {-1, EOS_ID, PAD_ID}  # in every list, after eos
        self.shortest = 1 + len(self._common)  # the fewest ids a list holds (an empty source's: eos, the frequent)

    def ids_for(self, source: Sequence[int]) -> list[int]:
        """One sentence's list: eos, then the frequent ids and its source ids' candidates, by id."""
        known = [s for s in source if 0 <= s < self.candidates.size(0)]
        found = set(self._common)
        if known:
            found.update(self.candidates[torch.tensor(known)].flatten().tolist())
        if self.copy_source:
            found.update(known)
        found.discard(-1)
        found.discard(EOS_ID)
        found.discard(PAD_ID)
        return [EOS_ID, *sorted(found)]

    def vocab(
        self, sources: Sequence[Sequence[int]], generator: nn.Module, device: torch.device, whole: bool = False
    ) -> OutputVocab:
        """The batch's lists for `sources` (subword ids, eos excluded), with the generator over their union
        or, `whole`, the whole generator (see `OutputVocab.of`)."""
        lists = [self.ids_for(s) for s in sources]
        width = max(len(ids) for ids in lists)
        ids = torch.full((len(lists), width), PAD_ID, dtype=torch.long)
        for i, row in enumerate(lists):
            ids[i, : len(row)] = torch.tensor(row)
        return OutputVocab.of(ids.to(device), generator, whole)

    def save(self, path: Path) -> None:
        """Write as safetensors (int16: vocabularies stay below 32,768 pieces)."""
        tensors = {"frequent": self.frequent.to(torch.int16), "candidates": self.candidates.to(torch.int16)}
        metadata = {"copy_source": str(self.copy_source).lower()}
        atomic_write_bytes(path, save(tensors, metadata))

    @classmethod
    def load(cls, path: Path) -> Shortlist:
        """Read a shortlist written by `save`."""
        try:
            with safe_open(path, "pt") as f:
                copy_source = (f.metadata() or {}).get("copy_source") == "true"
            tensors = load_file(path)
            return cls(tensors["frequent"], tensors["candidates"], copy_source)
        except (SafetensorError, KeyError, OSError) as err:
            raise ModelLoadError(f"{path} is not a valid shortlist: {err}") from err

"""Iteration-level scheduling: one running beam search that sources join, under the one batching rule, at any step.

`Scheduler` is what a worker drives: `room` says whether a source of some length fits beside
those running (`nmt.batching.fits`: running sentences x longest source within the budget),
`admit` encodes and adds sources, `step` advances every running sentence by one token and
returns those that finished, `drop` takes sentences out at once (a request expired or its
client left). Results do not depend on when a sentence joined or what ran beside it
(`nmt.search.BeamSearch`).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from typing import Generic, TypeVar

import torch

from nmt.batching import fits
from nmt.search import BeamSearch, Hypothesis, SearchOptions
from nmt.tokenizer import BOS_ID, EOS_ID
from nmt.translator import Translator

Key = TypeVar("Key", bound=Hashable)


class Scheduler(Generic[Key]):
    """A running search of one translator and one set of search options."""

    def __init__(self, translator: Translator, options: SearchOptions, batch_tokens: int) -> None:
        self.translator, self.options, self.batch_tokens = translator, options, batch_tokens
        self.search: BeamSearch[Key] = BeamSearch(translator.model.step, BOS_ID, EOS_ID, options)
        self.lengths: dict[Key, int] = {}  # running sentence -> its padded source length (ids + eos)

    @property
    def running(self) -> int:
        """Sentences in the search."""
        return len(self.lengths)

    def room(self, source: Sequence[int], admitting: Sequence[Sequence[int]] = ()) -> bool:
        """Whether `source` fits beside the running sentences and those about to be admitted with it."""
        lengths = [len(s) + 1 for s in (*admitting, source)]
        longest = max(max(self.lengths.values(), default=0), *lengths)
        return fits(self.running + len(lengths), longest, self.batch_tokens)

    @torch.inference_mode()
    def admit(self, items: Sequence[tuple[Key, Sequence[int]]]) -> list[tuple[Key, list[Hypothesis]]]:
        """Encode and add sources (subword ids); empty ones are answered at once (returned)."""
        empty = [(key, [Hypothesis(tokens=[], score=0.0, log_prob=0.0)]) for key, source in items if not source]
        items = [(key, source) for key, source in items if source]
        if items:
            sources = [source for _, source in items]
            rows = list(range(len(sources)))
            state = self.translator.start_state(sources, rows, self.options)
            self.search.admit(state, self.translator.output_caps(sources, rows), [key for key, _ in items])
            self.lengths.update((key, len(source) + 1) for key, source in items)
        return empty

    @torch.inference_mode()
    def step(self) -> list[tuple[Key, list[Hypothesis]]]:
        """One decoder step for every running sentence; those that finished, with their n-best."""
        finished = self.search.step()
        for key, _ in finished:
            del self.lengths[key]
        return finished

    def drop(self, keys: Collection[Key]) -> None:
        """Take sentences out now; they are never answered."""
        self.search.drop(keys)
        for key in keys:
            self.lengths.pop(key, None)

"""Iteration-level scheduling: one running beam search that sources join, under the one batching rule, at any step.

`Scheduler` is what a worker drives: `room` says whether more sources fit beside those running
(`nmt.batching.fits`: running sentences x longest source within the budget), `admit` encodes
and adds sources, `step` advances every running sentence by one token and returns those that
finished, `drop` takes sentences out at once (a request expired or its client left). Results
do not depend on when a sentence joined or what ran beside it (`nmt.search.BeamSearch`).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Sequence
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
        self.longest = 0  # the longest padded source running
        self.steps = 0  # decoder steps taken so far

    @property
    def running(self) -> int:
        """Sentences in the search."""
        return len(self.lengths)

    def room(self, sources: int, longest: int) -> bool:
        """Whether `sources` more sources, the longest of `longest` subwords, fit beside the running ones.

        An idle search always takes one source, however long (as `token_batches` gives it a batch).
        """
        if not self.lengths and sources == 1:
            return True
        return fits(self.running + sources, max(self.longest, longest + 1), self.batch_tokens)

    @torch.inference_mode()
    def admit(self, items: Sequence[tuple[Key, Sequence[int]]]) -> list[tuple[Key, list[Hypothesis]]]:
        """Encode and add sources (subword ids); empty ones are answered at once (returned)."""
        empty = [(key, [Hypothesis(tokens=[], score=0.0, log_prob=0.0)]) for key, source in items if not source]
        items = [(key, source) for key, source in items if source]
        if items:
            sources = [source for _, source in items]
            rows = list(range(len(sources)))
            state = self.translator.start_state(sources, rows, self.options, running=True)
            self.search.admit(state, self.translator.output_caps(sources, rows), [key for key, _ in items])
            self.lengths.update((key, len(source) + 1) for key, source in items)
            self.longest = max(self.longest, *(len(source) + 1 for source in sources))
        return empty

    @torch.inference_mode()
    def step(self) -> list[tuple[Key, list[Hypothesis]]]:
        """One decoder step for every running sentence; those that finished, with their n-best."""
        finished = self.search.step()
        self.steps += 1
        self._forget(key for key, _ in finished)
        return finished

    def drop(self, keys: Collection[Key]) -> None:
        """Take sentences out now; they are never answered."""
        if keys:
            self.search.drop(keys)
            self._forget(keys)

    def _forget(self, keys: Iterable[Key]) -> None:
        gone = [self.lengths.pop(key) for key in keys if key in self.lengths]
        if gone and max(gone) >= self.longest:
            self.longest = max(self.lengths.values(), default=0)
            self.search.narrow(self.longest)

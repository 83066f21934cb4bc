"""What the batcher works with: requests (`Job`), the searches it drives, and what it tells callers."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from nmt.search import Hypothesis, SearchOptions


class Searcher(Protocol):
    """What a request is translated with: a model's `Translator`, handed to the scheduler factory; to the
    batcher only its identity matters (it keys the running searches)."""


class Running(Protocol):
    """A running search that sentences join and leave at every step (`nmt.scheduler.Scheduler`)."""

    batch_tokens: int
    steps: int

    @property
    def running(self) -> int: ...

    def room(self, sources: int, longest: int) -> bool: ...

    def admit(self, items: Sequence[tuple[Slot, Sequence[int]]]) -> list[tuple[Slot, list[Hypothesis]]]: ...

    def step(self) -> list[tuple[Slot, list[Hypothesis]]]: ...

    def drop(self, keys: Collection[Slot]) -> None: ...


SchedulerFactory = Callable[[Searcher, SearchOptions, int], "Running"]


class Overloaded(Exception):
    """The queue is full; the client should retry later."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before its sentences were translated."""


class BatchFailed(Exception):
    """The batch holding this request failed (the cause is logged); `out_of_memory` says why."""

    def __init__(self, message: str, out_of_memory: bool = False) -> None:
        super().__init__(message)
        self.out_of_memory = out_of_memory

    @classmethod
    def of(cls, error: BaseException | None = None) -> BatchFailed:
        """What a request whose search failed with `error` (None: the worker itself failed) is told."""
        if isinstance(error, torch.cuda.OutOfMemoryError):
            return cls("out of memory on a single sentence", out_of_memory=True)
        return cls("translation failed (see the server log)")


Key = tuple[Searcher, SearchOptions]


@dataclass(eq=False)
class Job:
    """One request's sentences for one key; `results` fills in as sentences finish."""

    key: Key
    sources: Sequence[Sequence[int]]
    deadline: float
    arrived: float
    future: asyncio.Future[list[list[Hypothesis]]]
    results: list[list[Hypothesis] | None] = field(default_factory=list)
    todo: deque[int] = field(default_factory=deque)  # sentences not yet searched or admitted
    remaining: int = 0  # sentences without a result
    running: int = 0  # sentences in a running search
    express: bool = False  # runs in its key's express lane (small, and the lane pays: `Lanes.express_pays`)
    finish_step: int = 0  # the running search's step by which its admitted sentences should be done
    gone: bool = False  # nobody waits for it any more: answered, failed, expired or hung up

    @property
    def unscheduled(self) -> int:
        """Sentences waiting to be admitted."""
        return len(self.todo)


Slot = tuple[Job, int]  # one sentence of a request, as a running search knows it


@dataclass(frozen=True)
class BatchStats:
    """What one decoder step held, for metrics."""

    sentences: int
    requests: int
    source_tokens: int
    seconds: float

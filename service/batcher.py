"""Dynamic batching: the sentences of all concurrent requests share batched searches on one worker.

One `Batcher` per device runs a loop in the event loop and the searches on its own thread.
Invariants of the loop:

- A batch holds sentences of one (model, search options) key only, up to `batch_tokens`
  source tokens; it starts when the budget is full or `max_wait_s` has passed since the oldest
  waiting sentence arrived or the worker became free, whichever is later (at once when
  batching is off, which also limits a batch to one request). Counting from when the worker
  became free lets the clients answered by the last batch join the next one: without it,
  closed-loop clients split into two half-full batches that take turns.
- Batches are filled round-robin over the waiting requests, one sentence each per pass, so a
  huge request is split across batches and cannot starve small ones that arrive after it.
- Each request gets exactly its own results, in its own order (translations do not depend on
  batch-mates: the search is batch-invariant).
- At most `queue_limit` sentences wait; a request that would pass it is refused at once
  (`Overloaded`). A request that is cancelled (client gone) or past its deadline leaves the
  queue and its unscheduled sentences are never searched.
- Deadlines count from the request's arrival. The batcher learns how long searches take
  (a fixed plus a per-token time, per key: `CostModel`) and uses it twice: a request whose work cannot finish
  before its deadline behind what is already queued is refused at once (`Overloaded`, so the
  client can retry elsewhere or later) instead of taking the worker's time, and a batch stops
  growing when it could no longer finish before the earliest deadline of the requests in it.
- A failing batch fails only its own requests; on CUDA out-of-memory the batch is split in
  halves and retried. If the loop itself fails, a supervisor logs it, counts it
  (`on_crash`), and starts it again; `healthy` is false until it runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from nmt.batching import DEFAULT_BATCH_TOKENS
from nmt.search import Hypothesis, SearchOptions

log = logging.getLogger(__name__)

RunFn = Callable[[str, Sequence[Sequence[int]], SearchOptions], list[list[Hypothesis]]]


class Overloaded(Exception):
    """The queue is full; the client should retry later."""


class DeadlineExceeded(Exception):
    """The request's deadline passed before its sentences were translated."""


class BatchFailed(Exception):
    """The batch holding this request failed (the cause is logged); `out_of_memory` says why."""

    def __init__(self, message: str, out_of_memory: bool = False) -> None:
        super().__init__(message)
        self.out_of_memory = out_of_memory


@dataclass(eq=False)
class _Job:
    """One request's sentences for one key; `results` fills in as batches finish."""

    key: tuple[str, SearchOptions]
    sources: Sequence[Sequence[int]]
    deadline: float
    arrived: float
    future: asyncio.Future[list[list[Hypothesis]]]
    results: list[list[Hypothesis] | None] = field(default_factory=list)
    next_index: int = 0
    remaining: int = 0

    @property
    def unscheduled(self) -> int:
        return len(self.sources) - self.next_index


class CostModel:
    """How long a batch of n source tokens takes: seconds = fixed + per_token * n, fitted to recent batches.

    A batch's time is not proportional to its tokens: every decoder step has a fixed cost, so
    small batches cost more per token. A single rate learnt from small batches would make
    every estimate too slow, refuse work, keep batches small, and so feed itself. The fit is
    least squares over the recent batches (older ones weigh less); until batches of different
    sizes have been seen it falls back to a rate through the origin.
    """

    DECAY = 0.95  # weight of the previous batches against a new one
    MARGIN = 1.1  # batch sizing errs a little towards slower

    def __init__(self) -> None:
        self._w = self._x = self._xx = self._y = self._xy = 0.0

    def observe(self, tokens: int, seconds: float) -> None:
        """Learn from one batch that searched `tokens` source tokens in `seconds`."""
        d = self.DECAY
        x = float(tokens)
        self._w = d * self._w + 1
        self._x = d * self._x + x
        self._xx = d * self._xx + x * x
        self._y = d * self._y + seconds
        self._xy = d * self._xy + x * seconds

    def line(self) -> tuple[float, float]:
        """(fixed seconds, seconds per token); (0, 0) before the first batch."""
        if self._w == 0:
            return 0.0, 0.0
        spread = self._w * self._xx - self._x * self._x
        if spread > 1e-6 * self._w * self._xx:  # batches of different sizes: fit both terms
            per_token = (self._w * self._xy - self._x * self._y) / spread
            fixed = (self._y - per_token * self._x) / self._w
            if per_token > 0 and fixed >= 0:
                return fixed, per_token
        return 0.0, self._xy / max(self._xx, 1e-12)

    def estimate(self, tokens: int, batches: int = 1) -> float:
        """Expected seconds to search `tokens` source tokens in `batches` batches; 0 before any batch."""
        fixed, per_token = self.line()
        return batches * fixed + per_token * tokens


@dataclass(frozen=True)
class BatchStats:
    """What one batch held, for metrics."""

    sentences: int
    requests: int
    source_tokens: int
    seconds: float


class Batcher:
    """Queue plus worker loop; `submit` is the only entry point for requests."""

    def __init__(
        self,
        run: RunFn,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        max_wait_s: float = 0.005,
        queue_limit: int = 2048,
        batching: bool = True,
        on_batch: Callable[[BatchStats], None] | None = None,
        on_crash: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._run = run
        self._on_crash = on_crash
        self._costs: dict[tuple[str, SearchOptions], CostModel] = {}
        self._running = False  # the loop is running (not crashed, not restarting)
        self._in_batch: list[_Job] = []  # requests of the batch being searched
        self.batch_tokens = batch_tokens
        self.max_wait_s = max_wait_s
        self.queue_limit = queue_limit
        self.batching = batching
        self._on_batch = on_batch
        self._pending: list[_Job] = []
        self._queued = 0
        self._free_since = 0.0  # event-loop time when the last batch finished
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def queued(self) -> int:
        """Sentences waiting for a batch."""
        return self._queued

    @property
    def healthy(self) -> bool:
        """The worker loop is running and can translate now."""
        return self._running and self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the worker loop (call from the event loop that will submit)."""
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nmt-search")
        self._task = asyncio.create_task(self._supervise(), name="nmt-batcher")

    restart_delay_s = 0.1  # pause before restarting a failed loop (readiness is false meanwhile)

    async def _supervise(self) -> None:
        """Run the loop; if it fails, log and count the failure, then start it again."""
        while True:
            self._running = True
            try:
                await self._loop()
            except asyncio.CancelledError:
                self._running = False
                raise
            except Exception as err:  # a bug: keep serving, but make it visible
                self._running = False
                log.exception("the batching worker failed; restarting it")
                for job in self._in_batch:  # their batch will never report back
                    self._forget(job)
                    if not job.future.done():
                        job.future.set_exception(BatchFailed("translation failed (see the server log)"))
                self._in_batch = []
                if self._on_crash is not None:
                    self._on_crash(err)
                await asyncio.sleep(self.restart_delay_s)

    async def stop(self) -> None:
        """Stop the loop; waiting requests fail with DeadlineExceeded."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in self._pending:
            if not job.future.done():
                job.future.set_exception(DeadlineExceeded("the service is shutting down"))
        self._pending.clear()
        self._queued = 0
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(
        self,
        model_id: str,
        sources: Sequence[Sequence[int]],
        options: SearchOptions,
        timeout_s: float,
        arrived: float | None = None,
    ) -> list[list[Hypothesis]]:
        """n-best hypotheses of every source, in order; raises Overloaded, DeadlineExceeded or BatchFailed.

        The deadline is `timeout_s` after `arrived` (event-loop time the request arrived; default now).
        """
        if not sources:
            return []
        if self._wake is None:
            raise RuntimeError("Batcher.start() was not called")
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = (now if arrived is None else arrived) + timeout_s
        if now >= deadline:
            raise DeadlineExceeded(f"not translated within {timeout_s:g} s")
        if self._queued and self._queued + len(sources) > self.queue_limit:
            raise Overloaded(f"queue full ({self._queued} sentences waiting)")
        key = (model_id, options)
        work = sum(self._tokens_left(j) for j in self._pending) + sum(len(s) + 1 for s in sources)
        if now + self._cost(key).estimate(work, batches=-(-work // self.batch_tokens)) > deadline:
            raise Overloaded(f"cannot be translated within {timeout_s:g} s behind the {self._queued} sentences queued")
        job = _Job(
            key=key,
            sources=sources,
            deadline=deadline,
            arrived=now,
            future=loop.create_future(),
            results=[None] * len(sources),
            remaining=len(sources),
        )
        self._pending.append(job)
        self._queued += len(sources)
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout=deadline - now)
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"not translated within {timeout_s:g} s") from None
        finally:
            self._forget(job)

    def _cost(self, key: tuple[str, SearchOptions]) -> CostModel:
        return self._costs.setdefault(key, CostModel())

    def _forget(self, job: _Job) -> None:
        """Drop a job from the queue (done, cancelled or expired); its unscheduled sentences go with it."""
        if job in self._pending:
            self._pending.remove(job)
            self._queued -= job.unscheduled
            job.next_index = len(job.sources)

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._expire(loop.time())
            if not self._pending:
                continue
            if self.batching:
                await self._gather(loop)
            self._expire(loop.time())  # clients may have left, or deadlines passed, while gathering
            if not self._pending:
                continue
            batch = self._take(loop.time())
            if batch:
                self._in_batch = list({id(job): job for job, _ in batch}.values())
                await self._execute(batch, loop)
                self._in_batch = []
                self._free_since = loop.time()

    def _expire(self, now: float) -> None:
        for job in list(self._pending):
            if job.future.done() or now >= job.deadline:
                self._forget(job)
                if not job.future.done():
                    job.future.set_exception(DeadlineExceeded("deadline passed while queued"))

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until the head key's waiting tokens fill the budget or its oldest sentence waited enough."""
        assert self._wake is not None
        while self._pending:
            head = self._pending[0]
            waiting = sum(self._tokens_left(j) for j in self._pending if j.key == head.key)
            left = max(head.arrived, self._free_since) + self.max_wait_s - loop.time()
            if waiting >= self.batch_tokens or left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=left)
            except asyncio.TimeoutError:
                return

    @staticmethod
    def _tokens_left(job: _Job) -> int:
        return sum(len(s) + 1 for s in job.sources[job.next_index :])

    def _take(self, now: float) -> list[tuple[_Job, int]]:
        """Sentences for the next batch: round-robin over the requests that share the head's key.

        A request whose remaining work cannot finish before its deadline is refused here
        (`Overloaded`) rather than searched; the batch stops growing when it could no longer
        finish before the earliest deadline among its requests.
        """
        key = self._pending[0].key
        cost = self._cost(key)
        jobs = [j for j in self._pending if j.key == key] if self.batching else [self._pending[0]]
        for job in list(jobs):
            if job.next_index == 0 and now + cost.estimate(self._tokens_left(job)) > job.deadline:
                jobs.remove(job)
                self._forget(job)
                if not job.future.done():
                    job.future.set_exception(Overloaded("cannot be translated before its deadline at this load"))
        batch: list[tuple[_Job, int]] = []
        tokens = 0
        earliest = float("inf")
        while jobs:
            for job in list(jobs):
                size = len(job.sources[job.next_index]) + 1
                if batch and tokens + size > self.batch_tokens:
                    return batch
                if batch and now + cost.MARGIN * cost.estimate(tokens + size) > min(earliest, job.deadline):
                    return batch
                earliest = min(earliest, job.deadline)
                batch.append((job, job.next_index))
                tokens += size
                job.next_index += 1
                self._queued -= 1
                if not job.unscheduled:
                    jobs.remove(job)
                    self._pending.remove(job)
        return batch

    async def _execute(self, batch: list[tuple[_Job, int]], loop: asyncio.AbstractEventLoop) -> None:
        model_id, options = batch[0][0].key
        sources = [job.sources[i] for job, i in batch]
        started = time.perf_counter()
        try:
            found = await loop.run_in_executor(self._executor, self._run_split, model_id, sources, options)
        except Exception as err:
            oom = isinstance(err, torch.cuda.OutOfMemoryError)
            log.exception("batch of %d sentences for %s failed", len(batch), model_id)
            message = "out of memory on a single sentence" if oom else "translation failed (see the server log)"
            for job in {job for job, _ in batch}:
                self._forget(job)
                if not job.future.done():
                    job.future.set_exception(BatchFailed(message, out_of_memory=oom))
            return
        stats = BatchStats(
            len(batch), len({id(j) for j, _ in batch}), sum(len(s) + 1 for s in sources),
            time.perf_counter() - started,
        )  # fmt: skip
        self._cost((model_id, options)).observe(stats.source_tokens, stats.seconds)
        if self._on_batch is not None:
            self._on_batch(stats)
        for (job, index), hyps in zip(batch, found, strict=True):
            job.results[index] = hyps
            job.remaining -= 1
            if job.remaining == 0 and not job.future.done():
                job.future.set_result(job.results)  # type: ignore[arg-type]

    def _run_split(self, model_id: str, sources: list[Sequence[int]], options: SearchOptions) -> list[Any]:
        """Search all sources; on out-of-memory, free the cache and search each half separately."""
        try:
            return self._run(model_id, sources, options)
        except torch.cuda.OutOfMemoryError:
            if len(sources) == 1:
                raise
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            half = len(sources) // 2
            log.warning("out of memory on %d sentences: retrying in two halves", len(sources))
            return self._run_split(model_id, sources[:half], options) + self._run_split(
                model_id, sources[half:], options
            )

"""Dynamic batching: the sentences of all concurrent requests share batched searches on one worker.

One `Batcher` per app runs a loop in the event loop and the searches on its own thread. It
schedules in one of two ways (`scheduling`):

- **step** (iteration-level, `nmt.scheduler.Scheduler`): one running beam search
  per (model, search options). Before every decoder step the worker drops the sentences of
  requests that expired or hung up, admits waiting sentences while the batching rule
  (`nmt.batching.fits`) has room (in groups: encoding them has a fixed cost, so admissions are
  spaced, `_admitting`), and steps; a sentence that finishes leaves at once, and a
  request is answered as soon as its last sentence is done. A short request never waits for a
  running batch to end. Requests of at most `EXPRESS_SENTENCES` short sentences (`EXPRESS_ROOM`)
  run in an express lane, a search of their own beside the bulk lane of larger requests: on a CPU
  a step costs more the more sentences it holds, so a one-sentence request stepping inside a batch
  of a hundred would take ten times as long as alone. While the express lane runs, the bulk lane
  steps only when the express steps have earned it the time (`EXPRESS_SLOWDOWN`; as many steps at
  once as they earned, up to `BULK_STEPS`): a small request is slowed down about that much by
  large ones, and large ones keep half the worker, in large efficient steps.
  Where a step costs about the same whatever it holds (a GPU), the lane would only halve the
  bulk's throughput: a small request joins the bulk lane instead, if the bulk lane has room
  for it in its budget (`_express_pays`).
- **request** (the default, `DEFAULT_SCHEDULING`): a batch of whole sentences starts when the budget is full or
  `max_wait_s` has passed since the oldest waiting sentence arrived or the worker became free,
  whichever is later, and runs to its end. Counting from when the worker became free lets the
  clients answered by the last batch join the next one.

Invariants of both:

- A search holds sentences of one (model, search options) key only, within `batch_tokens`
  under the one batching rule (sentences x longest padded source), so the batch sizes in
  `/metrics` are the searches that ran. With `batching` off a search holds one request.
- Admission is round-robin over the waiting requests, one sentence each per pass (in step
  mode the request with the fewest sentences running goes first), so a huge request is spread
  out and cannot starve small ones that arrive after it.
- Each request gets exactly its own results, in its own order (translations do not depend on
  batch-mates or on when a sentence joined: the search is batch-invariant).
- At most `queue_limit` sentences wait; a request that would pass it is refused at once
  (`Overloaded`). A request that is cancelled (client gone) or past its deadline leaves: its
  waiting sentences are never searched and, in step mode, its running ones leave at the next step.
- Deadlines count from the request's arrival. The batcher learns how long work takes
  (`CostModel`: per batch and source token in request mode, per step and running sentence in
  step mode) and uses it twice: a request that cannot finish before its deadline is refused
  (`Overloaded`, so the client can retry elsewhere or later) instead of taking the worker's
  time, and a batch stops growing when it would make a request in it miss its deadline.
- A failing search fails only its own requests; on CUDA out-of-memory the work is split
  (request mode: `Translator.translate_ids` searches the batch in halves; step mode: the
  running sentences go back to the queue and the search's budget is halved) and retried. If
  the loop itself fails, a supervisor logs it, counts it (`on_crash`), and starts it again;
  `healthy` is false until it runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

import torch

from nmt.batching import BATCH_TOKENS, fits
from nmt.scheduler import Scheduler
from nmt.search import Hypothesis, SearchOptions

log = logging.getLogger(__name__)

Scheduling = Literal["step", "request"]
# request: on 2 CPU cores step scheduling answers a lone request sooner but serves fewer sentences per
# second under load (docs/benchmarks.md, "Continuous batching"), so it is not yet the default
DEFAULT_SCHEDULING: Scheduling = "request"
T = TypeVar("T")


class Searcher(Protocol):
    """What a request is translated by: a `Translator` (which halves a batch that runs out of memory), or a
    test's stand-in."""

    def translate_ids(
        self, sources: Sequence[Sequence[int]], options: SearchOptions, batch_tokens: int
    ) -> list[list[Hypothesis]]: ...


class Running(Protocol):
    """A running search that sentences join and leave at every step (`nmt.scheduler.Scheduler`)."""

    batch_tokens: int
    steps: int

    @property
    def running(self) -> int: ...

    def room(self, sources: int, longest: int) -> bool: ...

    def admit(self, items: Sequence[tuple[_Slot, Sequence[int]]]) -> list[tuple[_Slot, list[Hypothesis]]]: ...

    def step(self) -> list[tuple[_Slot, list[Hypothesis]]]: ...

    def drop(self, keys: Collection[_Slot]) -> None: ...


SchedulerFactory = Callable[[Searcher, SearchOptions, int], Running]


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


_Key = tuple[Searcher, SearchOptions]
_LaneKey = tuple[_Key, bool]  # step mode: a key's express lane (True) or bulk lane (False)


@dataclass(eq=False)
class _Job:
    """One request's sentences for one key; `results` fills in as sentences finish."""

    key: _Key
    sources: Sequence[Sequence[int]]
    deadline: float
    arrived: float
    future: asyncio.Future[list[list[Hypothesis]]]
    results: list[list[Hypothesis] | None] = field(default_factory=list)
    todo: deque[int] = field(default_factory=deque)  # sentences not yet searched or admitted
    remaining: int = 0  # sentences without a result
    running: int = 0  # sentences in a running search (step mode)
    express: bool = False  # step mode: runs in its key's express lane (small, and the lane pays: `_express_pays`)
    finish_step: int = 0  # the running search's step by which its admitted sentences should be done
    gone: bool = False  # nobody waits for it any more: answered, failed, expired or hung up

    @property
    def unscheduled(self) -> int:
        return len(self.todo)

    def tokens_left(self) -> int:
        """Padded source tokens (ids + eos) of its unscheduled sentences."""
        return sum(len(self.sources[i]) + 1 for i in self.todo)


_Slot = tuple[_Job, int]  # one sentence of a request, as a running search knows it


class CostModel:
    """How long work of size x takes: seconds = fixed + per_unit * x, fitted to recent observations.

    Request mode observes batches (x: source tokens), step mode decoder steps (x: running
    sentences). The time is not proportional to x: a batch or a step has a fixed cost, so a
    single rate learnt from small batches would make every estimate too slow, refuse work, keep
    batches small, and so feed itself. The fit is least squares over the recent observations
    (older ones weigh less); until different sizes have been seen it falls back to a rate
    through the origin, and where different sizes took the same time (a GPU's decoder step) the
    cost is fixed.
    """

    DECAY = 0.95  # weight of the previous observations against a new one
    MARGIN = 1.1  # batch sizing errs a little towards slower
    CLIP = 4.0  # an observation counts as at most this many times the estimate (a stall is not a slope)

    def __init__(self) -> None:
        self._w = self._x = self._xx = self._y = self._xy = 0.0

    def observe(self, size: float, seconds: float) -> None:
        """Learn from one batch (or step) of `size` that took `seconds`."""
        if self._w >= 4:  # after a few observations, one stalled step must not tilt the line
            seconds = min(seconds, self.CLIP * self.estimate(size))
        d = self.DECAY
        x = float(size)
        self._w = d * self._w + 1
        self._x = d * self._x + x
        self._xx = d * self._xx + x * x
        self._y = d * self._y + seconds
        self._xy = d * self._xy + x * seconds

    def line(self) -> tuple[float, float]:
        """(fixed seconds, seconds per unit); (0, 0) before the first observation."""
        if self._w == 0:
            return 0.0, 0.0
        spread = self._w * self._xx - self._x * self._x
        if spread > 1e-6 * self._w * self._xx:  # different sizes: fit both terms
            per_unit = (self._w * self._xy - self._x * self._y) / spread
            fixed = (self._y - per_unit * self._x) / self._w
            if per_unit <= 0:
                return self._y / self._w, 0.0
            if fixed >= 0:
                return fixed, per_unit
        return 0.0, self._xy / max(self._xx, 1e-12)

    def estimate(self, size: float, batches: int = 1) -> float:
        """Expected seconds for `batches` batches of `size` in all; 0 before any observation."""
        fixed, per_unit = self.line()
        return batches * fixed + per_unit * size

    def most(self, seconds: float) -> float:
        """The largest size that takes at most `seconds` (infinite before any observation)."""
        fixed, per_unit = self.line()
        return math.inf if per_unit <= 0 else (seconds - fixed) / per_unit


@dataclass(frozen=True)
class BatchStats:
    """What one search (request mode) or one decoder step (step mode) held, for metrics."""

    sentences: int
    requests: int
    source_tokens: int
    seconds: float


STEPS_PER_TOKEN = 1.2  # decoder steps a sentence takes per padded source token, until measured
EXPRESS_SENTENCES = 4  # step mode: requests of at most this many sentences run in their key's express lane,
EXPRESS_ROOM = 64  # ... if their longest source leaves it room for this many (a search is padded to its longest)
EXPRESS_SLOWDOWN = 2.0  # ... whose steps, with the bulk steps between them, take at most this many times their own
EXPRESS_GAP = 4.0  # ... and for deadlines still runs this many of its steps' time after its last (between requests)
BULK_STEPS = 8  # most steps a bulk lane beside an express lane takes in one worker iteration, and saves up for
ADMISSION_SHARE = 0.25  # step mode: admissions come no oftener than their fixed cost stays within this share of time,
ADMISSION_WAIT = 3.0  # ... and at least every this many times `max_wait_s` (one slow admission must not stall them)


@dataclass
class _Lane:
    """Step mode: one key's running search, and the step at which each of its sentences joined."""

    search: Running
    members: dict[_Slot, int] = field(default_factory=dict)
    admitted: float = -math.inf  # event-loop time of its last admission
    allowance: float = 0.0  # a bulk lane beside a running express lane: seconds it may step before waiting again
    peak: int = 0  # the most sentences one of its steps has held (its tail is no guide to the next arrivals)
    admissions: CostModel = field(default_factory=CostModel)  # an admission's seconds per source position, by sentences
    longest: float = 0.0  # recent admissions' longest source (a moving average)


@dataclass
class _Outcome:
    """What one lane's step gave back to the event loop."""

    finished: list[tuple[_Slot, list[Hypothesis]]]
    sentences: int = 0
    seconds: float = 0.0
    error: BaseException | None = None
    steps: int = 1
    admitted: int = 0  # sentences encoded and added before the steps
    longest: int = 0  # ... the longest of them (padded source tokens)
    admit_seconds: float = 0.0  # ... and how long that took (part of `seconds`)


class Batcher:
    """Queue plus worker loop; `submit` is the only entry point for requests."""

    def __init__(
        self,
        batch_tokens: int = BATCH_TOKENS["cpu"],
        max_wait_s: float = 0.005,
        queue_limit: int = 2048,
        batching: bool = True,
        scheduling: Scheduling = DEFAULT_SCHEDULING,
        on_batch: Callable[[BatchStats], None] | None = None,
        on_crash: Callable[[BaseException], None] | None = None,
        scheduler: SchedulerFactory = Scheduler,  # type: ignore[assignment]
    ) -> None:
        self.batch_tokens = batch_tokens
        self.max_wait_s = max_wait_s
        self.queue_limit = queue_limit
        self.batching = batching
        self.scheduling: Scheduling = scheduling if batching else "request"
        self._on_batch = on_batch
        self._on_crash = on_crash
        self._make_scheduler = scheduler
        self._costs: dict[_Key, CostModel] = {}  # batch seconds per source token, or step seconds per sentence
        self._steps_per_token: dict[_Key, float] = {}  # step mode: learnt from finished sentences
        self._lanes: dict[_LaneKey, _Lane] = {}  # step mode: the running searches
        self._express_stepped: dict[_Key, float] = {}  # step mode: event-loop time a key's express lane last stepped
        self._budgets: dict[_LaneKey, int] = {}  # step mode: a lane's budget after out-of-memory
        self._running = False  # the loop is running (not crashed, not restarting)
        self._in_batch: list[_Job] = []  # request mode: requests of the batch being searched
        self._pending: list[_Job] = []  # requests with unscheduled sentences, oldest first
        self._queued = 0
        self._free_since = 0.0  # event-loop time when the last batch finished
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def queued(self) -> int:
        """Sentences waiting for a search."""
        return self._queued

    @property
    def running(self) -> int:
        """Sentences in running searches (step mode)."""
        return sum(len(lane.members) for lane in self._lanes.values())

    @property
    def healthy(self) -> bool:
        """The worker loop is running and can translate now."""
        return self._running and self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the worker loop (call from the event loop that will submit)."""
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nmt-search")
        self._task = asyncio.create_task(self._supervise(), name="nmt-batcher")

    async def run_on_worker(self, fn: Callable[..., T], *args: object) -> T:
        """Run `fn(*args)` on the worker's thread, the one thread that runs torch in the service.

        A second thread that runs torch's parallel (OpenMP) operators makes every thread's
        operators slower for the rest of the process (measured twice as slow for a translation
        on 2 cores), so models are loaded where they are searched.
        """
        if self._executor is None:
            raise RuntimeError("Batcher.start() was not called")
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(*args))

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
                lost = self._in_batch + [job for lane in self._lanes.values() for job, _ in lane.members]
                for job in lost:  # their search will never report back
                    self._fail(job, BatchFailed.of())
                self._in_batch, self._lanes = [], {}
                if self._on_crash is not None:
                    self._on_crash(err)
                await asyncio.sleep(self.restart_delay_s)

    async def stop(self) -> None:
        """Stop the loop; waiting and running requests fail with DeadlineExceeded."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in [*self._pending, *(job for lane in self._lanes.values() for job, _ in lane.members)]:
            self._fail(job, DeadlineExceeded("the service is shutting down"))
        self._pending.clear()
        self._queued = 0
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._lanes = {}

    async def submit(
        self,
        searcher: Searcher,
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
        key = (searcher, options)
        job = _Job(
            key=key,
            sources=sources,
            deadline=deadline,
            arrived=now,
            future=loop.create_future(),
            results=[None] * len(sources),
            todo=deque(range(len(sources))),
            remaining=len(sources),
            express=self._small(sources) and self._express_pays(key, sources),
        )
        if now + self._expected(job) > deadline:
            raise Overloaded(f"cannot be translated within {timeout_s:g} s behind the {self._queued} sentences queued")
        self._pending.append(job)
        self._queued += len(sources)
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout=deadline - now)
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"not translated within {timeout_s:g} s") from None
        finally:
            self._forget(job)
            if self._wake is not None and job.running:
                self._wake.set()  # its running sentences leave at the next step

    def _expected(self, job: _Job) -> float:
        """Seconds a new request should take at the current load (0 until the batcher has measured)."""
        if self.scheduling == "request":  # behind everything queued, in full batches
            work = sum(j.tokens_left() for j in self._pending) + job.tokens_left()
            return self._cost(job.key).estimate(work, batches=-(-work // self.batch_tokens))
        # step mode decides when the request's first sentence could join (`_admit`): a projection from
        # here would have to guess its output lengths and its wait (a request of 128 long sources with
        # one-word outputs, refused here at once by such a guess, took 6 s alone)
        return 0.0

    def _small(self, sources: Sequence[Sequence[int]]) -> bool:
        """Whether a request is small enough for the express lane: a few sentences, none so long that the
        lane, padded to it, would have room for fewer than EXPRESS_ROOM others (one run-on sentence of 250
        subwords in a 4,096-token budget left room for 15: the one-sentence requests beside it waited)."""
        longest = max(len(s) for s in sources) + 1
        return len(sources) <= EXPRESS_SENTENCES and fits(EXPRESS_ROOM, longest, self.batch_tokens)

    def _express_pays(self, key: _Key, sources: Sequence[Sequence[int]]) -> bool:
        """Whether a small request needs the express lane: the running bulk lane, as full as it has been,
        has no room beside it for EXPRESS_ROOM such requests (they would be padded to its longest source
        and wait for room: a few very long sources fill its budget), or each of its steps there would take
        over EXPRESS_SLOWDOWN times one of its own. On a CPU a step's time grows with its sentences, so it
        does; on a GPU it hardly grows, and the request joins the bulk lane, which keeps the whole worker."""
        bulk, cost = self._lanes.get((key, False)), self._cost(key)
        alone = cost.estimate(len(sources))
        if bulk is None or not bulk.peak or alone <= 0:  # no bulk step yet: nothing to judge its size by
            return True
        beside_peak = max(bulk.peak - bulk.search.running, 0) + EXPRESS_ROOM
        if not bulk.search.room(beside_peak, max(len(s) for s in sources)):
            return True
        return cost.estimate(bulk.peak + len(sources)) > EXPRESS_SLOWDOWN * alone

    def _cost(self, key: _Key) -> CostModel:
        return self._costs.setdefault(key, CostModel())

    def _forget(self, job: _Job) -> None:
        """Nobody waits for `job` any more: it leaves the queue, and its running sentences the search."""
        job.gone = True
        if job in self._pending:
            self._pending.remove(job)
        self._queued -= job.unscheduled
        job.todo.clear()

    def _fail(self, job: _Job, error: Exception) -> None:
        self._forget(job)
        if not job.future.done():
            job.future.set_exception(error)

    def _answer(self, job: _Job, index: int, hyps: list[Hypothesis]) -> None:
        job.results[index] = hyps
        job.remaining -= 1
        if job.remaining == 0 and not job.future.done():
            job.future.set_result(job.results)  # type: ignore[arg-type]

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending and not self._lanes:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._expire(loop.time())
            await self._work(loop)

    async def _work(self, loop: asyncio.AbstractEventLoop) -> None:
        """One unit of the worker's work: a whole batch (request mode) or one decoder step (step mode)."""
        if self.scheduling == "step":
            await self._step(loop)
            return
        if not self._pending:
            return
        if self.batching:
            await self._gather(loop)
        self._expire(loop.time())  # clients may have left, or deadlines passed, while gathering
        if not self._pending:
            return
        batch = self._take(loop.time())
        if batch:
            self._in_batch = list({id(job): job for job, _ in batch}.values())
            await self._execute(batch, loop)
            self._in_batch = []
            self._free_since = loop.time()

    def _expire(self, now: float) -> None:
        for job in list(self._pending):
            if job.future.done() or now >= job.deadline:
                self._fail(job, DeadlineExceeded("deadline passed while queued"))

    # -- step mode ---------------------------------------------------------------------------

    async def _step(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drop the sentences nobody waits for, admit waiting ones, and advance the running searches one step
        (a bulk lane rests while its express lane runs, until that has earned it a step: `_resting`)."""
        resting = self._resting()
        leaving = {lk: [slot for slot in lane.members if slot[0].gone] for lk, lane in self._lanes.items()
                   if lk not in resting}  # fmt: skip
        for lk, slots in leaving.items():
            for slot in slots:
                del self._lanes[lk].members[slot]
                slot[0].running -= 1
        joining = self._admit(loop.time(), resting)
        lanes = [(lk, lane) for lk, lane in self._lanes.items() if lk not in resting]
        if not lanes:
            return
        work = [(lane, leaving.get(lk, []), joining.get(lk, []), self._steps(lk, lane)) for lk, lane in lanes]
        outcomes = await loop.run_in_executor(self._executor, self._advance, work)
        for (lk, lane), outcome in zip(lanes, outcomes, strict=True):
            if lk[1]:
                self._express_stepped[lk[0]] = loop.time()
            self._settle(lk, lane, outcome)
        self._account(lanes, outcomes)

    def _resting(self) -> set[_LaneKey]:
        """Bulk lanes that skip this step: their key's express lane runs and has not yet earned them their next.

        So a small request is not slowed down by a large batch of large ones beside it by more than
        EXPRESS_SLOWDOWN (on a CPU a step's cost grows with the sentences in it), while the bulk lane
        still gets (EXPRESS_SLOWDOWN - 1) / EXPRESS_SLOWDOWN of the worker and runs in large, efficient steps.
        """
        return {
            lk for lk, lane in self._lanes.items()
            if self._beside_express(lk) and lane.allowance < self._cost(lk[0]).estimate(lane.search.running)
        }  # fmt: skip

    def _steps(self, lk: _LaneKey, lane: _Lane) -> int:
        """Steps a lane takes in this iteration: one, or for a bulk lane beside its express lane as many as
        its allowance covers (up to BULK_STEPS). One step per iteration left a cheap bulk lane (one long
        sentence, 2 ms steps beside 5-25 ms express iterations) far below its share: its allowance grew
        to 400 ms unused and the sentence took 5 s against 0.8 s with request scheduling."""
        step = self._bulk_step(lk[0], lane)
        if not self._beside_express(lk) or step <= 0:
            return 1
        return max(1, min(BULK_STEPS, int(lane.allowance / step)))

    def _bulk_step(self, key: _Key, lane: _Lane) -> float:
        """Seconds one step of a bulk lane should take now (at least one sentence): what its allowance buys."""
        return self._cost(key).estimate(max(lane.search.running, 1))

    def _beside_express(self, lk: _LaneKey) -> bool:
        """Whether `lk` is a bulk lane whose key's express lane runs: it steps only on what that lane earns it."""
        key, express = lk
        return not express and (key, True) in self._lanes

    def _account(self, stepped: list[tuple[_LaneKey, _Lane]], outcomes: list[_Outcome]) -> None:
        """An express step earns its bulk lane EXPRESS_SLOWDOWN - 1 times its own time; a bulk step spends its time."""
        for ((key, express), _), outcome in zip(stepped, outcomes, strict=True):
            bulk = self._lanes.get((key, False))
            if bulk is None:
                continue
            if express:  # saved up for at most BULK_STEPS of its steps, so it cannot hold the worker long later
                most = BULK_STEPS * self._bulk_step(key, bulk)
                bulk.allowance = min(bulk.allowance + (EXPRESS_SLOWDOWN - 1) * outcome.seconds, max(most, 0.0))
            elif self._beside_express((key, False)):
                bulk.allowance -= outcome.seconds
            else:
                bulk.allowance = 0.0  # no express lane: nothing to save up for

    def _admit(self, now: float, resting: set[_LaneKey]) -> dict[_LaneKey, list[tuple[_Slot, Sequence[int]]]]:
        """Waiting sentences that join their key's search now: the request with the fewest running goes first.

        A lane stops admitting for this step when the next sentence does not fit the budget, or
        when the larger batch would make a running request miss its deadline (it then waits);
        a new request that could not finish in time at that load is refused.
        """
        joining: dict[_LaneKey, list[tuple[_Slot, Sequence[int]]]] = {}
        longest: dict[_LaneKey, int] = {}
        caps: dict[_LaneKey, float] = {}
        closed: set[_LaneKey] = set(resting)
        while True:
            open_jobs = [job for job in self._pending if (job.key, job.express) not in closed]
            if not open_jobs:
                return joining
            job = min(open_jobs, key=lambda j: (j.running, j.arrived))
            key, lk, index = job.key, (job.key, job.express), job.todo[0]
            lane = self._lane(lk)
            group = joining.setdefault(lk, [])
            size = len(job.sources[index]) + 1
            if not group and not self._admitting(lk, lane, now, size):
                closed.add(lk)
                continue
            if not lane.search.room(len(group) + 1, max(longest.get(lk, 0), size - 1)):
                closed.add(lk)
                continue
            rows = lane.search.running + len(group) + 1
            cost, steps = self._cost(key), self._steps_per_token.get(key, STEPS_PER_TOKEN) * size
            if lk not in caps:
                caps[lk] = self._deadline_cap(lk, lane, now)
            own = cost.most((job.deadline - now) / (steps * self._pace(lk, now)))  # most running at which it is in time
            if rows > own and len(job.todo) == len(job.sources):
                self._fail(job, Overloaded("cannot be translated before its deadline at this load"))
                continue
            if rows > caps[lk] and rows > 1:
                closed.add(lk)  # it would make a running request late: it waits
                continue
            if rows <= own:
                caps[lk] = min(caps[lk], own)
            slot = (job, index)
            job.todo.popleft()
            self._queued -= 1
            job.finish_step = max(job.finish_step if job.running else 0, lane.search.steps + math.ceil(steps))
            job.running += 1
            lane.members[slot] = lane.search.steps
            group.append((slot, job.sources[index]))
            lane.admitted = now
            longest[lk] = max(longest.get(lk, 0), size - 1)
            if not job.todo:
                self._pending.remove(job)

    def _admitting(self, lk: _LaneKey, lane: _Lane, now: float, size: int) -> bool:
        """Whether a running search takes newcomers at this step: when idle, when a quarter of its
        size is waiting and fits, or once its last admission is `_admission_interval` old.

        Newcomers join in groups because each admission encodes them (a recurrent encoder over
        the longest source, whose cost grows little with how many it encodes): on 2 cores 1 to 8
        sentences take 3-6 ms, about a decoder step of 32 running sentences.
        """
        running = lane.search.running
        if not running or now - lane.admitted >= self._admission_interval(lane):
            return True
        group = max(2, running // 4)
        waiting = sum(len(job.todo) for job in self._pending if (job.key, job.express) == lk)
        return waiting >= group and lane.search.room(group, size - 1)

    def _admission_interval(self, lane: _Lane) -> float:
        """Seconds between a running search's admissions: `max_wait_s`, or up to ADMISSION_WAIT times that
        where an admission's fixed cost (learnt per source position, the encoder's loop: `_Lane.admissions`)
        would otherwise take over ADMISSION_SHARE of the worker. On 2 cores nearly all of it is fixed
        (0.3-0.6 ms a position, ~0.02 ms more a sentence): at 32 one-sentence clients, admitted every 20 ms
        in groups of 3.5, the worker spent 30% of its time encoding; spaced 25-50 ms apart, it served 7-9%
        more requests/s."""
        fixed, _ = lane.admissions.line()
        return min(max(self.max_wait_s, fixed * lane.longest / ADMISSION_SHARE), ADMISSION_WAIT * self.max_wait_s)

    def _pace(self, lk: _LaneKey, now: float) -> float:
        """Seconds of the worker per second of a lane's own steps: a bulk lane beside a running express lane
        gets only (EXPRESS_SLOWDOWN - 1) / EXPRESS_SLOWDOWN of the worker, so its steps come that much slower.

        An express lane that stepped within EXPRESS_GAP of its steps' time counts as running: it is empty
        whenever its clients were just answered and have not yet sent again, and a large request planned
        in that gap with the whole worker was admitted, then ran at half pace and expired."""
        key, express = lk
        recent = now - self._express_stepped.get(key, -math.inf) <= EXPRESS_GAP * self._cost(key).estimate(1)
        busy = self._beside_express(lk) or (not express and recent)
        return EXPRESS_SLOWDOWN / max(EXPRESS_SLOWDOWN - 1, 1e-9) if busy else 1.0

    def _deadline_cap(self, lk: _LaneKey, lane: _Lane, now: float) -> float:
        """Most sentences the search may run so that every running request still in time stays in time."""
        cap = math.inf
        pace = self._pace(lk, now)
        for job in {job for job, _ in lane.members}:
            left = (job.deadline - now) / (pace * max(1, job.finish_step - lane.search.steps))
            most = self._cost(lk[0]).most(left)
            if most >= lane.search.running:  # a request late already does not hold the others back
                cap = min(cap, most)
        return cap

    def _lane(self, lk: _LaneKey) -> _Lane:
        lane = self._lanes.get(lk)
        if lane is None:
            budget = self._budgets.get(lk, self.batch_tokens)
            lane = self._lanes[lk] = _Lane(self._make_scheduler(lk[0][0], lk[0][1], budget))
        return lane

    @staticmethod
    def _advance(work: list[tuple[_Lane, list[_Slot], list[tuple[_Slot, Sequence[int]]], int]]) -> list[_Outcome]:
        """On the worker thread: every lane drops, admits and steps (once, or `steps` times while it has
        sentences); a failure stays in its lane."""
        outcomes = []
        for lane, leaving, joining, steps in work:
            started = time.perf_counter()
            try:
                lane.search.drop(leaving)
                admitting = time.perf_counter()
                finished = lane.search.admit(joining)
                admit_seconds = time.perf_counter() - admitting
                sentences = lane.search.running
                taken = 0
                while taken < steps and (taken == 0 or lane.search.running):
                    finished += lane.search.step()
                    taken += 1
                seconds = time.perf_counter() - started
                longest = max((len(source) + 1 for _, source in joining), default=0)
                outcomes.append(_Outcome(finished, sentences, seconds, steps=taken, admitted=len(joining),
                                         longest=longest, admit_seconds=admit_seconds))  # fmt: skip
            except Exception as err:
                outcomes.append(_Outcome([], error=err))
        return outcomes

    def _settle(self, lk: _LaneKey, lane: _Lane, outcome: _Outcome) -> None:
        """Hand finished sentences to their requests; recover a lane whose step failed."""
        key = lk[0]
        if outcome.error is not None:
            self._recover(lk, lane, outcome.error)
            return
        if outcome.admitted:  # the encoder steps through the longest source: its cost is per position
            lane.admissions.observe(outcome.admitted, outcome.admit_seconds / outcome.longest)
            lane.longest = 0.9 * lane.longest + 0.1 * outcome.longest if lane.longest else outcome.longest
        if outcome.sentences:
            lane.peak = max(lane.peak, outcome.sentences)
            seconds = outcome.seconds / outcome.steps  # several steps: sizes as at the first (they only shrink)
            self._cost(key).observe(outcome.sentences, seconds)
            if self._on_batch is not None:
                jobs = {job for job, _ in lane.members}
                tokens = sum(len(job.sources[i]) + 1 for job, i in lane.members)
                for _ in range(outcome.steps):
                    self._on_batch(BatchStats(outcome.sentences, len(jobs), tokens, seconds))
        for slot, hyps in outcome.finished:
            job, index = slot
            joined = lane.members.pop(slot, None)
            if joined is not None:  # learn how many steps a sentence takes per source token
                taken = (lane.search.steps - joined) / (len(job.sources[index]) + 1)
                self._steps_per_token[key] = 0.98 * self._steps_per_token.get(key, STEPS_PER_TOKEN) + 0.02 * taken
            job.running -= 1
            if not job.gone:
                self._answer(job, index, hyps)
        if not lane.members:
            del self._lanes[lk]
            self._budgets.pop(lk, None)

    def _recover(self, lk: _LaneKey, lane: _Lane, error: BaseException) -> None:
        """A lane's step failed: on out-of-memory its sentences wait again under half the budget; else they fail."""
        del self._lanes[lk]
        members = [slot for slot in lane.members if not slot[0].gone]
        for job, _ in lane.members:
            job.running -= 1
            job.finish_step = 0
        if isinstance(error, torch.cuda.OutOfMemoryError) and len(members) > 1:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            budget = self._budgets[lk] = max(1, lane.search.batch_tokens // 2)
            log.warning("out of memory with %d sentences running: retrying them within %d tokens", len(members),
                        budget)  # fmt: skip
            for job, index in sorted(members, key=lambda slot: slot[1], reverse=True):
                job.todo.appendleft(index)
                self._queued += 1
                if job not in self._pending:
                    self._pending.insert(0, job)
            return
        log.error("a search of %d sentences failed", len(members), exc_info=error)
        for job in {job for job, _ in members}:
            self._fail(job, BatchFailed.of(error))

    # -- request mode ------------------------------------------------------------------------

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until the head key's waiting tokens fill the budget or its oldest sentence waited enough."""
        assert self._wake is not None
        while self._pending:
            head = self._pending[0]
            waiting = sum(j.tokens_left() for j in self._pending if j.key == head.key)
            left = max(head.arrived, self._free_since) + self.max_wait_s - loop.time()
            if waiting >= self.batch_tokens or left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=left)
            except asyncio.TimeoutError:
                return

    def _take(self, now: float) -> list[tuple[_Job, int]]:
        """Sentences for the next batch: round-robin over the requests that share the head's key.

        A request whose remaining work cannot finish before its deadline is refused here
        (`Overloaded`) rather than searched; the batch stops growing when the batching rule
        says it is full or it could no longer finish before the earliest deadline among its requests.
        """
        key = self._pending[0].key
        cost = self._cost(key)
        jobs = [j for j in self._pending if j.key == key] if self.batching else [self._pending[0]]
        for job in list(jobs):
            if len(job.todo) == len(job.sources) and now + cost.estimate(job.tokens_left()) > job.deadline:
                jobs.remove(job)
                self._fail(job, Overloaded("cannot be translated before its deadline at this load"))
        batch: list[tuple[_Job, int]] = []
        tokens = longest = 0
        earliest = math.inf
        while jobs:
            for job in list(jobs):
                size = len(job.sources[job.todo[0]]) + 1
                if batch and not fits(len(batch) + 1, max(longest, size), self.batch_tokens):
                    return batch
                if batch and now + cost.MARGIN * cost.estimate(tokens + size) > min(earliest, job.deadline):
                    return batch
                earliest = min(earliest, job.deadline)
                batch.append((job, job.todo.popleft()))
                tokens += size
                longest = max(longest, size)
                self._queued -= 1
                if not job.todo:
                    jobs.remove(job)
                    self._pending.remove(job)
        return batch

    async def _execute(self, batch: list[tuple[_Job, int]], loop: asyncio.AbstractEventLoop) -> None:
        searcher, options = batch[0][0].key
        sources = [job.sources[i] for job, i in batch]
        started = time.perf_counter()
        try:
            found = await loop.run_in_executor(
                self._executor, searcher.translate_ids, sources, options, self.batch_tokens
            )
        except Exception as err:
            log.exception("a batch of %d sentences failed", len(batch))
            for job in {job for job, _ in batch}:
                self._fail(job, BatchFailed.of(err))
            return
        stats = BatchStats(
            len(batch), len({id(j) for j, _ in batch}), sum(len(s) + 1 for s in sources),
            time.perf_counter() - started,
        )  # fmt: skip
        self._cost(batch[0][0].key).observe(stats.source_tokens, stats.seconds)
        if self._on_batch is not None:
            self._on_batch(stats)
        for (job, index), hyps in zip(batch, found, strict=True):
            self._answer(job, index, hyps)

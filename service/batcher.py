"""Dynamic batching: the sentences of all concurrent requests share running searches on one worker.

One `Batcher` per app runs a loop in the event loop and the searches on its own thread. The rule,
before every decoder step of the running searches (`nmt.scheduler.Scheduler`, one per (model,
search options) key and lane, `service.lanes`):

1. drop the sentences of requests that expired or hung up;
2. admit waiting sentences while the batching rule (`nmt.batching.fits`) has room and no running
   request would miss its deadline, the request with the fewest sentences running first; a lane
   admits in groups, no oftener than its admissions' fixed cost allows (`_admitting`);
3. step every lane whose turn it is (`Lanes.resting`: a bulk lane beside a running express lane
   steps on the time that lane earns it);
4. answer each request as soon as its last sentence is done.

Invariants:

- A search holds sentences of one key only, within `batch_tokens` under the one batching rule
  (sentences x longest padded source), so the batch sizes in `/metrics` are the steps that ran.
  With `batching` off a search holds one request.
- Each request gets exactly its own results, in its own order (translations do not depend on
  batch-mates or on when a sentence joined: the search is batch-invariant).
- At most `queue_limit` sentences wait; a request that would pass it is refused at once
  (`Overloaded`). A request that is cancelled (client gone) or past its deadline leaves: its
  waiting sentences are never searched and its running ones leave at the next step.
- Deadlines count from the request's arrival. A request that cannot finish before its deadline
  at the current load is refused (`Overloaded`) instead of taking the worker's time, and a lane
  stops admitting when more sentences would make a running request late.
- A failing step fails only its own lane's requests; on CUDA out-of-memory the lane's sentences
  go back to the queue under half the budget. If the loop itself fails, a supervisor logs it,
  counts it (`on_crash`), and starts it again; `healthy` is false until it runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

from nmt.batching import BATCH_TOKENS
from nmt.scheduler import Scheduler
from nmt.search import Hypothesis, SearchOptions
from service.costs import CostModel
from service.jobs import BatchFailed, BatchStats, DeadlineExceeded, Job, Overloaded, SchedulerFactory, Searcher, Slot
from service.lanes import STEPS_PER_TOKEN, Lane, LaneKey, Lanes, Outcome, advance

__all__ = ["BatchFailed", "BatchStats", "Batcher", "CostModel", "DeadlineExceeded", "Overloaded"]

log = logging.getLogger(__name__)
T = TypeVar("T")

ADMISSION_SHARE = 0.25  # admissions come no oftener than their fixed cost stays within this share of time,
ADMISSION_WAIT = 3.0  # ... and at least every this many times `max_wait_s` (one slow admission must not stall them)


class Batcher:
    """Queue plus worker loop; `submit` is the only entry point for requests."""

    def __init__(
        self,
        batch_tokens: int = BATCH_TOKENS["cpu"],
        max_wait_s: float = 0.005,
        queue_limit: int = 2048,
        batching: bool = True,
        on_batch: Callable[[BatchStats], None] | None = None,
        on_crash: Callable[[BaseException], None] | None = None,
        scheduler: SchedulerFactory = Scheduler,  # type: ignore[assignment]
    ) -> None:
        self.batch_tokens = batch_tokens
        self.max_wait_s = max_wait_s
        self.queue_limit = queue_limit
        self.batching = batching
        self._on_batch = on_batch
        self._on_crash = on_crash
        self._lanes = Lanes(scheduler, batch_tokens)
        self._running = False  # the loop is running (not crashed, not restarting)
        self._pending: list[Job] = []  # requests with unadmitted sentences, oldest first
        self._queued = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def queued(self) -> int:
        """Sentences waiting for a search."""
        return self._queued

    @property
    def running(self) -> int:
        """Sentences in running searches."""
        return sum(len(lane.members) for lane in self._lanes.lanes.values())

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
                for job in {job for lane in self._lanes.lanes.values() for job, _ in lane.members}:
                    self._fail(job, BatchFailed.of())  # their search will never report back
                self._lanes.lanes = {}
                if self._on_crash is not None:
                    self._on_crash(err)
                await asyncio.sleep(self.restart_delay_s)

    async def stop(self) -> None:
        """Stop the loop; waiting and running requests fail with DeadlineExceeded."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in [*self._pending, *(job for lane in self._lanes.lanes.values() for job, _ in lane.members)]:
            self._fail(job, DeadlineExceeded("the service is shutting down"))
        self._pending.clear()
        self._queued = 0
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._lanes.lanes = {}

    def forget(self, searcher: Searcher) -> None:
        """Drop the costs learnt for `searcher` (a model being unloaded); its running searches finish."""
        self._lanes.forget(searcher)

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
        job = Job(
            key=key,
            sources=sources,
            deadline=deadline,
            arrived=now,
            future=loop.create_future(),
            results=[None] * len(sources),
            todo=deque(range(len(sources))),
            remaining=len(sources),
            express=self._lanes.small(sources) and self._lanes.express_pays(key, sources),
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
            if self._wake is not None and job.running:
                self._wake.set()  # its running sentences leave at the next step

    def _forget(self, job: Job) -> None:
        """Nobody waits for `job` any more: it leaves the queue, and its running sentences the search."""
        job.gone = True
        if job in self._pending:
            self._pending.remove(job)
        self._queued -= job.unscheduled
        job.todo.clear()

    def _fail(self, job: Job, error: Exception) -> None:
        self._forget(job)
        if not job.future.done():
            job.future.set_exception(error)

    def _answer(self, job: Job, index: int, hyps: list[Hypothesis]) -> None:
        job.results[index] = hyps
        job.remaining -= 1
        if job.remaining == 0 and not job.future.done():
            job.future.set_result(job.results)  # type: ignore[arg-type]

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending and not self._lanes.lanes:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._expire(loop.time())
            await self._step(loop)

    def _expire(self, now: float) -> None:
        for job in list(self._pending):
            if job.future.done() or now >= job.deadline:
                self._fail(job, DeadlineExceeded("deadline passed while queued"))

    async def _step(self, loop: asyncio.AbstractEventLoop) -> None:
        """One iteration of the rule (module docstring): drop, admit, step the lanes whose turn it is, answer."""
        lanes = self._lanes
        resting = lanes.resting()
        leaving = {lk: [slot for slot in lane.members if slot[0].gone] for lk, lane in lanes.lanes.items()
                   if lk not in resting}  # fmt: skip
        for lk, slots in leaving.items():
            for slot in slots:
                del lanes.lanes[lk].members[slot]
                slot[0].running -= 1
        joining = self._admit(loop.time(), resting)
        stepping = [(lk, lane) for lk, lane in lanes.lanes.items() if lk not in resting]
        if not stepping:
            return
        work = [(lane, leaving.get(lk, []), joining.get(lk, []), lanes.steps(lk, lane)) for lk, lane in stepping]
        outcomes = await loop.run_in_executor(self._executor, advance, work)
        for (lk, lane), outcome in zip(stepping, outcomes, strict=True):
            if lk[1]:
                lanes.express_stepped[lk[0]] = loop.time()
            self._settle(lk, lane, outcome)
        lanes.account(stepping, outcomes)

    def _admit(self, now: float, resting: set[LaneKey]) -> dict[LaneKey, list[tuple[Slot, Sequence[int]]]]:
        """Waiting sentences that join their key's search now: the request with the fewest running goes first.

        A lane stops admitting for this step when the next sentence does not fit the budget, or
        when the larger batch would make a running request miss its deadline (it then waits);
        a new request that could not finish in time at that load is refused.
        """
        joining: dict[LaneKey, list[tuple[Slot, Sequence[int]]]] = {}
        longest: dict[LaneKey, int] = {}
        caps: dict[LaneKey, float] = {}
        closed: set[LaneKey] = set(resting)
        held: set[int] = set()  # batching off: requests that wait for another one's search to end
        while True:
            open_jobs = [j for j in self._pending if (j.key, j.express) not in closed and id(j) not in held]
            if not open_jobs:
                return joining
            job = min(open_jobs, key=lambda j: (j.running, j.arrived))
            key, lk, index = job.key, (job.key, job.express), job.todo[0]
            lane = self._lanes.lane(lk)
            group = joining.setdefault(lk, [])
            size = len(job.sources[index]) + 1
            if not self.batching and any(other is not job for other, _ in [*lane.members, *(s for s, _ in group)]):
                held.add(id(job))  # batching off: one request per search
                continue
            if not group and not self._admitting(lk, lane, now, size):
                closed.add(lk)
                continue
            if not lane.search.room(len(group) + 1, max(longest.get(lk, 0), size - 1)):
                closed.add(lk)
                continue
            rows = lane.search.running + len(group) + 1
            cost, steps = self._lanes.cost(key), self._lanes.steps_per_token.get(key, STEPS_PER_TOKEN) * size
            if lk not in caps:
                caps[lk] = self._lanes.deadline_cap(lk, lane, now)
            # the most sentences running at which it is still in time
            own = cost.most((job.deadline - now) / (steps * self._lanes.pace(lk, now)))
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

    def _admitting(self, lk: LaneKey, lane: Lane, now: float, size: int) -> bool:
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

    def _admission_interval(self, lane: Lane) -> float:
        """Seconds between a running search's admissions: `max_wait_s`, or up to ADMISSION_WAIT times that
        where an admission's fixed cost (learnt per source position, the encoder's loop: `Lane.admissions`)
        would otherwise take over ADMISSION_SHARE of the worker. On 2 cores nearly all of it is fixed
        (0.3-0.6 ms a position, ~0.02 ms more a sentence): at 32 one-sentence clients, admitted every 20 ms
        in groups of 3.5, the worker spent 30% of its time encoding; spaced 25-50 ms apart, it served 7-9%
        more requests/s."""
        fixed, _ = lane.admissions.line()
        return min(max(self.max_wait_s, fixed * lane.longest / ADMISSION_SHARE), ADMISSION_WAIT * self.max_wait_s)

    def _settle(self, lk: LaneKey, lane: Lane, outcome: Outcome) -> None:
        """Hand finished sentences to their requests; recover a lane whose step failed."""
        key = lk[0]
        if outcome.error is not None:
            self._recover(lk, lane, outcome.error)
            return
        self._lanes.learn(lk, lane, outcome)
        if outcome.sentences and self._on_batch is not None:
            jobs = {job for job, _ in lane.members}
            tokens = sum(len(job.sources[i]) + 1 for job, i in lane.members)
            for _ in range(outcome.steps):
                self._on_batch(BatchStats(outcome.sentences, len(jobs), tokens, outcome.seconds / outcome.steps))
        for slot, hyps in outcome.finished:
            job, index = slot
            self._lanes.finished(key, lane, slot)
            job.running -= 1
            if not job.gone:
                self._answer(job, index, hyps)
        if not lane.members:
            del self._lanes.lanes[lk]
            self._lanes.budgets.pop(lk, None)

    def _recover(self, lk: LaneKey, lane: Lane, error: BaseException) -> None:
        """A lane's step failed: on out-of-memory its sentences wait again under half the budget; else they fail."""
        del self._lanes.lanes[lk]
        members = [slot for slot in lane.members if not slot[0].gone]
        for job, _ in lane.members:
            job.running -= 1
            job.finish_step = 0
        if isinstance(error, torch.cuda.OutOfMemoryError) and len(members) > 1:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            budget = self._lanes.budgets[lk] = max(1, lane.search.batch_tokens // 2)
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

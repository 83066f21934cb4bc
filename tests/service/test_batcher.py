"""The batcher's invariants, with a scripted running search standing in for the model."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Collection, Sequence

import pytest
import torch

from nmt.batching import BATCH_TOKENS
from nmt.search import Hypothesis, SearchOptions
from service.batcher import Batcher, BatchFailed, DeadlineExceeded, Overloaded
from service.costs import CostModel
from service.lanes import EXPRESS_SLOWDOWN

OPTS = SearchOptions(beam_size=2)


class FakeModel:
    """Stands for a model's translator: the batcher only keys searches by it."""


def tokens(result: list[list[Hypothesis]]) -> list[list[int]]:
    return [h[0].tokens for h in result]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


class FakeScheduler:
    """A running search in which a sentence takes len(source) steps and is answered reversed.

    Records, per step, which sentences ran; a step costs `delay` plus `per_row` per running sentence,
    an admission `admit_delay` whatever it admits (an encoder's fixed cost);
    it runs out of memory above `oom_above` running sentences and fails on a source holding `fail_on`.
    """

    def __init__(self, log: StepLog, options: SearchOptions, batch_tokens: int) -> None:
        self.log, self.batch_tokens, self.steps = log, batch_tokens, 0
        self.live: dict[object, tuple[list[int], int]] = {}  # key -> (source, steps left)
        log.budgets.append(batch_tokens)

    @property
    def running(self) -> int:
        return len(self.live)

    def room(self, sources: int, longest: int) -> bool:
        if not self.live and sources == 1:
            return True
        widest = max([len(s) + 1 for s, _ in self.live.values()] + [longest + 1])
        return (self.running + sources) * widest <= self.batch_tokens

    def admit(self, items: Sequence[tuple[object, Sequence[int]]]) -> list[tuple[object, list[Hypothesis]]]:
        if items:
            time.sleep(self.log.admit_delays.pop(0) if self.log.admit_delays else self.log.admit_delay)
            self.log.admissions.append(len(items))
        for key, source in items:
            self.live[key] = (list(source), max(1, len(source)))
        return []

    def step(self) -> list[tuple[object, list[Hypothesis]]]:
        log = self.log
        log.gate.wait()
        if log.oom_above is not None and self.running > log.oom_above:
            raise torch.cuda.OutOfMemoryError("fake")
        if log.fail_on is not None and any(log.fail_on in s for s, _ in self.live.values()):
            raise RuntimeError("boom")
        time.sleep(log.delay + log.per_row * self.running)
        self.steps += 1
        log.steps.append([list(s) for s, _ in self.live.values()])
        done = []
        for key, (source, left) in list(self.live.items()):
            if left == 1:
                del self.live[key]
                done.append((key, [Hypothesis(tokens=list(reversed(source)), score=0.0, log_prob=0.0)]))
            else:
                self.live[key] = (source, left - 1)
        return done

    def drop(self, keys: Collection[object]) -> None:
        for key in keys:
            self.log.dropped.append(self.live.pop(key)[0])


class StepLog:
    """What the fake running searches did, and how they misbehave; `searcher` stands for the model."""

    def __init__(self, delay: float = 0.0, per_row: float = 0.0, oom_above: int | None = None,
                 fail_on: int | None = None, admit_delay: float = 0.0) -> None:  # fmt: skip
        self.delay, self.per_row, self.oom_above, self.fail_on = delay, per_row, oom_above, fail_on
        self.admit_delay = admit_delay
        self.admit_delays: list[float] = []  # the first admissions' costs, before `admit_delay`
        self.steps: list[list[list[int]]] = []
        self.admissions: list[int] = []  # sentences admitted, per admission
        self.dropped: list[list[int]] = []
        self.budgets: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.searcher = FakeModel()

    def scheduler(self, searcher: object, options: SearchOptions, batch_tokens: int) -> FakeScheduler:
        return FakeScheduler(self, options, batch_tokens)


async def stepping(log: StepLog, **kwargs: object) -> Batcher:
    batcher = Batcher(scheduler=log.scheduler, **kwargs)  # type: ignore[arg-type]
    await batcher.start()
    return batcher


def test_different_options_never_share_a_search() -> None:
    async def main() -> None:
        log = StepLog(delay=0.002)
        b = await stepping(log)
        other, wide = FakeModel(), SearchOptions(beam_size=5)
        answers = await asyncio.gather(
            b.submit(log.searcher, [[1, 1]], OPTS, 10),
            b.submit(log.searcher, [[2, 2]], wide, 10),
            b.submit(other, [[3, 3]], OPTS, 10),
        )
        assert [tokens(a) for a in answers] == [[[1, 1]], [[2, 2]], [[3, 3]]]
        assert len(log.budgets) == 3  # three running searches
        assert all(len(step) == 1 for step in log.steps)
        await b.stop()

    run(main())


def test_full_queue_refuses_at_once() -> None:
    async def main() -> None:
        log = StepLog()
        log.gate.clear()  # the worker blocks in its first step
        b = await stepping(log, queue_limit=10, batch_tokens=4)
        first = asyncio.create_task(b.submit(log.searcher, [[1]] * 10, OPTS, 30))
        await asyncio.sleep(0.05)  # 2 running (4 tokens of 2), 8 waiting
        second = asyncio.create_task(b.submit(log.searcher, [[2]] * 2, OPTS, 30))  # 8 + 2 waiting: full
        await asyncio.sleep(0.01)
        assert b.queued == 10
        with pytest.raises(Overloaded):
            await b.submit(log.searcher, [[3]] * 5, OPTS, 30)
        log.gate.set()
        assert len(await first) == 10 and len(await second) == 2
        assert b.queued == 0
        await b.stop()

    run(main())


def test_cancelled_and_expired_requests_leave_the_queue_and_are_never_searched() -> None:
    async def main() -> None:
        log = StepLog()
        log.gate.clear()
        b = await stepping(log, batch_tokens=4)
        blocker = asyncio.create_task(b.submit(log.searcher, [[1]], OPTS, 30))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(b.submit(log.searcher, [[5, 5]] * 50, OPTS, 30))
        with pytest.raises(DeadlineExceeded):
            await b.submit(log.searcher, [[6, 6]] * 3, OPTS, 0.05)
        await asyncio.sleep(0.01)
        gone.cancel()  # the client hung up while its sentences waited
        await asyncio.sleep(0.01)
        assert b.queued == 0
        log.gate.set()
        await blocker
        await asyncio.sleep(0.05)
        searched = [s for step in log.steps for s in step]
        assert [5, 5] not in searched and [6, 6] not in searched
        assert b.healthy and tokens(await b.submit(log.searcher, [[3, 4]], OPTS, 10)) == [[4, 3]]
        await b.stop()

    run(main())


def test_out_of_memory_on_a_single_sentence_fails_the_request_with_a_reason() -> None:
    """What still does not fit alone fails with out_of_memory set (a 503 for the client); the worker goes on."""

    async def main() -> None:
        log = StepLog(oom_above=0)
        b = await stepping(log)
        with pytest.raises(BatchFailed) as err:
            await b.submit(log.searcher, [[1, 2]], OPTS, 10)
        assert err.value.out_of_memory
        log.oom_above = None
        assert tokens(await b.submit(log.searcher, [[3, 4]], OPTS, 10)) == [[4, 3]]
        await b.stop()

    run(main())


def test_a_failing_worker_is_restarted_counted_and_fails_only_its_requests() -> None:
    async def main() -> None:
        log = StepLog()
        crashes: list[BaseException] = []
        b = await stepping(log, on_crash=crashes.append)
        real_settle = b._settle
        calls = 0

        def broken_once(*args):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("a bug in the worker")
            real_settle(*args)

        b._settle = broken_once  # type: ignore[method-assign]
        with pytest.raises(BatchFailed):
            await asyncio.wait_for(b.submit(log.searcher, [[1]], OPTS, 10), 2)
        assert len(crashes) == 1 and "a bug" in str(crashes[0])
        assert tokens(await asyncio.wait_for(b.submit(log.searcher, [[2, 3]], OPTS, 10), 2)) == [[3, 2]]
        assert b.healthy
        await b.stop()
        assert not b.healthy

    run(main())


def test_the_deadline_counts_from_arrival() -> None:
    async def main() -> None:
        log = StepLog(delay=0.2)
        b = await stepping(log)
        now = asyncio.get_running_loop().time()
        with pytest.raises(DeadlineExceeded):
            await b.submit(log.searcher, [[1]], OPTS, 1.0, arrived=now - 1.0)  # spent its time before reaching us
        with pytest.raises(DeadlineExceeded):
            await b.submit(log.searcher, [[1]], OPTS, 1.0, arrived=now - 0.9)  # 0.1 s left, a step takes 0.2
        assert tokens(await b.submit(log.searcher, [[1]], OPTS, 1.0)) == [[1]]
        await b.stop()

    run(main())


def test_the_cost_model_separates_fixed_and_per_token_time() -> None:
    """Small batches cost more per token; a rate learnt from them must not make big ones look slow."""
    cost = CostModel()
    assert cost.estimate(1000) == 0.0  # nothing measured: no refusals
    cost.observe(100, 0.2 + 0.001 * 100)
    assert cost.estimate(100) == pytest.approx(0.3)  # one size seen: a rate through the origin
    for tokens in (20, 500, 60, 1500, 10, 800):
        cost.observe(tokens, 0.2 + 0.001 * tokens)
    fixed, per_token = cost.line()
    assert fixed == pytest.approx(0.2, rel=1e-6) and per_token == pytest.approx(0.001, rel=1e-6)
    assert cost.estimate(2000, batches=2) == pytest.approx(2 * 0.2 + 2.0)


def test_steps_that_take_the_same_time_at_every_size_are_a_fixed_cost() -> None:
    """A GPU's step: 1 and 200 sentences take 8 ms alike (and noise may tilt the fit below flat).
    A rate through the origin would make 200 sentences look 200 times as slow as one."""
    cost = CostModel()
    for size, seconds in [(1, 0.0081), (200, 0.0080), (50, 0.0080), (120, 0.0079), (5, 0.0081)] * 4:
        cost.observe(size, seconds)
    assert cost.estimate(200) == pytest.approx(0.008, rel=0.05) and cost.estimate(1) == pytest.approx(0.008, rel=0.05)
    assert cost.most(1.0) == float("inf")


def test_one_stalled_step_does_not_make_every_larger_step_look_slow() -> None:
    """A pause (a page fault, another process) during one small step must not tilt the line into refusals."""
    cost = CostModel()
    for _ in range(30):
        cost.observe(1, 0.003)
    cost.observe(2, 1.0)  # a stall
    assert cost.estimate(64) < 2.0  # not 64 x 1 s
    assert cost.most(3.0) > 64


# -- the rule: sentences join and leave the running search at every decoder step ---------------------


def test_steps_share_sentences_of_concurrent_requests_and_answer_each_its_own() -> None:
    async def main() -> None:
        log = StepLog(delay=0.001)
        b = await stepping(log)
        requests = [[[i, j, 100 + i][: j + 1] for j in range(i % 3 + 1)] for i in range(40)]
        results = await asyncio.gather(*(b.submit(log.searcher, r, OPTS, 10) for r in requests))
        for req, res in zip(requests, results, strict=True):
            assert tokens(res) == [list(reversed(s)) for s in req]
        assert max(len(step) for step in log.steps) > 20 and len(log.steps) < 40
        assert b.running == 0 and b.queued == 0
        await b.stop()

    run(main())


def test_a_short_request_joins_a_running_search_and_leaves_before_the_long_one() -> None:
    """The latency this mode exists for: one short sentence does not wait for a long batch to end."""

    async def main() -> None:
        log = StepLog(delay=0.002)
        b = await stepping(log)
        long = asyncio.create_task(b.submit(log.searcher, [[1] * 150] * 4, OPTS, 30))
        await asyncio.sleep(0.05)  # the long batch is some steps in
        joined_at = len(log.steps)
        short = await b.submit(log.searcher, [[7, 8]], OPTS, 30)
        assert tokens(short) == [[8, 7]] and not long.done()
        assert len(log.steps) - joined_at <= 4  # its 2 steps, plus at most the step running when it came
        assert [7, 8] in log.steps[-1]  # it ran while the long ones ran (in the express lane: they are not small)
        assert any([1] * 150 in step for step in log.steps[joined_at:])  # and they kept stepping beside it
        assert len(await long) == 4
        await b.stop()

    run(main())


def test_sentences_of_a_request_that_expires_or_hangs_up_leave_at_the_next_step() -> None:
    async def main() -> None:
        log = StepLog(delay=0.002)
        b = await stepping(log)
        other = asyncio.create_task(b.submit(log.searcher, [[3] * 120], OPTS, 30))
        with pytest.raises(DeadlineExceeded):
            await b.submit(log.searcher, [[5] * 500] * 2, OPTS, 0.1)
        steps = len(log.steps)
        await asyncio.sleep(0.03)
        assert log.dropped == [[5] * 500] * 2
        assert all([5] * 500 not in step for step in log.steps[steps + 1 :])  # gone at the next step
        hung_up = asyncio.create_task(b.submit(log.searcher, [[6] * 500], OPTS, 30))
        await asyncio.sleep(0.05)
        assert any([6] * 500 in step for step in log.steps[-2:])
        hung_up.cancel()  # the client disconnected
        await asyncio.sleep(0.03)
        assert log.dropped[-1] == [6] * 500 and all([6] * 500 not in step for step in log.steps[-3:])
        assert tokens(await other) == [[3] * 120]  # nobody else was disturbed
        assert b.running == 0
        await b.stop()

    run(main())


def test_where_admitting_has_a_fixed_cost_newcomers_are_admitted_in_groups_not_one_by_one() -> None:
    """An admission encodes its newcomers at a cost that hardly grows with how many (a recurrent encoder's
    operator calls): admitting clients one or two at a time as they come back, the worker would spend
    more time encoding than stepping (on 2 cores, 32 one-sentence clients spent 30% of it so)."""

    async def main() -> None:
        log = StepLog(delay=0.002, admit_delay=0.005)
        b = await stepping(log, max_wait_s=0.005)

        async def client(i: int) -> None:  # sends its next one-sentence request when answered
            for j in range(4):
                source = [(i + j) % 7 + 1] * (30 + (7 * i + 11 * j) % 30)
                assert tokens(await b.submit(log.searcher, [source], OPTS, 30)) == [source]

        await asyncio.gather(*(client(i) for i in range(20)))
        # 80 sentences: admitted every 5 ms (max_wait_s), 49 admissions, most of one; no oftener than
        # ADMISSION_SHARE allows, 21-22 (groups of 4, when a quarter of those running wait)
        assert len(log.admissions) <= 32, log.admissions
        await b.stop()

    run(main())


def test_slow_admissions_do_not_keep_a_newcomer_waiting_longer_than_a_few_max_waits() -> None:
    async def main() -> None:
        log = StepLog(delay=0.001)
        log.admit_delays = [0.2, 0.2]  # learnt: admitting costs 0.2 s whatever it admits (a cold start, say)
        b = await stepping(log, max_wait_s=0.01)
        # two admissions of different sizes, 0.2 s each; long deadlines, as a step looks 0.2 s long now
        running = []
        for n in (8, 2):
            running.append(asyncio.create_task(b.submit(log.searcher, [[1] * 300] * n, OPTS, 300)))
            while len(log.admissions) < len(running):
                await asyncio.sleep(0.005)
        started = time.perf_counter()
        newcomer = asyncio.create_task(b.submit(log.searcher, [[3] * 70], OPTS, 300))  # too long to go express
        while len(log.admissions) < 3:
            await asyncio.sleep(0.002)
        # at most ADMISSION_WAIT x max_wait_s after the last admission; from the cost alone, 0.8 s
        assert time.perf_counter() - started < 0.1
        assert tokens(await newcomer) == [[3] * 70]
        await asyncio.gather(*running)
        await b.stop()

    run(main())


def test_a_huge_request_does_not_starve_small_ones_arriving_after_it() -> None:
    """Round-robin admission: the request with the fewest sentences running takes the next free slot."""

    async def main() -> None:
        log = StepLog(delay=0.001)
        b = await stepping(log, batch_tokens=16)  # four 3-subword sentences at a time
        big = asyncio.create_task(b.submit(log.searcher, [[1, 2, 3]] * 200, OPTS, 30))
        await asyncio.sleep(0.03)
        small = [b.submit(log.searcher, [[7, i, 9]], OPTS, 30) for i in range(3)]
        answers = await asyncio.gather(*small)
        assert [tokens(a) for a in answers] == [[[9, i, 7]] for i in range(3)]
        assert not big.done()
        assert max(len(step) for step in log.steps) <= 4  # the budget holds
        assert len(tokens(await big)) == 200
        await b.stop()

    run(main())


def test_a_small_request_beside_large_ones_does_not_step_at_their_pace() -> None:
    """Mixed load: 64 sentences of large requests make every step slow (a CPU step costs per sentence).
    A one-sentence request that arrives then runs in the express lane, a search of its own, and the
    bulk lane steps only when the express steps have earned it (EXPRESS_SLOWDOWN): at most the bulk
    step already running when it came, and one more, fall inside its life instead of all six."""

    async def main() -> None:
        log = StepLog(delay=0.001, per_row=0.0003)  # a bulk step ~20 ms, an express step ~1.3 ms
        b = await stepping(log)
        bulk = [asyncio.create_task(b.submit(log.searcher, [[1] * 30] * 16, OPTS, 30)) for _ in range(4)]
        await asyncio.sleep(0.1)
        assert max(len(step) for step in log.steps) == 64
        for i in range(3):
            first = len(log.steps)
            answer = await b.submit(log.searcher, [[7, i, 7, 7, 7, 8]], OPTS, 30)  # six steps
            assert tokens(answer) == [[8, 7, 7, 7, i, 7]]
            during = log.steps[first:]
            assert [len(step) for step in during if [7, i, 7, 7, 7, 8] in step] == [1] * 6  # its own search
            assert sum([1] * 30 in step for step in during) <= 2, [len(step) for step in during]
        assert [len(tokens(await t)) for t in bulk] == [16] * 4
        await b.stop()

    run(main())


def test_where_a_step_costs_the_same_whatever_it_holds_a_small_request_joins_the_bulk_lane() -> None:
    """A GPU's decoder step takes about as long with 1 sentence as with 64: an express lane would halve the
    bulk's throughput for nothing. Small requests then step inside the bulk lane, which never rests."""

    async def main() -> None:
        log = StepLog(delay=0.004)  # every step ~4 ms, whatever it holds
        b = await stepping(log, batch_tokens=BATCH_TOKENS["cuda"])  # and a GPU's budget: room beside the bulk
        for n in (8, 64):  # the cost model sees steps of 8 and of 64 sentences take the same time
            await b.submit(log.searcher, [[2] * 12] * n, OPTS, 30)
        bulk = [  # lengths 4-79: sentences finish at different steps, so the cost model sees different sizes
            asyncio.create_task(b.submit(log.searcher, [[1] * (4 + 5 * i) for i in range(16)], OPTS, 30))
            for _ in range(4)
        ]
        await asyncio.sleep(0.06)
        first = len(log.steps)
        for i in range(3):
            answer = await b.submit(log.searcher, [[7, i, 7, 7, 7, 8]], OPTS, 30)
            assert tokens(answer) == [[8, 7, 7, 7, i, 7]]
        during = log.steps[first:]
        assert all(any(row[0] == 1 for row in step) for step in during), [len(step) for step in during]
        assert sum([7, 0, 7, 7, 7, 8] in step for step in during) == 6  # it ran its six steps, inside the bulk's
        assert [len(tokens(await t)) for t in bulk] == [16] * 4
        await b.stop()

    run(main())


def test_a_small_request_that_would_wait_for_room_in_the_bulk_lane_takes_the_express_lane() -> None:
    """Even where a step costs the same whatever it holds: a bulk lane of very long sources fills its budget
    with a few of them, so a small request inside it would wait for one of them to finish (measured: 96
    one-sentence clients beside a request of 128 huge texts fell to 0.33x their goodput that way)."""

    async def main() -> None:
        log = StepLog(delay=0.002)  # flat steps: the cost model alone would send small requests to the bulk
        b = await stepping(log, batch_tokens=400)
        for n in (1, 6):  # the cost model sees steps of 1 and of 6 sentences take the same time
            await b.submit(log.searcher, [[2] * 12] * n, OPTS, 30)
        huge = asyncio.create_task(b.submit(log.searcher, [[1] * 60] * 8, OPTS, 30))  # 6 fit in 400 tokens
        while not log.steps or not any(row[0] == 1 for row in log.steps[-1]):
            await asyncio.sleep(0.005)
        first = len(log.steps)
        answer = await b.submit(log.searcher, [[7, 7, 8]], OPTS, 30)
        assert tokens(answer) == [[8, 7, 7]]
        ran = [i for i, step in enumerate(log.steps[first:]) if [7, 7, 8] in step]
        assert ran and ran[0] < 10, f"it waited {ran[0] if ran else '?'} steps for room"  # a huge one takes 60
        assert [len(t) for t in tokens(await huge)] == [60] * 8
        await b.stop()

    run(main())


def test_a_one_sentence_request_too_long_for_the_express_lane_does_not_crowd_it() -> None:
    """A running search is padded to its longest source: one run-on sentence in the express lane would leave
    it room for a few one-sentence requests, and the others would wait for it to finish."""

    async def main() -> None:
        log = StepLog(delay=0.001)
        b = await stepping(log, batch_tokens=400)  # the express lane takes sources up to 400 / 64 tokens
        long = asyncio.create_task(b.submit(log.searcher, [[1] * 60], OPTS, 30))  # 60 steps; 6 such fill 400
        while not log.steps:
            await asyncio.sleep(0.001)
        first = len(log.steps)
        small = [[7, i, 8] for i in range(12)]
        answers = await asyncio.gather(*(b.submit(log.searcher, [s], OPTS, 30) for s in small))
        assert [tokens(a) for a in answers] == [[list(reversed(s))] for s in small]
        steps = log.steps[first:]
        assert not [step for step in steps if [1] * 60 in step and any(s in step for s in small)]
        assert max(sum(s in step for s in small) for step in steps) == 12  # all at once, not 5 at a time
        assert tokens(await long) == [[1] * 60]
        await b.stop()

    run(main())


@pytest.mark.parametrize(
    ("large", "clients"),
    [([[1] * 40] * 32, (3, 4, 5)), ([[1] * 120], (3, 4, 5, 3, 4, 5, 3, 4))],
    ids=["32 sentences", "one long sentence beside a busy express lane"],
)
def test_large_requests_keep_their_share_while_small_ones_keep_coming(
    large: list[list[int]], clients: tuple[int, ...]
) -> None:
    """The express lane goes first but cannot starve the bulk: while small requests keep it busy,
    the bulk lane still steps for about (EXPRESS_SLOWDOWN - 1) / EXPRESS_SLOWDOWN of the time (a half),
    also where its steps are much cheaper than the express lane's (it takes several in one iteration)."""

    async def main() -> None:
        log = StepLog(delay=0.001, per_row=0.0003)
        b = await stepping(log, max_wait_s=0.0)  # newcomers join at once: the express lane never drains
        bulk = asyncio.create_task(b.submit(log.searcher, large, OPTS, 30))
        await asyncio.sleep(0.02)
        first = len(log.steps)

        async def client(length: int) -> None:  # clients out of step: the express lane is never empty
            for _ in range(400):
                if bulk.done():
                    return
                await b.submit(log.searcher, [[5] * length], OPTS, 30)

        await asyncio.gather(*(client(n) for n in clients))
        assert bulk.done(), "the large request starved"
        assert len(tokens(bulk.result())) == len(large)
        cost = [log.delay + log.per_row * len(step) for step in log.steps[first:]]
        bulk_time = sum(c for c, step in zip(cost, log.steps[first:], strict=True) if large[0] in step)
        share = (EXPRESS_SLOWDOWN - 1) / EXPRESS_SLOWDOWN  # what the bulk lane earns while the express lane runs
        assert bulk_time / sum(cost) >= 0.8 * share, (bulk_time / sum(cost), share)
        await b.stop()

    run(main())


def test_beside_a_busy_express_lane_a_large_request_is_sized_to_the_bulk_lane_s_share() -> None:
    """A large request whose deadline it could keep with the whole worker, but not with the bulk
    lane's half while small requests keep the express lane busy, is refused at once (503, retry
    elsewhere) instead of taking the worker's time and expiring."""

    async def main() -> None:
        log = StepLog(delay=0.001, per_row=0.0003)
        b = await stepping(log, max_wait_s=0.0)
        await asyncio.gather(*(b.submit(log.searcher, [[2] * 30] * n, OPTS, 30) for n in (8, 16)))  # learn the cost
        done = asyncio.Event()

        async def client(length: int) -> None:
            while not done.is_set():
                await b.submit(log.searcher, [[5] * length], OPTS, 30)

        clients = [asyncio.create_task(client(n)) for n in (3, 4, 5)]
        await asyncio.sleep(0.05)
        # ~37 steps at ~2.2 ms with the whole worker, twice as long beside the express lane
        with pytest.raises(Overloaded):
            await b.submit(log.searcher, [[1] * 30] * 8, OPTS, 0.08)
        assert all([1] * 30 not in step for step in log.steps)
        done.set()
        await asyncio.gather(*clients)
        await b.stop()

    run(main())


def test_a_large_request_that_comes_between_two_small_ones_is_sized_to_the_bulk_lane_s_share() -> None:
    """The express lane is empty for a step or two whenever its clients have just been answered and not yet
    sent again: a large request that comes then is planned as if small ones were still running beside it.
    (Planned with the whole worker, it was admitted, then ran at half pace and expired.)"""

    async def main() -> None:
        log = StepLog(delay=0.001, per_row=0.0003)
        b = await stepping(log, max_wait_s=0.0)
        await asyncio.gather(*(b.submit(log.searcher, [[2] * 30] * n, OPTS, 30) for n in (8, 16)))  # learn the cost
        done = asyncio.Event()

        async def client() -> None:
            while not done.is_set():
                await b.submit(log.searcher, [[5] * 4], OPTS, 30)

        for _ in range(5):  # the express lane is busy, then empty: its one client was just answered
            await b.submit(log.searcher, [[5] * 4], OPTS, 30)
        large = b.submit(log.searcher, [[1] * 30] * 8, OPTS, 0.08)
        small = asyncio.create_task(client())  # and sends again
        with pytest.raises(Overloaded):
            await large
        assert all([1] * 30 not in step for step in log.steps)
        done.set()
        await small
        await b.stop()

    run(main())


def test_out_of_memory_puts_the_running_sentences_back_under_half_the_budget() -> None:
    async def main() -> None:
        log = StepLog(oom_above=2)
        b = await stepping(log, batch_tokens=64)
        results = await asyncio.gather(*(b.submit(log.searcher, [[i, i + 1]], OPTS, 10) for i in range(7)))
        assert [tokens(r) for r in results] == [[[i + 1, i]] for i in range(7)]
        assert all(len(step) <= 2 for step in log.steps)
        assert log.budgets[:3] == [64, 32, 16]  # halved at each out-of-memory
        one = StepLog(oom_above=0)  # even one sentence does not fit: its request fails, with a reason
        b1 = await stepping(one)
        with pytest.raises(BatchFailed) as err:
            await b1.submit(one.searcher, [[1]], OPTS, 10)
        assert err.value.out_of_memory
        await b.stop()
        await b1.stop()

    run(main())


def test_a_failing_step_fails_only_the_requests_in_it() -> None:
    async def main() -> None:
        log = StepLog(fail_on=13)
        b = await stepping(log)
        with pytest.raises(BatchFailed):
            await b.submit(log.searcher, [[13]], OPTS, 10)
        assert tokens(await b.submit(log.searcher, [[1, 2]], OPTS, 10)) == [[2, 1]]
        other = SearchOptions(beam_size=3)  # another key's search runs beside a failing one
        results = await asyncio.gather(
            b.submit(log.searcher, [[13, 1]], OPTS, 10), b.submit(log.searcher, [[4, 5]], other, 10),
            return_exceptions=True,
        )  # fmt: skip
        assert isinstance(results[0], BatchFailed) and tokens(results[1]) == [[5, 4]]  # type: ignore[arg-type]
        await b.stop()

    run(main())


def test_under_a_tight_deadline_steps_are_sized_to_what_can_still_be_answered() -> None:
    """Goodput: 200 one-sentence requests (3 steps each) with 0.4 s deadlines; a step costs 2 ms per sentence.

    All 200 in one running search would take 1.2 s per sentence, answering none. The batcher
    learns the step cost, admits only what stays in time and refuses the rest at once.
    """

    async def main() -> None:
        log = StepLog(per_row=0.002)
        b = await stepping(log)
        await asyncio.gather(*(b.submit(log.searcher, [[1, 2]], OPTS, 5) for _ in range(8)))  # learn the cost
        results = await asyncio.gather(
            *(b.submit(log.searcher, [[i % 7 + 1] * 2], OPTS, 0.4) for i in range(200)), return_exceptions=True
        )
        answered = sum(not isinstance(r, Exception) for r in results)
        refused = sum(isinstance(r, Overloaded) for r in results)
        expired = sum(isinstance(r, DeadlineExceeded) for r in results)
        assert answered >= 25, (answered, refused, expired)
        assert answered + refused + expired == 200
        assert expired <= 10, (answered, refused, expired)
        await b.stop()

    run(main())


def test_batching_off_searches_one_request_at_a_time() -> None:
    async def main() -> None:
        log = StepLog(delay=0.001)
        b = await stepping(log, batching=False)
        answers = await asyncio.gather(*(b.submit(log.searcher, [[i], [i, i]], OPTS, 10) for i in range(1, 6)))
        assert [tokens(a) for a in answers] == [[[i], [i, i]] for i in range(1, 6)]
        assert all(len({s[0] for s in step}) == 1 for step in log.steps)  # every step holds one request's
        assert {len(step) for step in log.steps} >= {2}  # ... both its sentences together
        await b.stop()

    run(main())

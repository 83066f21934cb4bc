"""The batcher's invariants, with a scripted search function standing in for the model."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest
import torch

from nmt.search import Hypothesis, SearchOptions
from service.batcher import Batcher, BatchFailed, CostModel, DeadlineExceeded, Overloaded

OPTS = SearchOptions(beam_size=2)


class FakeSearch:
    """Reverses each source; records batches; can sleep, fail, or run out of memory."""

    def __init__(
        self, delay: float = 0.0, oom_above: int | None = None, fail_on: int | None = None, per_token: float = 0.0
    ) -> None:
        self.delay = delay
        self.per_token = per_token  # seconds per source token, like a real search
        self.oom_above = oom_above
        self.fail_on = fail_on
        self.batches: list[list[list[int]]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(
        self, model_id: str, sources: Sequence[Sequence[int]], options: SearchOptions
    ) -> list[list[Hypothesis]]:
        self.gate.wait()
        if self.oom_above is not None and len(sources) > self.oom_above:
            raise torch.cuda.OutOfMemoryError("fake")
        if self.fail_on is not None and any(self.fail_on in s for s in sources):
            raise RuntimeError("boom")
        self.batches.append([list(s) for s in sources])
        time.sleep(self.delay + self.per_token * sum(len(s) + 1 for s in sources))
        return [[Hypothesis(tokens=list(reversed(s)), score=-float(len(s)), log_prob=0.0)] for s in sources]


def tokens(result: list[list[Hypothesis]]) -> list[list[int]]:
    return [h[0].tokens for h in result]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def started(fake: FakeSearch, **kwargs: object) -> Batcher:
    batcher = Batcher(fake, **{"max_wait_s": 0.01, **kwargs})  # type: ignore[arg-type]
    await batcher.start()
    return batcher


def test_concurrent_requests_share_batches_and_get_their_own_results() -> None:
    async def main() -> None:
        fake = FakeSearch()
        b = await started(fake)
        requests = [[[i, j, 100 + i] for j in range(i % 3 + 1)] for i in range(40)]
        results = await asyncio.gather(*(b.submit("m", r, OPTS, 10) for r in requests))
        for req, res in zip(requests, results, strict=True):
            assert tokens(res) == [list(reversed(s)) for s in req]
        assert len(fake.batches) < 10  # 40 requests, far fewer searches
        await b.stop()

    run(main())


def test_batching_off_runs_one_request_per_search() -> None:
    async def main() -> None:
        fake = FakeSearch()
        b = await started(fake, batching=False)
        await asyncio.gather(*(b.submit("m", [[i], [i, i]], OPTS, 10) for i in range(5)))
        assert len(fake.batches) == 5 and all(len(batch) == 2 for batch in fake.batches)
        await b.stop()

    run(main())


def test_clients_answered_by_a_batch_can_join_the_next_one() -> None:
    """The wait counts from when the worker became free, so closed-loop clients do not split into two halves."""

    async def main() -> None:
        fake = FakeSearch(delay=0.3)
        b = await started(fake, max_wait_s=0.1)
        first = asyncio.create_task(b.submit("m", [[1]], OPTS, 10))
        await asyncio.sleep(0.15)  # the first batch is running
        waiting = asyncio.create_task(b.submit("m", [[2]], OPTS, 10))  # has waited over 0.1 s when it ends
        await first
        await asyncio.sleep(0.03)  # a client answered by the first batch comes back at once
        back = asyncio.create_task(b.submit("m", [[3]], OPTS, 10))
        await asyncio.gather(waiting, back)
        assert fake.batches == [[[1]], [[2], [3]]]
        await b.stop()

    run(main())


def test_a_huge_request_does_not_starve_a_small_one() -> None:
    async def main() -> None:
        fake = FakeSearch(delay=0.01)
        b = await started(fake, batch_tokens=40)
        big = asyncio.create_task(b.submit("m", [[1, 2, 3]] * 200, OPTS, 30))
        await asyncio.sleep(0.03)
        small = await b.submit("m", [[7, 8]], OPTS, 30)
        assert tokens(small) == [[8, 7]]
        assert not big.done()  # the small request overtook most of the big one
        assert len(tokens(await big)) == 200
        await b.stop()

    run(main())


def test_different_options_never_share_a_batch() -> None:
    async def main() -> None:
        fake = FakeSearch()
        b = await started(fake)
        wide = SearchOptions(beam_size=5)
        await asyncio.gather(
            b.submit("m", [[1]], OPTS, 10), b.submit("m", [[2]], wide, 10), b.submit("x", [[3]], OPTS, 10)
        )
        assert sorted(fake.batches) == [[[1]], [[2]], [[3]]]
        await b.stop()

    run(main())


def test_full_queue_refuses_at_once() -> None:
    async def main() -> None:
        fake = FakeSearch()
        fake.gate.clear()  # the worker blocks on its first batch
        b = await started(fake, queue_limit=10, batch_tokens=4)
        first = asyncio.create_task(b.submit("m", [[1]] * 10, OPTS, 30))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(b.submit("m", [[2]] * 2, OPTS, 30))  # 8 + 2 waiting: full
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded):
            await b.submit("m", [[3]] * 5, OPTS, 30)
        fake.gate.set()
        assert len(await first) == 10 and len(await second) == 2
        assert b.queued == 0
        await b.stop()

    run(main())


def test_cancelled_and_expired_requests_leave_the_queue() -> None:
    async def main() -> None:
        fake = FakeSearch()
        fake.gate.clear()
        b = await started(fake, batch_tokens=4)
        blocker = asyncio.create_task(b.submit("m", [[1]], OPTS, 30))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(b.submit("m", [[5, 5]] * 50, OPTS, 30))
        with pytest.raises(DeadlineExceeded):
            await b.submit("m", [[6, 6]] * 3, OPTS, 0.05)
        await asyncio.sleep(0.01)
        gone.cancel()
        await asyncio.sleep(0.01)
        assert b.queued == 0
        fake.gate.set()
        await blocker
        await asyncio.sleep(0.05)
        searched = [s for batch in fake.batches for s in batch]
        assert [5, 5] not in searched and [6, 6] not in searched
        await b.stop()

    run(main())


def test_a_failing_batch_fails_only_its_requests() -> None:
    async def main() -> None:
        fake = FakeSearch(fail_on=13)
        b = await started(fake, max_wait_s=0.0)
        with pytest.raises(BatchFailed):
            await b.submit("m", [[13]], OPTS, 10)
        assert tokens(await b.submit("m", [[1, 2]], OPTS, 10)) == [[2, 1]]
        await b.stop()

    run(main())


def test_out_of_memory_splits_the_batch() -> None:
    async def main() -> None:
        fake = FakeSearch(oom_above=2)
        b = await started(fake)
        result = await b.submit("m", [[i, i + 1] for i in range(7)], OPTS, 10)
        assert tokens(result) == [[i + 1, i] for i in range(7)]
        assert all(len(batch) <= 2 for batch in fake.batches)
        await b.stop()

    run(main())


def test_a_client_hanging_up_during_the_batching_wait_does_not_stop_the_worker() -> None:
    """`curl --max-time 0.005`: the request leaves while the worker gathers; the worker must go on."""

    async def main() -> None:
        fake = FakeSearch()
        b = await started(fake, max_wait_s=0.2)
        for _ in range(3):
            gone = asyncio.create_task(b.submit("m", [[1, 2]], OPTS, 10))
            await asyncio.sleep(0.01)
            gone.cancel()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        assert b.healthy
        assert tokens(await asyncio.wait_for(b.submit("m", [[3, 4]], OPTS, 10), 2)) == [[4, 3]]
        assert fake.batches == [[[3, 4]]]  # nothing searched for the requests that left
        await b.stop()

    run(main())


def test_a_failing_worker_is_restarted_counted_and_fails_only_its_batch() -> None:
    async def main() -> None:
        fake = FakeSearch()
        crashes: list[BaseException] = []
        b = Batcher(fake, max_wait_s=0.0, on_crash=crashes.append)
        await b.start()
        real_execute = b._execute
        calls = 0

        async def broken_once(batch, loop):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("a bug in the worker")
            await real_execute(batch, loop)

        b._execute = broken_once  # type: ignore[method-assign]
        with pytest.raises(BatchFailed):
            await asyncio.wait_for(b.submit("m", [[1]], OPTS, 10), 2)
        assert len(crashes) == 1 and "a bug" in str(crashes[0])
        assert tokens(await asyncio.wait_for(b.submit("m", [[2, 3]], OPTS, 10), 2)) == [[3, 2]]
        assert b.healthy
        await b.stop()
        assert not b.healthy

    run(main())


def test_the_deadline_counts_from_arrival() -> None:
    async def main() -> None:
        fake = FakeSearch(delay=0.2)
        b = await started(fake, max_wait_s=0.0)
        now = asyncio.get_running_loop().time()
        with pytest.raises(DeadlineExceeded):
            await b.submit("m", [[1]], OPTS, 1.0, arrived=now - 1.0)  # spent its time before reaching us
        with pytest.raises(DeadlineExceeded):
            await b.submit("m", [[1]], OPTS, 1.0, arrived=now - 0.9)  # 0.1 s left, the search takes 0.2
        assert tokens(await b.submit("m", [[1]], OPTS, 1.0, arrived=now)) == [[1]]
        await b.stop()

    run(main())


def test_under_a_tight_deadline_work_is_sized_to_what_can_still_be_answered() -> None:
    """Goodput: 200 one-sentence requests (5 tokens) with 0.4 s deadlines and 2 ms per token of search.

    At most 40 can be answered in 0.4 s. Searching all 200 at once (2 s) would answer none; the
    batcher learns the speed, refuses at once what cannot make it, and never searches for a
    request that expired.
    """

    async def main() -> None:
        fake = FakeSearch(per_token=0.002)
        b = await started(fake, max_wait_s=0.01)
        await b.submit("m", [[1, 2, 3, 4]], OPTS, 5)  # one measured batch teaches the speed
        fake.batches.clear()
        results = await asyncio.gather(
            *(b.submit("m", [[i % 7 + 1] * 4], OPTS, 0.4) for i in range(200)), return_exceptions=True
        )
        answered = sum(not isinstance(r, Exception) for r in results)
        refused = sum(isinstance(r, Overloaded) for r in results)
        expired = sum(isinstance(r, DeadlineExceeded) for r in results)
        searched = sum(len(batch) for batch in fake.batches)
        assert answered >= 25, (answered, refused, expired)
        assert answered + refused + expired == 200
        assert searched <= answered + 10  # hardly any search for a request that did not get its answer
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

"""The running searches (lanes) and the rule that shares the worker between them.

Each (model, search options) key has at most two lanes: a bulk lane, and an express lane for
requests of at most `EXPRESS_SENTENCES` short sentences (`EXPRESS_ROOM`). On a CPU a decoder step
costs more the more sentences it holds, so a one-sentence request stepping inside a batch of a
hundred would take ten times as long as alone. While an express lane runs, its bulk lane steps
only on the time the express steps earn it (`EXPRESS_SLOWDOWN`; as many steps at once as they
earned, up to `BULK_STEPS`): a small request is slowed down about that much by large ones, and
large ones keep half the worker, in large efficient steps. Where a step costs about the same
whatever it holds (a GPU), a small request joins the bulk lane instead if it has room for it
(`Lanes.express_pays`).

`Lanes` also learns what work costs (`CostModel`): a key's step seconds per running sentence, a
lane's admission seconds per source position, and how many steps a sentence takes per source
token; the batcher plans admissions and deadlines with these.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from nmt.batching import fits
from nmt.search import Hypothesis
from service.costs import CostModel
from service.jobs import Key, Running, SchedulerFactory, Slot

STEPS_PER_TOKEN = 1.2  # decoder steps a sentence takes per padded source token, until measured
EXPRESS_SENTENCES = 4  # requests of at most this many sentences run in their key's express lane,
EXPRESS_ROOM = 64  # ... if their longest source leaves it room for this many (a search is padded to its longest)
EXPRESS_SLOWDOWN = 2.0  # ... whose steps, with the bulk steps between them, take at most this many times their own
EXPRESS_GAP = 4.0  # ... and for deadlines still runs this many of its steps' time after its last (between requests)
BULK_STEPS = 8  # most steps a bulk lane beside an express lane takes in one worker iteration, and saves up for

LaneKey = tuple[Key, bool]  # a key's express lane (True) or bulk lane (False)


@dataclass
class Lane:
    """One running search, and the step at which each of its sentences joined."""

    search: Running
    members: dict[Slot, int] = field(default_factory=dict)
    admitted: float = -math.inf  # event-loop time of its last admission
    allowance: float = 0.0  # a bulk lane beside a running express lane: seconds it may step before waiting again
    peak: int = 0  # the most sentences one of its steps has held (its tail is no guide to the next arrivals)
    admissions: CostModel = field(default_factory=CostModel)  # an admission's seconds per source position, by sentences
    longest: float = 0.0  # recent admissions' longest source (a moving average)


@dataclass
class Outcome:
    """What one lane's iteration on the worker gave back to the event loop."""

    finished: list[tuple[Slot, list[Hypothesis]]]
    sentences: int = 0
    seconds: float = 0.0
    error: BaseException | None = None
    steps: int = 1
    admitted: int = 0  # sentences encoded and added before the steps
    longest: int = 0  # ... the longest of them (padded source tokens)
    admit_seconds: float = 0.0  # ... and how long that took (part of `seconds`)


Work = tuple[Lane, list[Slot], list[tuple[Slot, Sequence[int]]], int]  # lane, leaving, joining, steps


def advance(work: list[Work]) -> list[Outcome]:
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
            outcomes.append(Outcome(finished, sentences, seconds, steps=taken, admitted=len(joining),
                                    longest=longest, admit_seconds=admit_seconds))  # fmt: skip
        except Exception as err:
            outcomes.append(Outcome([], error=err))
    return outcomes


class Lanes:
    """The running lanes of every key, what their work costs, and whose turn it is to step."""

    def __init__(self, make_scheduler: SchedulerFactory, batch_tokens: int) -> None:
        self.make_scheduler = make_scheduler
        self.batch_tokens = batch_tokens
        self.lanes: dict[LaneKey, Lane] = {}
        self.budgets: dict[LaneKey, int] = {}  # a lane's budget after out-of-memory
        self.costs: dict[Key, CostModel] = {}  # step seconds per running sentence
        self.steps_per_token: dict[Key, float] = {}  # learnt from finished sentences
        self.express_stepped: dict[Key, float] = {}  # event-loop time a key's express lane last stepped

    def forget(self, searcher: object) -> None:
        """Drop what was learnt about `searcher` (an unloaded model), so nothing here keeps it in memory."""
        for lk in [lk for lk in self.budgets if lk[0][0] is searcher]:
            del self.budgets[lk]
        for table in (self.costs, self.steps_per_token, self.express_stepped):
            for key in [key for key in table if key[0] is searcher]:
                del table[key]

    def cost(self, key: Key) -> CostModel:
        """A key's step cost model."""
        return self.costs.setdefault(key, CostModel())

    def lane(self, lk: LaneKey) -> Lane:
        """The lane `lk`, started (empty) if it is not running."""
        lane = self.lanes.get(lk)
        if lane is None:
            budget = self.budgets.get(lk, self.batch_tokens)
            lane = self.lanes[lk] = Lane(self.make_scheduler(lk[0][0], lk[0][1], budget))
        return lane

    def small(self, sources: Sequence[Sequence[int]]) -> bool:
        """Whether a request is small enough for the express lane: a few sentences, none so long that the
        lane, padded to it, would have room for fewer than EXPRESS_ROOM others (one run-on sentence of 250
        subwords in a 4,096-token budget left room for 15: the one-sentence requests beside it waited)."""
        longest = max(len(s) for s in sources) + 1
        return len(sources) <= EXPRESS_SENTENCES and fits(EXPRESS_ROOM, longest, self.batch_tokens)

    def express_pays(self, key: Key, sources: Sequence[Sequence[int]]) -> bool:
        """Whether a small request needs the express lane: the running bulk lane, as full as it has been,
        has no room beside it for EXPRESS_ROOM such requests (they would be padded to its longest source
        and wait for room: a few very long sources fill its budget), or each of its steps there would take
        over EXPRESS_SLOWDOWN times one of its own. On a CPU a step's time grows with its sentences, so it
        does; on a GPU it hardly grows, and the request joins the bulk lane, which keeps the whole worker."""
        bulk, cost = self.lanes.get((key, False)), self.cost(key)
        alone = cost.estimate(len(sources))
        if bulk is None or not bulk.peak or alone <= 0:  # no bulk step yet: nothing to judge its size by
            return True
        beside_peak = max(bulk.peak - bulk.search.running, 0) + EXPRESS_ROOM
        if not bulk.search.room(beside_peak, max(len(s) for s in sources)):
            return True
        return cost.estimate(bulk.peak + len(sources)) > EXPRESS_SLOWDOWN * alone

    def beside_express(self, lk: LaneKey) -> bool:
        """Whether `lk` is a bulk lane whose key's express lane runs: it steps only on what that lane earns it."""
        key, express = lk
        return not express and (key, True) in self.lanes

    def resting(self) -> set[LaneKey]:
        """Bulk lanes that skip this iteration: their express lane runs and has not yet earned them a step."""
        return {
            lk for lk, lane in self.lanes.items()
            if self.beside_express(lk) and lane.allowance < self.cost(lk[0]).estimate(lane.search.running)
        }  # fmt: skip

    def bulk_step(self, key: Key, lane: Lane) -> float:
        """Seconds one step of a bulk lane should take now (at least one sentence): what its allowance buys."""
        return self.cost(key).estimate(max(lane.search.running, 1))

    def steps(self, lk: LaneKey, lane: Lane) -> int:
        """Steps a lane takes in this iteration: one, or for a bulk lane beside its express lane as many as
        its allowance covers (up to BULK_STEPS). One step per iteration left a cheap bulk lane (one long
        sentence, 2 ms steps beside 5-25 ms express iterations) far below its share."""
        step = self.bulk_step(lk[0], lane)
        if not self.beside_express(lk) or step <= 0:
            return 1
        return max(1, min(BULK_STEPS, int(lane.allowance / step)))

    def account(self, stepped: list[tuple[LaneKey, Lane]], outcomes: list[Outcome]) -> None:
        """An express step earns its bulk lane EXPRESS_SLOWDOWN - 1 times its own time; a bulk step spends its time."""
        for ((key, express), _), outcome in zip(stepped, outcomes, strict=True):
            bulk = self.lanes.get((key, False))
            if bulk is None:
                continue
            if express:  # saved up for at most BULK_STEPS of its steps, so it cannot hold the worker long later
                most = BULK_STEPS * self.bulk_step(key, bulk)
                bulk.allowance = min(bulk.allowance + (EXPRESS_SLOWDOWN - 1) * outcome.seconds, max(most, 0.0))
            elif self.beside_express((key, False)):
                bulk.allowance -= outcome.seconds
            else:
                bulk.allowance = 0.0  # no express lane: nothing to save up for

    def pace(self, lk: LaneKey, now: float) -> float:
        """Seconds of the worker per second of a lane's own steps: a bulk lane beside a running express lane
        gets only (EXPRESS_SLOWDOWN - 1) / EXPRESS_SLOWDOWN of the worker, so its steps come that much slower.

        An express lane that stepped within EXPRESS_GAP of its steps' time counts as running: it is empty
        whenever its clients were just answered and have not yet sent again, and a large request planned
        in that gap with the whole worker was admitted, then ran at half pace and expired."""
        key, express = lk
        recent = now - self.express_stepped.get(key, -math.inf) <= EXPRESS_GAP * self.cost(key).estimate(1)
        busy = self.beside_express(lk) or (not express and recent)
        return EXPRESS_SLOWDOWN / max(EXPRESS_SLOWDOWN - 1, 1e-9) if busy else 1.0

    def deadline_cap(self, lk: LaneKey, lane: Lane, now: float) -> float:
        """Most sentences the search may run so that every running request still in time stays in time."""
        cap = math.inf
        pace = self.pace(lk, now)
        for job in {job for job, _ in lane.members}:
            left = (job.deadline - now) / (pace * max(1, job.finish_step - lane.search.steps))
            most = self.cost(lk[0]).most(left)
            if most >= lane.search.running:  # a request late already does not hold the others back
                cap = min(cap, most)
        return cap

    def learn(self, lk: LaneKey, lane: Lane, outcome: Outcome) -> None:
        """Fold one iteration's timings into the cost models."""
        if outcome.admitted:  # the encoder steps through the longest source: its cost is per position
            lane.admissions.observe(outcome.admitted, outcome.admit_seconds / outcome.longest)
            lane.longest = 0.9 * lane.longest + 0.1 * outcome.longest if lane.longest else outcome.longest
        if outcome.sentences:
            lane.peak = max(lane.peak, outcome.sentences)
            # several steps: sizes as at the first (they only shrink)
            self.cost(lk[0]).observe(outcome.sentences, outcome.seconds / outcome.steps)

    def finished(self, key: Key, lane: Lane, slot: Slot) -> None:
        """A sentence left its lane: learn how many steps a sentence takes per source token."""
        joined = lane.members.pop(slot, None)
        if joined is not None:
            job, index = slot
            taken = (lane.search.steps - joined) / (len(job.sources[index]) + 1)
            self.steps_per_token[key] = 0.98 * self.steps_per_token.get(key, STEPS_PER_TOKEN) + 0.02 * taken

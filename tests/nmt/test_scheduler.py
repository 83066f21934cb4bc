"""The iteration-level scheduler: sources join a running search under the batching rule and leave when done."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from nmt.scheduler import Scheduler
from nmt.search import Hypothesis, SearchOptions
from nmt.translator import Translator
from tests.cpu import cpu_description
from tests.synthetic import SYMBOLS
from training.trainer import TrainResult

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def translator(reverse_model: TrainResult) -> Translator:
    return Translator.from_dir(reverse_model.model_dir, device="cpu", precision="int8")


def _sources(translator: Translator, n: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(SYMBOLS) for _ in range(rng.randint(0, 12))) for _ in range(n)]
    return translator.encode(texts)


def _trickle(translator: Translator, sources: list[list[int]], options: SearchOptions, budget: int) -> tuple[
    dict[int, list[Hypothesis]], int
]:  # fmt: skip
    """Answers when a few sources join the running search at each step, within `budget`; and the steps taken."""
    scheduler: Scheduler[int] = Scheduler(translator, options, batch_tokens=budget)
    found: dict[int, list[Hypothesis]] = {}
    waiting = list(enumerate(sources))
    steps = 0
    while waiting or scheduler.running:
        admitting: list[tuple[int, list[int]]] = []
        while waiting and len(admitting) < 3:  # a few arrive at each step, while the budget has room
            group = [s for _, s in admitting] + [waiting[0][1]]
            if not scheduler.room(len(group), max(len(s) for s in group)):
                break
            admitting.append(waiting.pop(0))
        found.update(scheduler.admit(admitting))
        assert scheduler.running * max(scheduler.lengths.values(), default=0) <= budget  # the batching rule
        found.update(scheduler.step())
        steps += 1
        state = scheduler.search.state  # the memory holds no padding beyond the longest source still running
        assert state is None or state.mask.size(1) == scheduler.longest
    return found, steps


def test_sources_that_trickle_in_get_the_answers_of_a_whole_batch(translator: Translator) -> None:
    options = SearchOptions(beam_size=4, n_best=2)
    sources = _sources(translator, 40, seed=1)
    expected = translator.translate_ids(sources, options)
    found, steps = _trickle(translator, sources, options, budget=60)
    assert steps > 10
    got = [[(h.tokens, h.score) for h in found[i]] for i in range(len(sources))]
    assert got == [[(h.tokens, h.score) for h in hyps] for hyps in expected], f"on {cpu_description()}"


GERMAN = [
    "Ein Mann fährt mit dem Fahrrad über eine Brücke.",
    "Zwei Kinder spielen im Sand am Strand, während ihre Mutter zusieht.",
    "Hund.",
    "Eine Gruppe von Menschen steht vor einem großen Gebäude und wartet auf den Bus, der zu spät kommt.",
    "Die Frau liest ein Buch.",
    "Ein Junge in einem roten Hemd springt in einen See.",
]


def test_the_shipped_model_with_its_shortlist_answers_the_same_when_sentences_trickle_in() -> None:
    """A running search's shortlists share the whole generator, a sorted batch's their union: same bits."""
    shipped = Translator.from_dir(ROOT / "models" / "de-en", device="cpu")
    assert shipped.shortlist is not None
    options = SearchOptions(beam_size=5)
    sources = shipped.encode(GERMAN * 2)
    expected = shipped.translate_ids(sources, options)
    found, _ = _trickle(shipped, sources, options, budget=120)
    got = [[(h.tokens, h.score) for h in found[i]] for i in range(len(sources))]
    assert got == [[(h.tokens, h.score) for h in hyps] for hyps in expected], f"on {cpu_description()}"


def test_a_short_sentence_that_joins_late_leaves_before_a_long_one(translator: Translator) -> None:
    scheduler: Scheduler[str] = Scheduler(translator, SearchOptions(beam_size=3), batch_tokens=1000)
    [long, short] = translator.encode(["a b c d e f g h i j k l", "b"])
    scheduler.admit([("long", long)])
    order = [key for _ in range(2) for key, _ in scheduler.step()]
    scheduler.admit([("short", short)])
    while scheduler.running:
        order += [key for key, _ in scheduler.step()]
    assert order == ["short", "long"]


def test_room_and_drop(translator: Translator) -> None:
    scheduler: Scheduler[int] = Scheduler(translator, SearchOptions(beam_size=2), batch_tokens=20)
    [five] = translator.encode(["a b c d e"])  # 6 padded tokens with eos
    assert scheduler.room(3, len(five)) and not scheduler.room(4, len(five))
    assert scheduler.room(1, 100)  # an idle search takes any one source
    scheduler.admit([(0, five), (1, five), (2, five)])
    assert not scheduler.room(1, len(five)) and scheduler.longest == 6
    scheduler.step()
    scheduler.drop({0, 1})  # expired or abandoned: gone at once, never answered
    assert scheduler.running == 1 and scheduler.room(1, len(five)) and not scheduler.room(1, 10)
    answered = [key for _ in range(40) for key, _ in scheduler.step()]
    assert answered == [2]
    assert scheduler.admit([(9, [])]) == [(9, [Hypothesis(tokens=[], score=0.0, log_prob=0.0)])]

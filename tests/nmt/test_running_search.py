"""BeamSearch as a running batch: sentences join at any step and leave at once, and nobody's answer changes."""

from __future__ import annotations

import random
import shutil

import pytest
import torch

from nmt.search import BeamSearch, Hypothesis, SearchOptions
from nmt.tokenizer import BOS_ID, EOS_ID
from nmt.translator import Translator
from tests.cpu import cpu_description
from tests.synthetic import SYMBOLS
from training.shortlist import main as build_shortlist
from training.trainer import TrainResult


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(SYMBOLS) for _ in range(rng.randint(1, 12))) for _ in range(n)]


@pytest.fixture(scope="module", params=["whole vocabulary", "shortlist"])
def translator(request, tmp_path_factory, reverse_model: TrainResult, reverse_corpus) -> Translator:
    """The reversal model in int8 (bitwise batch-invariant), with and without a shortlist."""
    model = tmp_path_factory.mktemp("running") / "model"
    shutil.copytree(reverse_model.model_dir, model)
    if request.param == "shortlist":
        src, tgt = reverse_corpus["train"]
        assert build_shortlist(["--model", str(model), "--src", str(src), "--tgt", str(tgt), "--frequent", "2"]) == 0
    return Translator.from_dir(model, device="cpu", precision="int8", shortlist="on")


def _admit(search: BeamSearch[int], translator: Translator, sources: list[list[int]], keys: list[int]) -> None:
    state = translator.start_state(sources, list(range(len(sources))), search.options)
    search.admit(state, translator.output_caps(sources, list(range(len(sources)))), keys)


def _answers(found: dict[int, list[Hypothesis]]) -> dict[int, list[tuple[list[int], float, list | None]]]:
    """Tokens, score and attention (with return_attention) of each hypothesis."""
    return {key: [(h.tokens, h.score, None if h.attention is None else h.attention.tolist()) for h in hyps]
            for key, hyps in found.items()}  # fmt: skip


def _alone(translator: Translator, sources: list[list[int]], options: SearchOptions) -> dict[int, list]:
    found = {}
    for key, source in enumerate(sources):
        search: BeamSearch[int] = BeamSearch(translator.model.step, BOS_ID, EOS_ID, options)
        _admit(search, translator, [source], [key])
        while search.sentences:
            found.update(search.step())
    return _answers(found)


@pytest.mark.parametrize("beam", [2, 5])
@pytest.mark.parametrize("constrained", [False, True], ids=["free", "min length, no repeated bigrams"])
def test_a_sentence_that_joins_at_any_step_gets_its_answer_alone(
    translator: Translator, beam: int, constrained: bool
) -> None:
    """Whatever the search options: the constraints read each row's own history, right-aligned in the batch."""
    options = SearchOptions(beam_size=beam, n_best=2, return_attention=True)
    if constrained:
        options = SearchOptions(beam_size=beam, min_length=9, no_repeat_ngram=2, length_penalty="gnmt", alpha=1.0)
    with torch.inference_mode():
        sources = translator.encode(_texts(12, seed=beam))
        expected = _alone(translator, sources, options)
        for join_at in (0, 1, 3, 6):
            search: BeamSearch[int] = BeamSearch(translator.model.step, BOS_ID, EOS_ID, options)
            _admit(search, translator, sources[:8], list(range(8)))  # short and long ones already running
            found: dict[int, list[Hypothesis]] = {}
            for step in range(200):
                if step == join_at:  # the rest join mid-search; a longer source pads everyone's memory
                    _admit(search, translator, sources[8:], list(range(8, 12)))
                if not search.sentences:
                    break
                found.update(search.step())
            assert _answers(found) == expected, f"joining at step {join_at} changed answers on {cpu_description()}"


def test_a_dropped_sentence_leaves_at_once_and_the_others_do_not_notice(translator: Translator) -> None:
    options = SearchOptions(beam_size=4)
    with torch.inference_mode():
        sources = translator.encode(["a b c d e f g h i j k l", "b c", "c d e f", "d e f g h i"])
        expected = _alone(translator, sources, options)
        search: BeamSearch[int] = BeamSearch(translator.model.step, BOS_ID, EOS_ID, options)
        _admit(search, translator, sources, [0, 1, 2, 3])
        found: dict[int, list[Hypothesis]] = {}
        found.update(search.step())
        search.drop({0, 2})  # their requests expired or hung up
        assert search.sentences == 2 - sum(k in found for k in (1, 3))
        while search.sentences:
            found.update(search.step())
    assert set(found) == {1, 3}
    assert _answers(found) == {k: expected[k] for k in (1, 3)}
    search.drop({99})  # nothing running: nothing to do

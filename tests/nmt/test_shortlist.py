"""Vocabulary shortlists: built from training pairs, stored in the model directory, searched per sentence."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import stat
from pathlib import Path

import pytest
import torch

from nmt.errors import ModelLoadError
from nmt.search import SearchOptions
from nmt.shortlist import SHORTLIST_FILE, Shortlist, exact_log_softmax
from nmt.tokenizer import EOS_ID, PAD_ID
from nmt.translator import Translator
from tests.cpu import cpu_description
from tests.synthetic import SYMBOLS
from training.shortlist import build_shortlist, main
from training.trainer import TrainResult


def test_candidates_are_the_most_specific_co_occurrences_and_frequent_pieces_join_every_list() -> None:
    # source 10 always comes with target 20; target 30 is in every sentence (frequent, not specific)
    sources = [[10, 11], [10, 12], [11, 12], [10]]
    targets = [[20, 30], [20, 30], [21, 30], [20, 30]]
    shortlist = build_shortlist(sources, targets, 40, 40, frequent=1, candidates=1)
    assert shortlist.frequent.tolist() == [30]
    assert shortlist.candidates[10].tolist() == [20]
    assert shortlist.candidates[13].tolist() == [-1]  # never seen: no candidates
    assert shortlist.ids_for([10]) == [EOS_ID, 20, 30]
    assert shortlist.ids_for([]) == [EOS_ID, 30]
    joint = build_shortlist(sources, targets, 40, 40, frequent=1, candidates=1, joint=True)
    assert joint.ids_for([10, 13]) == [EOS_ID, 10, 13, 20, 30]  # a joint vocabulary may copy source pieces


def test_a_list_never_holds_padding_and_starts_with_eos() -> None:
    shortlist = Shortlist(torch.tensor([PAD_ID, 5, EOS_ID]), torch.tensor([[PAD_ID, 7], [6, -1]]))
    assert shortlist.ids_for([0, 1, 99]) == [EOS_ID, 5, 6, 7]


def test_exact_log_softmax_ignores_padding_and_matches_log_softmax() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 37) * 5
    exact = exact_log_softmax(logits)
    assert torch.allclose(exact, torch.log_softmax(logits, dim=-1), atol=1e-5)
    for pad in (1, 3, 16, 100):
        padded = torch.cat([logits, torch.full((6, pad), float("-inf"))], dim=1)
        assert torch.equal(exact_log_softmax(padded)[:, :37], exact), f"padding {pad} on {cpu_description()}"


@pytest.fixture
def shortlisted(tmp_path: Path, reverse_model: TrainResult, reverse_corpus: dict[str, tuple[Path, Path]]) -> Path:
    """A copy of the reversal model with a shortlist built by the command line tool."""
    model = tmp_path / "model"
    shutil.copytree(reverse_model.model_dir, model)
    src, tgt = reverse_corpus["train"]
    args = ["--model", str(model), "--src", str(src), "--tgt", str(tgt), "--frequent", "2", "--candidates", "1"]
    assert main(args) == 0
    return model


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(SYMBOLS) for _ in range(rng.randint(1, 9))) for _ in range(n)]


def test_the_command_line_tool_writes_a_readable_shortlist(shortlisted: Path) -> None:
    path = shortlisted / SHORTLIST_FILE
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    loaded = Shortlist.load(path)
    assert loaded.copy_source and loaded.frequent.numel() == 2 and loaded.candidates.size(1) == 1


def test_the_command_line_tool_refuses_misaligned_data(tmp_path: Path, shortlisted: Path, capsys) -> None:
    (tmp_path / "a").write_text("a b\nc\n", encoding="utf-8")
    (tmp_path / "b").write_text("b a\n", encoding="utf-8")
    assert main(["--model", str(shortlisted), "--src", str(tmp_path / "a"), "--tgt", str(tmp_path / "b")]) == 1
    assert "has 2 lines" in capsys.readouterr().err


@pytest.mark.parametrize("precision", ["int8", "fp32"])
@pytest.mark.parametrize("beam", [1, 3])
def test_shortlisted_search_translates_like_the_whole_vocabulary_and_ignores_its_batch(
    shortlisted: Path, precision: str, beam: int
) -> None:
    fast = Translator.from_dir(shortlisted, device="cpu", precision=precision)
    whole = Translator.from_dir(shortlisted, device="cpu", precision=precision, shortlist="off")
    assert fast.shortlist is not None and whole.shortlist is None
    texts = _texts(24, seed=beam)
    options = SearchOptions(beam_size=beam, n_best=beam)
    alone = [fast.translate([t], options)[0] for t in texts]
    assert [t.text for t in alone] == [t.text for t in whole.translate(texts, options)]
    for budget in (10_000, 64, 16):
        together = fast.translate(texts, options, batch_tokens=budget)
        got = [(t.text, t.score, [a.text for a in t.alternatives]) for t in together]
        want = [(t.text, t.score, [a.text for a in t.alternatives]) for t in alone]
        if precision == "fp32":  # BLAS picks fp32 kernels by batch size: scores agree to ~1e-6
            assert [g[0] for g in got] == [w[0] for w in want]
            assert [g[1] for g in got] == pytest.approx([w[1] for w in want], abs=1e-5)
        else:
            assert got == want, f"budget {budget} changes answers on {cpu_description()}"


def test_constraints_hold_over_a_shortlist(shortlisted: Path) -> None:
    translator = Translator.from_dir(shortlisted, device="cpu")
    [blocked] = translator.translate(["a b a b a b"], SearchOptions(beam_size=3, no_repeat_ngram=2))
    words = blocked.text.split()
    bigrams = list(itertools.pairwise(words))
    assert len(bigrams) == len(set(bigrams))
    [long] = translator.translate(["a"], SearchOptions(beam_size=2, min_length=4))
    assert len(long.text.split()) >= 4


def test_a_beam_wider_than_the_shortest_list_searches_the_whole_vocabulary(shortlisted: Path) -> None:
    translator = Translator.from_dir(shortlisted, device="cpu")
    whole = Translator.from_dir(shortlisted, device="cpu", shortlist="off")
    assert translator.shortlist is not None and translator.shortlist.shortest < 2 * 8
    options = SearchOptions(beam_size=8)
    assert translator.translate(["a b c"], options) == whole.translate(["a b c"], options)


def test_a_corrupt_shortlist_is_a_load_error(shortlisted: Path) -> None:
    (shortlisted / SHORTLIST_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ModelLoadError, match="not a valid shortlist"):
        Translator.from_dir(shortlisted, device="cpu")

"""Translator: batch invariance, beam vs greedy, n-best, limits, order, and odd inputs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from nmt.batching import BATCH_TOKENS, default_batch_tokens
from nmt.errors import InputError
from nmt.model import Seq2Seq
from nmt.search import SearchOptions
from nmt.tokenizer import Tokenizer
from nmt.translator import LengthLimits, Translator, clean_text
from tests.cpu import cpu_description
from tests.synthetic import SYMBOLS
from training.trainer import TrainResult


@pytest.fixture(scope="module")
def trained(reverse_model: TrainResult) -> Translator:
    return Translator.from_dir(reverse_model.model_dir, device="cpu")


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(SYMBOLS) for _ in range(rng.randint(1, 12))) for _ in range(n)]


@pytest.mark.parametrize("beam", [1, 3, 5])
@pytest.mark.parametrize("which", ["trained", "random"])
def test_batch_invariance(
    beam: int, which: str, trained: Translator, tiny_model: Seq2Seq, tokenizer: Tokenizer
) -> None:
    """A sentence gets the same translation and score alone or in any batch."""
    translator = trained if which == "trained" else Translator(tiny_model, tokenizer)
    texts = _texts(24, seed=beam)
    options = SearchOptions(beam_size=beam)
    alone = [translator.translate([t], options)[0] for t in texts]
    for budget in (10_000, 64, 16):
        together = translator.translate(texts, options, batch_tokens=budget)
        where = f"budget {budget} on {cpu_description()}"
        assert [t.text for t in together] == [t.text for t in alone], where
        assert [t.score for t in together] == pytest.approx([t.score for t in alone], abs=1e-5), where


def test_beam_one_is_greedy_and_wider_beams_score_at_least_greedy(tiny_model: Seq2Seq, tokenizer: Tokenizer) -> None:
    translator = Translator(tiny_model, tokenizer)
    texts = _texts(30, seed=7)
    greedy = translator.translate(texts, SearchOptions(beam_size=1))
    for penalty in ("none", "average", "gnmt"):
        reference = translator.translate(texts, SearchOptions(beam_size=1, length_penalty=penalty))
        assert [t.text for t in reference] == [t.text for t in greedy]
        for beam in (2, 5):
            wider = translator.translate(texts, SearchOptions(beam_size=beam, length_penalty=penalty))
            for w, g in zip(wider, reference, strict=True):
                assert w.score >= g.score - 1e-5


def test_trained_model_beam_keeps_the_right_answer(trained: Translator) -> None:
    texts = ["a b c d", "l k j", "e e f g h i"]
    out = trained.translate(texts, SearchOptions(beam_size=5, n_best=3))
    assert [t.text for t in out] == ["d c b a", "j k l", "i h g f e e"]
    for t in out:
        assert len(t.alternatives) == 2
        scores = [t.score] + [a.score for a in t.alternatives]
        assert scores == sorted(scores, reverse=True)
        assert len({t.text, *(a.text for a in t.alternatives)}) == 3


def test_output_length_is_capped(tiny_model: Seq2Seq, tokenizer: Tokenizer) -> None:
    limits = LengthLimits(ratio=1.0, extra=2, hard_cap=5)
    translator = Translator(tiny_model, tokenizer, limits=limits)
    for beam in (1, 4):
        for text, t in zip(_texts(20, 3), translator.translate(_texts(20, 3), SearchOptions(beam)), strict=True):
            n_src = len(tokenizer.encode_src([text])[0])
            assert len(tokenizer.encode_tgt([t.text])[0]) <= min(n_src + 2, 5)


def test_order_is_restored_and_odd_inputs_get_answers(trained: Translator) -> None:
    texts = [
        "a b c", "", "   ", "l k j", "a b c d e f g h i j k l a b c", "\x00\x07 c b a\x1b", "c\nb\ta",
        "😀 a 👩‍👩‍👧", "مرحبا a", "x" * 5000, "c b a",
    ]  # fmt: skip
    out = trained.translate(texts)
    assert len(out) == len(texts)
    assert out[0].text == "c b a" and out[3].text == "j k l" and out[-1].text == "a b c"
    assert out[1].text == "" and out[2].text == ""
    assert out[5].text == "a b c"  # control characters are spaces
    assert out[6].text == "a b c"
    assert all(isinstance(t.text, str) for t in out)


def test_long_inputs_are_truncated_or_rejected(trained: Translator) -> None:
    long = " ".join(["a"] * 50)
    truncating = Translator(trained.model, trained.tokenizer, limits=LengthLimits(max_source_tokens=10))
    assert truncating.translate([long])[0].text == " ".join(["a"] * 10)
    rejecting = Translator(trained.model, trained.tokenizer, limits=LengthLimits(max_source_tokens=10,
                                                                                on_long_input="reject"))  # fmt: skip
    with pytest.raises(InputError, match="over the limit of 10"):
        rejecting.translate(["a b", long])


def test_alignments_cover_source_and_target_tokens(trained: Translator) -> None:
    for beam in (1, 3):
        [t] = trained.translate(["a b c d"], SearchOptions(beam_size=beam, return_attention=True))
        assert t.source_tokens == ["▁a", "▁b", "▁c", "▁d", "</s>"]
        assert t.target_tokens == ["▁d", "▁c", "▁b", "▁a", "</s>"]
        assert t.alignment is not None and len(t.alignment) == 5
        for row in t.alignment:
            assert len(row) == 5 and sum(row) == pytest.approx(1.0, abs=1e-5)
        # reversal: the first output token attends to the last source word most
        assert max(range(5), key=lambda j: t.alignment[0][j]) in (3, 4)


def test_an_alignment_covers_its_own_source_whatever_it_was_batched_with(trained: Translator) -> None:
    """A batch pads its sources to the longest; the padding's columns are not part of anyone's alignment."""
    for beam in (1, 3):
        options = SearchOptions(beam_size=beam, return_attention=True)
        [alone] = trained.translate(["a b"], options)
        beside = trained.translate(["a b", "a b c d e f g h i j"], options)
        for t in (alone, *beside):
            assert t.alignment is not None and t.source_tokens is not None
            assert {len(row) for row in t.alignment} == {len(t.source_tokens)}
        assert torch.tensor(beside[0].alignment).allclose(torch.tensor(alone.alignment), atol=1e-5)


def test_int8_quantization_translates(reverse_model: TrainResult) -> None:
    quantized = Translator.from_dir(reverse_model.model_dir, device="cpu", precision="int8")
    out = quantized.translate(["a b c d", "e f g"])
    assert [t.text for t in out] == ["d c b a", "g f e"]


def test_bad_device_dtype_and_quantize_are_input_errors(reverse_model: TrainResult) -> None:
    with pytest.raises(InputError, match="needs a CUDA device"):
        Translator.from_dir(reverse_model.model_dir, device="cpu", precision="fp16")
    with pytest.raises(InputError, match="unknown device"):
        Translator.from_dir(reverse_model.model_dir, device="tpu")
    with pytest.raises(InputError, match="unknown precision"):
        Translator.from_dir(reverse_model.model_dir, device="cpu", precision="int4")


def test_clean_text() -> None:
    assert clean_text("  a\tb\nc\x00 ") == "a b c"
    assert clean_text("مرحبا 😀") == "مرحبا 😀"


def test_model_directory_path_type(reverse_model: TrainResult) -> None:
    assert isinstance(reverse_model.model_dir, Path)


def test_the_batch_budget_defaults_to_the_device_s(tiny_model: Seq2Seq, tokenizer: Tokenizer) -> None:
    """A GPU is filled by batches that would spill a CPU's caches: each device type has its own default."""
    assert BATCH_TOKENS["cuda"] > BATCH_TOKENS["cpu"]
    assert Translator(tiny_model, tokenizer, "cpu").batch_tokens == BATCH_TOKENS["cpu"]
    assert Translator(tiny_model, tokenizer, "cuda").batch_tokens == BATCH_TOKENS["cuda"]  # not moved: no GPU needed
    assert default_batch_tokens("mps") == BATCH_TOKENS["cpu"]  # a device without a measured budget


def test_a_batch_that_runs_out_of_memory_is_searched_in_halves_with_the_same_answers(
    tiny_model: Seq2Seq, tokenizer: Tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a GPU too small for the default budget does: every sentence is still answered, as it would be alone."""
    translator = Translator(tiny_model, tokenizer)
    texts, options = _texts(11, seed=7), SearchOptions(beam_size=3)
    expected = translator.translate(texts, options)
    encode, searched = tiny_model.encode, []

    def encode_within_memory(src: torch.Tensor, src_len: torch.Tensor):  # type: ignore[no-untyped-def]
        if src.size(0) > 3:
            raise torch.cuda.OutOfMemoryError("fake: more than 3 sentences")
        searched.append(src.size(0))
        return encode(src, src_len)

    monkeypatch.setattr(tiny_model, "encode", encode_within_memory)
    halved = translator.translate(texts, options)  # within the default budget, which holds all 11
    assert [t.text for t in halved] == [t.text for t in expected]
    assert [t.score for t in halved] == pytest.approx([t.score for t in expected], abs=1e-5)
    assert sum(searched) == len(texts) and max(searched) <= 3

    def no_memory_at_all(src: torch.Tensor, src_len: torch.Tensor):  # type: ignore[no-untyped-def]
        raise torch.cuda.OutOfMemoryError("fake: not even one sentence")

    monkeypatch.setattr(tiny_model, "encode", no_memory_at_all)
    with pytest.raises(torch.cuda.OutOfMemoryError):  # the caller hears of it (nmt-translate: a one-line error)
        translator.translate(texts[:2], options)

"""Attention: the exact inference attention matches the float one and ignores padding, batch and kernel."""

from __future__ import annotations

import pytest
import torch

from nmt.attention import GridMemory, dot_attention, exact_dot_attention
from tests.cpu import cpu_description


def _inputs(batch: int, steps: int, width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    query = torch.rand(batch, 1, width, generator=generator) * 2 - 1  # RNN outputs lie in [-1, 1]
    memory = torch.rand(batch, steps, width, generator=generator) * 2 - 1
    return query, memory


def _padded(memory: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    batch, real, width = memory.shape
    padded = torch.zeros(batch, steps, width)
    padded[:, :real] = memory
    mask = torch.zeros(batch, steps, dtype=torch.bool)
    mask[:, :real] = True
    return padded, mask


@pytest.mark.parametrize("width", [24, 128, 512])
def test_exact_attention_is_the_same_bitwise_for_any_padding(width: int) -> None:
    """Padding a sentence to a longer neighbour's length changes none of its bits.

    Float attention fails this on every CPU here: softmax sums and BLAS products change
    their order of additions with the padded length.
    """
    for real in (1, 3, 7, 15, 16, 17, 30):
        query, memory = _inputs(2, real, width, seed=real)
        context, weights = exact_dot_attention(query, GridMemory.of(memory), torch.ones(2, real, dtype=torch.bool))
        for steps in (real + 1, real + 9, 33, 64, 131):
            padded, mask = _padded(memory, max(steps, real))
            got_context, got_weights = exact_dot_attention(query, GridMemory.of(padded), mask)
            assert torch.equal(got_context, context), f"length {real} padded to {steps} on {cpu_description()}"
            assert torch.equal(got_weights[..., :real], weights), f"length {real} padded to {steps}"
            assert (got_weights[..., real:] == 0).all()


def test_exact_attention_rows_do_not_depend_on_each_other() -> None:
    query, memory = _inputs(40, 21, 256, seed=1)
    mask = torch.ones(40, 21, dtype=torch.bool)
    context, weights = exact_dot_attention(query, GridMemory.of(memory), mask)
    grid = GridMemory.of(memory)
    for i in (0, 17, 39):
        row = torch.tensor([i])
        alone_context, alone_weights = exact_dot_attention(query[i : i + 1], grid.select(row), mask[i : i + 1])
        assert torch.equal(alone_context, context[i : i + 1]), f"row {i} on {cpu_description()}"
        assert torch.equal(alone_weights, weights[i : i + 1])


def test_exact_attention_agrees_with_float_attention() -> None:
    query, memory = _inputs(8, 30, 512, seed=2)
    padded, mask = _padded(memory, 45)
    mask[3, 11:] = False  # a shorter sentence in the batch
    padded[3, 11:] = 0
    want_context, want_weights = dot_attention(query, padded, mask)
    context, weights = exact_dot_attention(query, GridMemory.of(padded), mask)
    assert context.dtype == weights.dtype == torch.float32
    torch.testing.assert_close(context, want_context, atol=5e-6, rtol=0)
    torch.testing.assert_close(weights, want_weights, atol=5e-6, rtol=0)
    assert (weights[3, :, 11:] == 0).all()
    assert weights.sum(-1).sub(1).abs().max() < 1e-6


def test_exact_attention_handles_peaked_scores_and_memory_of_any_scale() -> None:
    """Scores far apart (a one-hot softmax) and a projected memory wider than [-1, 1] stay exact and finite."""
    query = torch.ones(1, 1, 64)
    memory = torch.zeros(1, 5, 64)
    memory[0, 2] = 40.0  # score 2560 against 0: weight 1 on position 2
    context, weights = exact_dot_attention(query, GridMemory.of(memory), torch.ones(1, 5, dtype=torch.bool))
    assert torch.equal(weights, torch.tensor([[[0.0, 0.0, 1.0, 0.0, 0.0]]]))
    assert torch.equal(context, memory[:, 2:3])

"""The inference LSTM's elementwise pieces: a row's bits must not depend on its batch or the thread count."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from nmt.layers import sigmoid
from tests.cpu import cpu_description


@pytest.fixture
def threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("num_threads", [1, 2, 3, 16])
@pytest.mark.parametrize("width", [2048, 1024, 48, 12])
@pytest.mark.parametrize("rows", [1, 5, 33, 34, 161])
def test_sigmoid_of_a_row_does_not_depend_on_batch_size_or_threads(
    rows: int, width: int, num_threads: int, threads: None
) -> None:
    """The rows of a batch get the bits they get alone, or in a batch of any other size (with 3 threads ATen's
    scalar tails once fell on other elements for 33 and 34 rows of 2,048 gates)."""
    torch.set_num_threads(num_threads)
    gates = torch.randn(rows + 1, width, generator=torch.Generator().manual_seed(rows * width)) * 4
    full = sigmoid(gates)
    for part in sorted({1, rows // 2 or 1, rows}):
        assert torch.equal(sigmoid(gates[:part].contiguous()), full[:part]), cpu_description()
    assert torch.equal(sigmoid(gates.t()), full.t()), "a non-contiguous tensor"
    assert (full - torch.sigmoid(gates.double()).float()).abs().max() < 1e-6

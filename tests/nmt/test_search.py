"""Greedy search on a scripted step function whose best path is known, and on a real model."""

from __future__ import annotations

import torch

from nmt.decoder import DecoderState
from nmt.search import greedy_search

EOS, BOS, VOCAB = 3, 2, 10


def _state(batch: int) -> DecoderState:
    # hidden row i carries the sentence id i, so the scripted step knows which row is which
    ids = torch.arange(batch, dtype=torch.float32)
    return DecoderState(
        hidden=ids.view(1, batch, 1),
        cell=None,
        feed=None,
        memory=torch.zeros(batch, 4, 1),
        mask=torch.ones(batch, 4, dtype=torch.bool),
    )


def scripted(paths: list[list[int]], seen_batch_sizes: list[int]):
    """Step function that puts probability 0.9 on the next token of each row's path."""

    def step(state: DecoderState, prev: torch.Tensor):
        seen_batch_sizes.append(state.batch_size)
        rows = state.hidden[0, :, 0].long()
        t = len(seen_batch_sizes) - 1  # index of this step
        log_probs = torch.full((state.batch_size, VOCAB), 0.1 / (VOCAB - 1)).log()
        for i, row in enumerate(rows.tolist()):
            path = paths[row]
            target = path[t] if t < len(path) else EOS
            log_probs[i, target] = torch.tensor(0.9).log()
        return log_probs, state, torch.full((state.batch_size, 4), 0.25)

    return step


def test_greedy_follows_the_best_path_and_drops_finished_rows() -> None:
    paths = [[5, 6, EOS], [7, EOS], [4, 4, 4, 4, EOS]]
    sizes: list[int] = []
    hyps = greedy_search(scripted(paths, sizes), _state(3), torch.tensor([50, 50, 50]), BOS, EOS)
    assert [h.tokens for h in hyps] == [[5, 6], [7], [4, 4, 4, 4]]
    assert sizes == [3, 3, 2, 1, 1]  # rows leave the batch once they emit eos
    expected = 5 * torch.tensor(0.9).log().item()
    assert abs(hyps[2].score - expected) < 1e-5


def test_greedy_respects_max_length_and_min_length() -> None:
    paths = [[5] * 20, [EOS]]
    sizes: list[int] = []
    hyps = greedy_search(scripted(paths, sizes), _state(2), torch.tensor([4, 4]), BOS, EOS, min_length=2)
    assert hyps[0].tokens == [5, 5, 5, 5]
    assert len(hyps[1].tokens) == 2 and EOS not in hyps[1].tokens


def test_greedy_keeps_attention_per_target_token() -> None:
    sizes: list[int] = []
    hyps = greedy_search(scripted([[5, 6]], sizes), _state(1), torch.tensor([10]), BOS, EOS, keep_attention=True)
    assert hyps[0].attention is not None and hyps[0].attention.shape == (3, 4)  # 2 tokens + eos

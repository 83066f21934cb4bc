"""Search on scripted step functions whose best paths are known, plus the penalty functions."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from nmt.decoder import DecoderState
from nmt.penalties import block_repeated_ngrams, length_penalty
from nmt.search import SearchOptions, beam_search, greedy_search, search

BOS, EOS, VOCAB = 2, 3, 6  # 0 pad, 1 unk, 2 bos, 3 eos, 4 and 5 real tokens
GREEDY = SearchOptions(beam_size=1)


def _state(batch: int) -> DecoderState:
    # hidden row i carries the sentence id i; select() keeps it with its row through beam reordering
    ids = torch.arange(batch, dtype=torch.float32)
    return DecoderState(
        hidden=ids.view(1, batch, 1), cell=None, feed=None,
        memory=torch.zeros(batch, 4, 1), mask=torch.ones(batch, 4, dtype=torch.bool),
    )  # fmt: skip


def markov(tables: torch.Tensor, seen_batch_sizes: list[int] | None = None):
    """Step function where log p(next | prev) = tables[sentence, prev, next]."""

    def step(state: DecoderState, prev: torch.Tensor):
        if seen_batch_sizes is not None:
            seen_batch_sizes.append(state.batch_size)
        sentence = state.hidden[0, :, 0].long()
        return tables[sentence, prev].clone(), state, torch.full((state.batch_size, 4), 0.25)

    return step


def table(rows: dict[int, dict[int, float]], n_sentences: int = 1) -> torch.Tensor:
    """Transition log-probabilities from {prev: {next: prob}}; unlisted moves are impossible."""
    out = torch.full((n_sentences, VOCAB, VOCAB), float("-inf"))
    for prev, nexts in rows.items():
        for nxt, p in nexts.items():
            out[:, prev, nxt] = math.log(p)
    return out


def random_tables(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, VOCAB, VOCAB, generator=gen) * 2
    logits[:, :, :BOS] = float("-inf")
    logits[:, :, BOS] = float("-inf")
    return torch.log_softmax(logits, dim=-1)


TRAP = table({BOS: {4: 0.6, 5: 0.4}, 4: {EOS: 0.3, 4: 0.35, 5: 0.35}, 5: {EOS: 0.99, 4: 0.01}})


def test_greedy_takes_the_locally_best_token_and_beam_finds_the_better_path() -> None:
    limits = torch.tensor([6])
    greedy = greedy_search(markov(TRAP), _state(1), limits, BOS, EOS, SearchOptions(1, length_penalty="none"))
    assert greedy[0].tokens[0] == 4
    best = beam_search(markov(TRAP), _state(1), limits, BOS, EOS, SearchOptions(2, length_penalty="none"))[0][0]
    assert best.tokens == [5]
    assert best.log_prob == pytest.approx(math.log(0.4 * 0.99))
    assert best.score > greedy[0].score


def test_beam_one_equals_greedy_exactly() -> None:
    for seed in range(5):
        tables = random_tables(8, seed)
        limits = torch.randint(1, 12, (8,), generator=torch.Generator().manual_seed(seed))
        for penalty in ("none", "average", "gnmt"):
            options = SearchOptions(beam_size=1, length_penalty=penalty)
            greedy = greedy_search(markov(tables), _state(8), limits, BOS, EOS, options)
            beam = beam_search(markov(tables), _state(8), limits, BOS, EOS, options)
            assert [h.tokens for h in greedy] == [b[0].tokens for b in beam]
            assert [h.log_prob for h in greedy] == pytest.approx([b[0].log_prob for b in beam], abs=1e-6)


def _brute_force_best(tables: torch.Tensor, sentence: int, max_len: int) -> float:
    best = float("-inf")
    for length in range(max_len + 1):
        for seq in itertools.product([4, 5], repeat=length):
            path = [BOS, *seq, EOS]
            best = max(best, sum(float(tables[sentence, a, b]) for a, b in itertools.pairwise(path)))
    return best


def test_wide_beam_finds_the_exact_optimum() -> None:
    tables = random_tables(4, seed=11)
    limits = torch.tensor([4, 4, 4, 4])
    found = beam_search(markov(tables), _state(4), limits, BOS, EOS, SearchOptions(16, length_penalty="none"))
    for s in range(4):
        assert found[s][0].log_prob == pytest.approx(_brute_force_best(tables, s, 4), abs=1e-5)


def test_wider_beams_never_score_below_greedy() -> None:
    for seed in range(10):
        tables = random_tables(6, seed)
        limits = torch.full((6,), 8)
        for penalty in ("none", "average", "gnmt"):
            greedy = greedy_search(
                markov(tables), _state(6), limits, BOS, EOS, SearchOptions(1, length_penalty=penalty)
            )
            for k in (2, 4, 8):
                beam = beam_search(
                    markov(tables), _state(6), limits, BOS, EOS, SearchOptions(k, length_penalty=penalty)
                )
                for g, b in zip(greedy, beam, strict=True):
                    assert b[0].score >= g.score - 1e-6


def test_n_best_is_sorted_and_distinct() -> None:
    tables = random_tables(3, seed=5)
    found = beam_search(markov(tables), _state(3), torch.full((3,), 6), BOS, EOS, SearchOptions(5, n_best=5))
    for hyps in found:
        assert len(hyps) == 5
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 5


def test_finished_sentences_leave_the_batch() -> None:
    # sentence 0 ends at once; sentence 1 must continue to its cap
    short = table({BOS: {EOS: 0.9, 4: 0.1}, 4: {EOS: 1.0}})
    long = table({BOS: {4: 0.9, 5: 0.1}, 4: {4: 0.9, 5: 0.1}, 5: {4: 0.9, 5: 0.1}})
    tables = torch.cat([short, long])
    sizes: list[int] = []
    greedy_search(markov(tables, sizes), _state(2), torch.tensor([10, 10]), BOS, EOS, GREEDY)
    assert sizes[0] == 2 and set(sizes[1:]) == {1}
    sizes.clear()
    beam_search(markov(tables, sizes), _state(2), torch.tensor([10, 10]), BOS, EOS, SearchOptions(2))
    # a sentence's beams start alike: one row per sentence; sentence 0 ends there, then only sentence 1's 2 beams
    assert sizes[0] == 2 and set(sizes[1:]) == {2}
    sizes.clear()
    beam_search(markov(torch.cat([long, long]), sizes), _state(2), torch.tensor([3, 10]), BOS, EOS, SearchOptions(2))
    assert sizes[:2] == [2, 4] and sizes[-1] == 2  # both run, then sentence 0 leaves at its cap


def test_max_and_min_length() -> None:
    endless = table({BOS: {4: 0.9, EOS: 0.1}, 4: {4: 0.9, EOS: 0.1}})
    for k in (1, 3):
        [[hyp]] = search(markov(endless), _state(1), torch.tensor([5]), BOS, EOS, SearchOptions(k))
        assert hyp.tokens == [4] * 5
    eager = table({BOS: {EOS: 0.9, 4: 0.1}, 4: {EOS: 0.9, 4: 0.1}})
    for k in (1, 3):
        [[hyp]] = search(markov(eager), _state(1), torch.tensor([10]), BOS, EOS, SearchOptions(k, min_length=3))
        assert hyp.tokens == [4, 4, 4]


def test_repeated_ngrams_are_blocked() -> None:
    loop = table({BOS: {4: 0.6, 5: 0.4}, 4: {5: 0.8, EOS: 0.1, 4: 0.1}, 5: {4: 0.8, EOS: 0.1, 5: 0.1}})
    [[free]] = search(markov(loop), _state(1), torch.tensor([8]), BOS, EOS, SearchOptions(1))
    assert free.tokens == [4, 5, 4, 5, 4, 5, 4, 5]
    [[blocked]] = search(markov(loop), _state(1), torch.tensor([8]), BOS, EOS, SearchOptions(1, no_repeat_ngram=2))
    pairs = list(itertools.pairwise(blocked.tokens))
    assert len(pairs) == len(set(pairs))


def test_block_repeated_ngrams_function() -> None:
    log_probs = torch.zeros(2, VOCAB)
    history = torch.tensor([[4, 5, 4], [5, 5, 4]])
    block_repeated_ngrams(log_probs, history, 2)
    assert log_probs[0, 5] == float("-inf")  # "4 5" already seen after 4
    assert torch.isfinite(log_probs[1]).all()  # "4 x" never seen in row 1


def test_length_penalties() -> None:
    assert length_penalty(7, "none") == 1.0
    assert length_penalty(7, "average") == 7.0
    assert length_penalty(1, "gnmt", 0.6) == 1.0
    assert length_penalty(13, "gnmt", 1.0) == pytest.approx(3.0)


def test_attention_is_kept_per_target_token() -> None:
    endless = table({BOS: {4: 0.9, EOS: 0.1}, 4: {4: 0.9, EOS: 0.1}})
    for k in (1, 3):
        options = SearchOptions(k, return_attention=True)
        [[hyp]] = search(markov(endless), _state(1), torch.tensor([3]), BOS, EOS, options)
        assert hyp.attention is not None and hyp.attention.shape == (4, 4)  # 3 tokens + eos


def test_invalid_options_are_refused() -> None:
    with pytest.raises(ValueError, match="n_best"):
        SearchOptions(beam_size=2, n_best=3)
    with pytest.raises(ValueError, match="beam_size"):
        SearchOptions(beam_size=0)

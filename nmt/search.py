"""Batched greedy and beam search over a step function.

A step function maps (state, previous tokens (N,)) to (log-probs (N, V), state, attention
(N, S)). All rows (sentences, or sentences x beams) advance together as one batch; a
sentence that is finished leaves the batch, so each step costs only what is still being
decoded. Nothing here depends on the model class: tests drive search with scripted steps.

Lengths count output tokens without eos; `max_lengths` (B,) caps each sentence, after
which eos is forced. A sentence's result never depends on the other rows in its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch

from nmt.decoder import DecoderState
from nmt.penalties import LengthPenalty, block_repeated_ngrams, normalized_score

Key = TypeVar("Key", bound=Hashable)  # how a caller names its sentences in a running search
StepFn = Callable[[DecoderState, torch.Tensor], tuple[torch.Tensor, DecoderState, torch.Tensor]]


@dataclass(frozen=True)
class SearchOptions:
    """What users of OpenNMT-py, fairseq and Marian expect to set."""

    beam_size: int = 5
    n_best: int = 1
    length_penalty: LengthPenalty = "average"
    alpha: float = 0.6  # exponent of the gnmt penalty
    min_length: int = 0
    no_repeat_ngram: int = 0  # block repeats of n-grams of this size; 0: off
    return_attention: bool = False

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {self.beam_size}")
        if not 1 <= self.n_best <= self.beam_size:
            raise ValueError(f"n_best must be between 1 and beam_size ({self.beam_size}), got {self.n_best}")
        if self.length_penalty not in ("none", "average", "gnmt"):
            raise ValueError(f"length_penalty must be none, average or gnmt, got {self.length_penalty!r}")
        if self.min_length < 0 or self.no_repeat_ngram < 0:
            raise ValueError("min_length and no_repeat_ngram must not be negative")


@dataclass(frozen=True)
class Hypothesis:
    """One output: token ids (no bos/eos), ranking score, total log-probability, attention (T+1, S) over
    its own source positions (subwords + eos), whatever the batch was padded to."""

    tokens: list[int]
    score: float
    log_prob: float
    attention: torch.Tensor | None = None


_EMPTY = Hypothesis([], float("-inf"), float("-inf"))


def _columns(state: DecoderState, eos: int) -> tuple[torch.Tensor | None, int]:
    """Token ids of each row's log-prob columns (None: the columns are the ids) and eos's column."""
    if state.vocab is None:
        return None, eos
    return state.vocab.row_ids(state.beams), 0  # shortlists put eos first


def _tokens(columns: torch.Tensor, ids: torch.Tensor | None, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Token ids of chosen `columns` (N,) of rows `rows` (default: row i for column i)."""
    if ids is None:
        return columns
    return ids[torch.arange(columns.numel(), device=columns.device) if rows is None else rows, columns]


def _constrain(
    log_probs: torch.Tensor,
    history: torch.Tensor,
    max_len: torch.Tensor,
    eos: int,
    options: SearchOptions,
    ids: torch.Tensor | None = None,
    produced: torch.Tensor | None = None,
) -> None:
    """Apply min length, repeat blocking and forced eos at the length cap, in place; `eos` is its column.

    `produced` (N,): tokens each row has produced, when rows differ (history is right-aligned then).
    """
    if produced is None:
        if history.size(1) < options.min_length:
            log_probs[:, eos] = float("-inf")
    elif options.min_length > 0:
        log_probs[produced < options.min_length, eos] = float("-inf")
    block_repeated_ngrams(log_probs, history, options.no_repeat_ngram, ids, produced)
    at_cap = max_len <= (history.size(1) if produced is None else produced)
    if bool(at_cap.any()):
        eos_scores = log_probs[at_cap, eos].clone()
        log_probs[at_cap] = float("-inf")
        # a forced eos keeps its own probability (finite even if eos was blocked above)
        log_probs[at_cap, eos] = torch.nan_to_num(eos_scores, neginf=-1e9)


def greedy_search(
    step: StepFn, state: DecoderState, max_lengths: torch.Tensor, bos: int, eos: int, options: SearchOptions
) -> list[Hypothesis]:
    """Pick the most probable token at each step for every sentence."""
    batch, device = state.batch_size, state.hidden.device
    active = torch.arange(batch, device=device)
    prev = torch.full((batch,), bos, dtype=torch.long, device=device)
    limits = max_lengths.to(device)
    history = torch.empty(batch, 0, dtype=torch.long, device=device)
    log_prob = torch.zeros(batch, device=device)
    attn_hist: torch.Tensor | None = None
    results: list[Hypothesis | None] = [None] * batch
    while active.numel() > 0:
        ids, eos_column = _columns(state, eos)
        log_probs, state, attn = step(state, prev)
        _constrain(log_probs, history, limits[active], eos_column, options, ids)
        best, column = log_probs.max(dim=-1)
        prev = _tokens(column, ids)
        log_prob = log_prob + best
        if options.return_attention:
            attn_hist = attn.unsqueeze(1) if attn_hist is None else torch.cat([attn_hist, attn.unsqueeze(1)], 1)
        done = prev == eos
        if bool(done.any()):
            ended = done.nonzero().squeeze(1)  # one transfer from the device for every sentence that ended
            attention = _own_columns(attn_hist, ended, state.mask.index_select(0, ended))
            rows = zip(active[ended].tolist(), history[ended].tolist(), log_prob[ended].tolist(), strict=True)
            for j, (owner, tokens, total) in enumerate(rows):
                score = normalized_score(total, len(tokens) + 1, options.length_penalty, options.alpha)
                results[owner] = Hypothesis(tokens, score, total, None if attention is None else attention[j])
            keep = (~done).nonzero().squeeze(1)
            state, prev, active = state.select(keep), prev[keep], active[keep]
            history, log_prob = history[keep], log_prob[keep]
            attn_hist = attn_hist[keep] if attn_hist is not None else None
        history = torch.cat([history, prev.unsqueeze(1)], dim=1)
    return [r for r in results if r is not None]


def _own_columns(attn_hist: torch.Tensor | None, rows: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor] | None:
    """Attention histories (T, S) of `rows`, each cut to its sentence's source positions (`mask` (N, S) per row):
    the padding columns of a batch are not part of a sentence's answer. On the host."""
    if attn_hist is None:
        return None
    attention = attn_hist.index_select(0, rows).float().cpu()
    return [a[:, :width] for a, width in zip(attention, mask.sum(dim=1).tolist(), strict=True)]


class BeamSearch(Generic[Key]):
    """Beam search over one running batch that sentences join and leave at every step (iteration-level).

    `admit` adds encoded sentences at any step; `step` advances every sentence by one token and
    returns those that finished; `drop` takes sentences out (a request expired or hung up).
    Candidates ending in eos within a sentence's top `beam_size` finish a hypothesis. The
    greedy path is anchored: its next token always stays in the beam and the sentence runs
    until that path has finished too, so beam search never returns a worse-scoring output
    than greedy search under the same length penalty. A sentence leaves once its greedy path
    has ended and either it has `beam_size` finished hypotheses or its best candidate was an
    eos (no live prefix can still beat that total log-probability) with `n_best` finished, or
    at its length cap. Every row's arithmetic is its own, and attention ignores padding, so a
    sentence's result does not depend on when it joined or what else is running.
    """

    def __init__(self, step: StepFn, bos: int, eos: int, options: SearchOptions) -> None:
        self.step_fn, self.bos, self.eos, self.options = step, bos, eos, options
        self.k = options.beam_size
        self.state: DecoderState | None = None
        self.keys: list[Key] = []  # the caller's key of each active sentence, unique
        self.finished: dict[Key, list[Hypothesis]] = {}
        self.t: dict[str, torch.Tensor] = {}  # per-sentence and per-row bookkeeping (see _fresh)
        self.history = torch.empty(0, 0, dtype=torch.long)  # (rows, steps) tokens, right-aligned
        self.attn_hist: torch.Tensor | None = None  # (rows, steps, S) with return_attention

    @property
    def sentences(self) -> int:
        """Active sentences."""
        return len(self.keys)

    def _fresh(self, state: DecoderState, max_lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sentence and per-row bookkeeping for newly admitted sentences."""
        n, k, device = state.batch_size, self.k, state.hidden.device
        scores = torch.full((n, k), float("-inf"), device=device)
        scores[:, 0] = 0.0  # all beams start equal: expand only the first
        zeros = torch.zeros(n, dtype=torch.long, device=device)
        return {
            "limits": max_lengths.to(device),
            "greedy_beam": zeros,  # -1 once the greedy path ended
            "best_ended": zeros.bool(),  # the best candidate was an eos
            "counts": zeros.clone(),  # finished hypotheses
            "produced": zeros.clone(),  # tokens produced so far
            "scores": scores.view(-1),
            "prev": torch.full((n * k,), self.bos, dtype=torch.long, device=device),
        }

    def admit(self, state: DecoderState, max_lengths: torch.Tensor, keys: Sequence[Key]) -> None:
        """Add sentences (an encoded state, one row each) with their output caps; they join at the next step."""
        if len(keys) != state.batch_size:
            raise ValueError("admit needs one key per sentence")
        fresh = self._fresh(state, max_lengths)
        if self.state is None:
            self.state, self.keys, self.t = state, list(keys), fresh
            self.history = torch.empty(state.batch_size * self.k, 0, dtype=torch.long, device=state.hidden.device)
            self.attn_hist = None
            self.finished = {}
            return
        if self.state.beams != 1:
            state = state.expand_beams(self.k)
        self.state = self.state.merge(state)
        self.keys += keys
        self.t = {name: torch.cat([value, fresh[name]]) for name, value in self.t.items()}
        rows = fresh["prev"].numel()
        # histories are right-aligned: a newcomer's row holds no tokens yet
        self.history = torch.cat([self.history, self.history.new_zeros(rows, self.history.size(1))])
        if self.attn_hist is not None:
            width = max(self.attn_hist.size(2), state.mask.size(1))
            old = torch.nn.functional.pad(self.attn_hist, (0, width - self.attn_hist.size(2)))
            self.attn_hist = torch.cat([old, old.new_zeros(rows, old.size(1), width)])

    def narrow(self, width: int) -> None:
        """Cut the memory to `width` source positions, the longest source still running (padding only)."""
        if self.state is not None:
            self.state = self.state.narrow(width)

    def drop(self, keys: Collection[Key]) -> None:
        """Take sentences out of the running batch at once (their results are never produced)."""
        if self.state is None:
            return
        gone = torch.tensor([key in keys for key in self.keys], dtype=torch.bool, device=self.state.hidden.device)
        if bool(gone.any()):
            for key in self.keys:
                if key in keys:
                    self.finished.pop(key, None)
            self._select(~gone, torch.arange(len(self.keys) * self.k, device=gone.device))

    def _select(self, keep: torch.Tensor, rows: torch.Tensor) -> None:
        """Keep sentences `keep` (bool, per sentence); `rows` (sentences x beams): where each kept row comes from."""
        assert self.state is not None
        picked = rows[keep.repeat_interleave(self.k)]
        self.keys = [key for key, kept in zip(self.keys, keep.tolist(), strict=True) if kept]
        self.t = {name: value.view(keep.numel(), -1)[keep].view(-1) for name, value in self.t.items()}
        self.history = self.history.index_select(0, picked)
        self.attn_hist = self.attn_hist.index_select(0, picked) if self.attn_hist is not None else None
        if not self.keys:
            self.state = None
        elif self.state.beams == 1:  # before the first step a sentence is one row
            self.state = self.state.select(keep.nonzero().squeeze(1))
        else:
            self.state = self.state.select(picked)

    def _finish(self, ended: torch.Tensor, rows: torch.Tensor, log_probs: torch.Tensor) -> None:
        """Hypotheses end for active sentences `ended` at beam rows `rows`: one transfer from the device for all."""
        self.t["counts"] = self.t["counts"].index_add(0, ended, torch.ones_like(ended))
        produced = self.t["produced"].index_select(0, ended).tolist()
        tokens = self.history.index_select(0, rows).tolist()
        assert self.state is not None
        attention = _own_columns(self.attn_hist, rows, self.state.mask.index_select(0, ended))
        options = self.options
        for i, (owner, n, toks, log_prob) in enumerate(
            zip(ended.tolist(), produced, tokens, log_probs.tolist(), strict=True)
        ):
            toks = toks[len(toks) - n :]
            score = normalized_score(log_prob, n + 1, options.length_penalty, options.alpha)
            attn = None if attention is None else attention[i][attention[i].size(0) - n - 1 :]
            self.finished.setdefault(self.keys[owner], []).append(Hypothesis(toks, score, log_prob, attn))

    def step(self) -> list[tuple[Key, list[Hypothesis]]]:
        """Advance every active sentence by one token; the sentences that finished, with their n-best."""
        if self.state is None:
            return []
        k, options, t = self.k, self.options, self.t
        state, device = self.state, self.state.hidden.device
        n_sent = len(self.keys)
        if state.beams == 1:  # every sentence is at its first step: its beams are all alike, one row each
            log_probs, state, attn = self.step_fn(state, t["prev"][::k])
            state = state.expand_beams(k)
            log_probs, attn = log_probs.repeat_interleave(k, dim=0), attn.repeat_interleave(k, dim=0)
        else:
            log_probs, state, attn = self.step_fn(state, t["prev"])
        ids, eos_column = _columns(state, self.eos)
        vocab = log_probs.size(1)  # columns per row: the vocabulary, or the longest shortlist
        produced_rows = t["produced"].repeat_interleave(k)
        _constrain(log_probs, self.history, t["limits"].repeat_interleave(k), eos_column, options, ids,
                   produced_rows)  # fmt: skip
        if options.return_attention:
            attn = attn.unsqueeze(1)
            if self.attn_hist is None:
                self.attn_hist = attn
            else:
                width = max(attn.size(2), self.attn_hist.size(2))
                old = torch.nn.functional.pad(self.attn_hist, (0, width - self.attn_hist.size(2)))
                self.attn_hist = torch.cat([old, torch.nn.functional.pad(attn, (0, width - attn.size(2)))], 1)
        scores, greedy_beam = t["scores"], t["greedy_beam"]
        base = torch.arange(n_sent, device=device) * k
        candidates = (scores.unsqueeze(1) + log_probs).view(n_sent, k * vocab)
        top_scores, top_index = candidates.topk(min(2 * k, k * vocab), dim=1)
        is_eos = top_index % vocab == eos_column
        # eos candidates ranked within the first k finish a hypothesis
        eos_s, eos_c = (is_eos[:, :k] & torch.isfinite(top_scores[:, :k])).nonzero().unbind(1)
        ended = [eos_s]
        ended_rows = [eos_s * k + top_index[eos_s, eos_c] // vocab]
        ended_lp = [top_scores[eos_s, eos_c]]
        # the k best non-eos candidates continue (stable order: eos candidates sort last)
        width = top_index.size(1)
        keep = (is_eos.long() * width + torch.arange(width, device=device)).argsort(dim=1)[:, :k]
        kept_index, kept_scores = top_index.gather(1, keep), top_scores.gather(1, keep)
        # the greedy path: its best next token, from the beam that holds it
        has_greedy = greedy_beam >= 0
        greedy_rows = base + greedy_beam.clamp(min=0)
        greedy_lp, greedy_tok = log_probs[greedy_rows].max(dim=1)
        greedy_index = greedy_beam.clamp(min=0) * vocab + greedy_tok
        greedy_ends = has_greedy & (greedy_tok == eos_column)
        finished_in_top = (top_index[:, :k] == greedy_index.unsqueeze(1)).any(dim=1)
        greedy_s = (greedy_ends & ~finished_in_top).nonzero().squeeze(1)
        ended.append(greedy_s)
        ended_rows.append(greedy_rows[greedy_s])
        ended_lp.append(scores[greedy_rows[greedy_s]] + greedy_lp[greedy_s])
        if any(e.numel() for e in ended):
            self._finish(torch.cat(ended), torch.cat(ended_rows), torch.cat(ended_lp))
        greedy_goes_on = has_greedy & ~greedy_ends
        present = kept_index == greedy_index.unsqueeze(1)
        missing = greedy_goes_on & ~present.any(dim=1)
        kept_index[missing, k - 1] = greedy_index[missing]
        kept_scores[missing, k - 1] = (scores[greedy_rows] + greedy_lp)[missing]
        present[missing] = False
        present[missing, k - 1] = True
        t["greedy_beam"] = torch.where(greedy_goes_on, present.long().argmax(dim=1), torch.full_like(greedy_beam, -1))

        rows = (base.unsqueeze(1) + kept_index // vocab).view(-1)
        t["prev"], t["scores"] = _tokens((kept_index % vocab).view(-1), ids, rows), kept_scores.view(-1)
        at_cap = t["limits"] <= t["produced"]  # eos was forced this step
        t["best_ended"] = t["best_ended"] | (is_eos[:, 0] & torch.isfinite(top_scores[:, 0]))
        counts = t["counts"]
        enough = (counts >= k) | (t["best_ended"] & (counts >= options.n_best))
        done = (enough & (t["greedy_beam"] < 0)) | at_cap
        results: list[tuple[Key, list[Hypothesis]]] = []
        self.state = state
        if bool(done.any()):
            for i in done.nonzero().squeeze(1).tolist():
                hyps = self.finished.pop(self.keys[i], [])
                results.append((self.keys[i], sorted(hyps, key=lambda h: -h.score)[: options.n_best] or [_EMPTY]))
            self._select(~done, rows)
            if self.state is None:
                return results
        else:
            self.state = state.reorder_beams(rows)
            self.history = self.history.index_select(0, rows)
            self.attn_hist = self.attn_hist.index_select(0, rows) if self.attn_hist is not None else None
        t = self.t
        self.history = torch.cat([self.history, t["prev"].unsqueeze(1)], dim=1)
        t["produced"] = t["produced"] + 1
        return results


def beam_search(
    step: StepFn, state: DecoderState, max_lengths: torch.Tensor, bos: int, eos: int, options: SearchOptions
) -> list[list[Hypothesis]]:
    """Keep the `beam_size` best prefixes per sentence; return its `n_best` finished outputs, best first.

    All sentences join at once; see `BeamSearch` for the rules.
    """
    search: BeamSearch[int] = BeamSearch(step, bos, eos, options)
    keys = list(range(state.batch_size))
    search.admit(state, max_lengths, keys)
    results: dict[int, list[Hypothesis]] = {}
    while search.sentences:
        results.update(search.step())
    return [results[key] for key in keys]


def search(
    step: StepFn, state: DecoderState, max_lengths: torch.Tensor, bos: int, eos: int, options: SearchOptions
) -> list[list[Hypothesis]]:
    """Greedy search for beam size 1 (the same result, cheaper), beam search otherwise."""
    if options.beam_size == 1:
        return [[h] for h in greedy_search(step, state, max_lengths, bos, eos, options)]
    return beam_search(step, state, max_lengths, bos, eos, options)

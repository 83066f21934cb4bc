"""Text in, text out: tokenise, sort by length, batch by a token budget, search, restore order.

The one engine behind offline translation, evaluation, validation during training and the
service. It keeps no per-call state, so concurrent callers can share one instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from nmt.batching import pad_batch, source_ids, token_batches
from nmt.model import Seq2Seq
from nmt.model_dir import load_model_dir
from nmt.search import Hypothesis, greedy_search
from nmt.tokenizer import BOS_ID, EOS_ID, Tokenizer


@dataclass(frozen=True)
class Translation:
    """One translated text with its total log-probability."""

    text: str
    score: float


@dataclass(frozen=True)
class LengthLimits:
    """Output length cap per sentence: min(ratio * source_tokens + extra, hard_cap)."""

    ratio: float = 1.5
    extra: int = 10
    hard_cap: int = 256
    max_source_tokens: int = 400  # longer sources are truncated to this many subwords

    def max_output(self, source_tokens: int) -> int:
        """Most target tokens allowed for a source of `source_tokens` subwords."""
        return max(1, min(int(self.ratio * source_tokens + self.extra), self.hard_cap))


class Translator:
    """Translate lists of texts with a loaded model; batched greedy search."""

    def __init__(
        self,
        model: Seq2Seq,
        tokenizer: Tokenizer,
        device: torch.device | str = "cpu",
        limits: LengthLimits | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.limits = limits or LengthLimits()

    @classmethod
    def from_dir(cls, path: Path | str, device: str = "cpu", limits: LengthLimits | None = None) -> Translator:
        """Load a model directory and wrap it."""
        loaded = load_model_dir(Path(path), device=device)
        return cls(loaded.model, loaded.tokenizer, device=device, limits=limits)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Source ids of each text, truncated to the source limit; blank texts give []."""
        ids = self.tokenizer.encode_src([t.strip() for t in texts])
        return [seq[: self.limits.max_source_tokens] for seq in ids]

    @torch.inference_mode()
    def translate_ids(self, sources: Sequence[Sequence[int]], batch_tokens: int = 4096) -> list[Hypothesis]:
        """Search every non-empty id list (in batches), answering in input order."""
        results: list[Hypothesis] = [Hypothesis(tokens=[], score=0.0)] * len(sources)
        nonempty = [i for i, s in enumerate(sources) if s]
        lengths = [len(sources[i]) + 1 for i in nonempty]  # + eos
        was_training = self.model.training
        self.model.eval()
        try:
            for batch in token_batches(lengths, batch_tokens):
                rows = [nonempty[i] for i in batch]
                src, src_len = pad_batch([source_ids(sources[r]) for r in rows], self.device)
                limits = torch.tensor([self.limits.max_output(len(sources[r])) for r in rows])
                state = self.model.encode(src, src_len)
                hyps = greedy_search(self.model.step, state, limits, bos=BOS_ID, eos=EOS_ID)
                for row, hyp in zip(rows, hyps, strict=True):
                    results[row] = hyp
        finally:
            self.model.train(was_training)
        return results

    def translate(self, texts: Sequence[str], batch_tokens: int = 4096) -> list[Translation]:
        """Translate texts; an empty or blank text gives an empty translation."""
        hyps = self.translate_ids(self.encode(texts), batch_tokens=batch_tokens)
        decoded = self.tokenizer.decode_tgt([h.tokens for h in hyps])
        return [Translation(text=text, score=h.score) for text, h in zip(decoded, hyps, strict=True)]

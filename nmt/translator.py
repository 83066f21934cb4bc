"""Text in, text out: clean, tokenise, sort by length, batch by a token budget, search, restore order.

The one engine behind offline translation, evaluation, validation during training and the
service. It keeps no per-call state, so concurrent callers can share one instance.

Placeholders and markup (`nmt.placeholders`) are protected before the search and every output is
restored after, so it holds exactly its source's placeholders (none where the source has none).

Every input gets an answer: a blank text gives an empty translation; a source longer than
`LengthLimits.max_source_tokens` subwords is truncated (the default) or rejected with
`InputError` (`on_long_input="reject"`); control characters are replaced by spaces.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Literal

import torch

from nmt.alignment import masked_alignment, restored_alignment
from nmt.batching import default_batch_tokens, halving_on_oom, pad_batch, source_ids, token_batches
from nmt.decoder import DecoderState
from nmt.device import resolve_device
from nmt.errors import InputError
from nmt.memory import release_free_memory
from nmt.model import Seq2Seq
from nmt.model_dir import ModelInfo, load_model_dir
from nmt.placeholders import Protected, protect, restore
from nmt.precision import Footprint, prepare, resolve_precision, weight_dtype
from nmt.search import Hypothesis, SearchOptions, search
from nmt.shortlist import SHORTLIST_FILE, Shortlist, ShortlistUse, uses_shortlist
from nmt.tokenizer import BOS_ID, EOS_ID, Tokenizer

EOS_PIECE = "</s>"


@dataclass(frozen=True)
class LengthLimits:
    """Output cap per sentence: min(ratio * source_subwords + extra, hard_cap); source cap and policy."""

    ratio: float = 1.5
    extra: int = 10
    hard_cap: int = 256
    max_source_tokens: int = 400
    on_long_input: Literal["truncate", "reject"] = "truncate"

    def max_output(self, source_tokens: int) -> int:
        """Most target subwords allowed for a source of `source_tokens` subwords."""
        return max(1, min(int(self.ratio * source_tokens + self.extra), self.hard_cap))


@dataclass(frozen=True)
class Alternative:
    """A lower-ranked output of n-best search."""

    text: str
    score: float


@dataclass(frozen=True)
class Translation:
    """One translated text: ranking score (length-normalised log-probability) and extras on request."""

    text: str
    score: float
    log_prob: float = 0.0
    alternatives: list[Alternative] = field(default_factory=list)
    alignment: list[list[float]] | None = None  # rows: target_tokens; columns: source_tokens (eos last)
    source_tokens: list[str] | None = None
    target_tokens: list[str] | None = None
    word_alignment: list[int] | None = None  # with attention: each word of `text` -> its source word (-1: none)


def clean_text(text: str) -> str:
    """One line of text: control characters (newlines included) become spaces, ends stripped."""
    if text.isprintable():
        return text.strip()
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).strip()


class Translator:
    """Translate lists of texts with a loaded model: batched greedy or beam search."""

    def __init__(
        self,
        model: Seq2Seq,
        tokenizer: Tokenizer,
        device: torch.device | str = "cpu",
        limits: LengthLimits | None = None,
        options: SearchOptions | None = None,
        info: ModelInfo | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.batch_tokens = default_batch_tokens(self.device)  # what `translate` batches by unless told
        self.limits = limits or LengthLimits()
        self.options = options or SearchOptions()
        # a model built in memory (tests, training) has no languages or metadata: an empty description
        self.info = info or ModelInfo(model.config, source_language="", target_language="")
        self.precision: str = "fp32"  # what `from_dir` converted the model to; a model passed in runs as it is
        self.shortlist: Shortlist | None = None

    @property
    def searched(self) -> str:
        """What each sentence's search covers, for logs: 'a shortlist' or 'the whole vocabulary'."""
        return "a shortlist" if self.shortlist is not None else "the whole vocabulary"

    @classmethod
    def from_dir(
        cls,
        path: Path | str,
        device: str = "auto",
        precision: str = "auto",
        limits: LengthLimits | None = None,
        options: SearchOptions | None = None,
        shortlist: ShortlistUse = "auto",
        footprint: Footprint = "fast",
    ) -> Translator:
        """Load a model directory for inference in `precision` (see `nmt.precision`; auto: the fastest here).

        Its shortlist, if it has one, is searched as `shortlist` says (see `nmt.shortlist`: auto, on CPUs);
        `footprint` trades memory for speed (`nmt.precision`: fast, or lean for many models at once).
        """
        dev = resolve_device(device)
        loaded = load_model_dir(Path(path), device=dev)
        chosen = resolve_precision(precision, dev, loaded.info.model)
        model = prepare(loaded.model.to(weight_dtype(chosen)), chosen, footprint)
        release_free_memory()  # the fp32 weights int8 was made from
        translator = cls(model, loaded.tokenizer, dev, limits, options, loaded.info)
        translator.precision = chosen
        if uses_shortlist(shortlist, dev) and (Path(path) / SHORTLIST_FILE).is_file():
            translator.shortlist = Shortlist.load(Path(path) / SHORTLIST_FILE)
        return translator

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Source ids of each cleaned text, truncated to the source limit (or rejected); blank gives []."""
        ids = self.tokenizer.encode_src([self.protect(t).text for t in texts])
        cap = self.limits.max_source_tokens
        if self.limits.on_long_input == "reject":
            for i, seq in enumerate(ids):
                if len(seq) > cap:
                    raise InputError(f"text {i} has {len(seq)} subwords, over the limit of {cap}")
        return [seq[:cap] for seq in ids]

    @staticmethod
    def protect(text: str) -> Protected:
        """What the model sees of a text: cleaned, placeholders masked (`nmt.placeholders`)."""
        return protect(clean_text(text))

    @torch.inference_mode()
    def translate_ids(
        self,
        sources: Sequence[Sequence[int]],
        options: SearchOptions | None = None,
        batch_tokens: int | None = None,
    ) -> list[list[Hypothesis]]:
        """n-best hypotheses for every id list, searched in length-sorted batches within `batch_tokens`
        (default: the device's), in input order; a batch that runs out of GPU memory is searched in halves."""
        options = options or self.options
        empty = [Hypothesis(tokens=[], score=0.0, log_prob=0.0)]
        results: list[list[Hypothesis]] = [empty] * len(sources)
        nonempty = [i for i, s in enumerate(sources) if s]
        lengths = [len(sources[i]) + 1 for i in nonempty]  # + eos
        if self.model.training:  # the model may be shared by concurrent searches: never flip its mode here
            raise RuntimeError("Translator needs its model in eval mode (model.eval())")
        # sort-and-batch; refilling a running beam search (BeamSearch.admit) measured slower here: see docs
        for batch in token_batches(lengths, batch_tokens or self.batch_tokens):
            rows = [nonempty[i] for i in batch]
            for row, hyps in zip(rows, halving_on_oom(partial(self._search_rows, sources, options), rows), strict=True):
                results[row] = hyps
        return results

    def _search_rows(
        self, sources: Sequence[Sequence[int]], options: SearchOptions, rows: list[int]
    ) -> list[list[Hypothesis]]:
        """n-best hypotheses of sources `rows`, searched as one batch."""
        state, caps = self.start_state(sources, rows, options), self.output_caps(sources, rows)
        return search(self.model.step, state, caps, BOS_ID, EOS_ID, options)

    def start_state(
        self, sources: Sequence[Sequence[int]], rows: list[int], options: SearchOptions, running: bool = False
    ) -> DecoderState:
        """The decoder's start state for sources `rows`, with their shortlists where searched: what
        `search` starts from, or (`running`) what joins a running `BeamSearch`, whose shortlists share
        the whole generator (`OutputVocab.of`)."""
        src, src_len = pad_batch([source_ids(sources[r]) for r in rows], self.device)
        state = self.model.encode(src, src_len)
        if self.shortlist is not None and 2 * options.beam_size <= self.shortlist.shortest:
            picked = [sources[r] for r in rows]
            vocab = self.shortlist.vocab(picked, self.model.decoder.generator, self.device, whole=running)
            state = replace(state, vocab=vocab)
        return state

    def output_caps(self, sources: Sequence[Sequence[int]], rows: list[int]) -> torch.Tensor:
        """Most output subwords for sources `rows` (LengthLimits)."""
        return torch.tensor([self.limits.max_output(len(sources[r])) for r in rows])

    def translate(
        self, texts: Sequence[str], options: SearchOptions | None = None, batch_tokens: int | None = None
    ) -> list[Translation]:
        """Translate texts, answering in input order; see the module docstring for odd inputs."""
        options = options or self.options
        sources = self.encode(texts)
        return self.finish(texts, sources, self.translate_ids(sources, options, batch_tokens), options)

    def finish(
        self,
        texts: Sequence[str],
        sources: Sequence[Sequence[int]],
        nbest: Sequence[Sequence[Hypothesis]],
        options: SearchOptions | None = None,
    ) -> list[Translation]:
        """Translations from the hypotheses that `translate_ids` found for `encode(texts)`."""
        options = options or self.options
        flat = [h for hyps in nbest for h in hyps]
        decoded = iter(self.tokenizer.decode_tgt([h.tokens for h in flat]))
        out = []
        for text, src, hyps in zip(texts, sources, nbest, strict=True):
            masked = self.protect(text)
            texts_n = [next(decoded) for _ in hyps]
            best = hyps[0]
            extra: dict[str, object] = {}
            src_pieces = tgt_pieces = alignment = None
            words: list[int] = []
            if options.return_attention:  # the only search that records attention, which `restore` can use
                src_pieces = [*self.tokenizer.src_pieces(masked.text)[: len(src)], EOS_PIECE]
                tgt_pieces = [*self.tokenizer.tgt_pieces(best.tokens), EOS_PIECE]
                alignment = [] if best.attention is None else best.attention.tolist()
                extra = {"alignment": alignment, "source_tokens": src_pieces, "target_tokens": tgt_pieces}
                words = masked_alignment(masked.text, texts_n[0], alignment, src_pieces[:-1], tgt_pieces[:-1])
            masked_best = texts_n[0]
            texts_n = [restore(texts_n[0], masked, src_pieces, tgt_pieces, alignment)] + [
                restore(t, masked) for t in texts_n[1:]
            ]
            if options.return_attention:
                unchanged = texts_n[0] == masked_best and not masked.changed
                extra["word_alignment"] = (
                    words if unchanged else restored_alignment(masked, masked_best, texts_n[0], words)
                )
            alternatives = [Alternative(t, h.score) for t, h in zip(texts_n[1:], hyps[1:], strict=True)]
            out.append(Translation(texts_n[0], best.score, best.log_prob, alternatives, **extra))  # type: ignore[arg-type]
        return out

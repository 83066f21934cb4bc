"""Texts in, translated texts out, through the batcher: what both HTTP APIs call.

A text is cut into sentences (its line breaks kept), every sentence goes through the shared
batcher, and the translations are put back in the text's layout. For a text of several
sentences the score is the mean of the sentence scores, alternative k joins each sentence's
k-th alternative (its best when it has fewer), and the alignment lists one entry per sentence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from nmt.documents.base import Parsed
from nmt.documents.html import fragment
from nmt.routing import UnsupportedPair, chain_alignment
from nmt.search import SearchOptions
from nmt.segment import Segmented, split_text
from nmt.translator import Translation, Translator
from service.batcher import Batcher
from service.detect import detect_language
from service.metrics import Metrics
from service.registry import ModelEntry, ModelRegistry


@dataclass(frozen=True)
class SentenceAlignment:
    """Attention weights of one sentence: rows are target tokens, columns source tokens."""

    source_tokens: list[str]
    target_tokens: list[str]
    weights: list[list[float]]


@dataclass(frozen=True)
class TextResult:
    """One translated text."""

    text: str
    score: float
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    alignment: list[SentenceAlignment] | None = None
    word_alignment: list[int] | None = None  # with attention: each word of `text` -> its source word (nmt.alignment)


class Engine:
    """Segment, submit to the batcher, reassemble."""

    def __init__(self, batcher: Batcher, metrics: Metrics, models: ModelRegistry, timeout_s: float) -> None:
        self.batcher = batcher
        self.metrics = metrics
        self.models = models
        self.timeout_s = timeout_s

    async def translate(
        self, entry: ModelEntry, texts: Sequence[str], options: SearchOptions, arrived: float | None = None
    ) -> list[TextResult]:
        """Translations of `texts` in order; raises the batcher's errors (Overloaded, DeadlineExceeded...).

        The deadline runs from `arrived` (event-loop time of the request's arrival, default now); a model
        that is not loaded loads first, within it. Segmentation and tokenisation run on a thread, so a
        large request never holds the event loop.
        """
        loop = asyncio.get_running_loop()
        start = loop.time() if arrived is None else arrived
        async with self.models.use(entry, max(start + self.timeout_s - loop.time(), 0.0)) as translator:
            segmented, sentences, sources = await asyncio.to_thread(self._prepare, translator, texts)
            nbest = await self.batcher.submit(translator, sources, options, self.timeout_s, start)
            done = translator.finish(sentences, sources, nbest, options)
        self.metrics.sentences.labels(entry.id).inc(len(sentences))
        self.metrics.source_tokens.labels(entry.id).inc(sum(len(s) for s in sources))
        self.metrics.target_tokens.labels(entry.id).inc(sum(len(h[0].tokens) for h in nbest))
        results, start = [], 0
        for seg in segmented:
            parts = done[start : start + len(seg.sentences)]
            start += len(parts)
            results.append(self._assemble(seg, parts, options))
        return results

    async def translate_route(
        self, route: Sequence[ModelEntry], texts: Sequence[str], options: SearchOptions, arrived: float | None = None
    ) -> list[TextResult]:
        """`translate` through a chain of models (a pivot): every leg but the last keeps only its best.

        The score of a chained translation is the sum of its legs' scores; the word alignment is the
        legs' composed, and the subword alignment, which would relate pieces of different vocabularies,
        is left out.
        """
        if len(route) == 1:
            return await self.translate(route[0], texts, options, arrived)
        middle = await self.translate_route(route[:-1], texts, replace(options, n_best=1), arrived)
        last = await self.translate(route[-1], [r.text for r in middle], options, arrived)
        return [
            TextResult(
                r.text,
                r.score + m.score,
                [(t, s + m.score) for t, s in r.alternatives],
                word_alignment=chain_alignment(m.word_alignment, r.word_alignment),
            )
            for r, m in zip(last, middle, strict=True)
        ]

    async def translate_pair(
        self,
        registry: ModelRegistry,
        texts: Sequence[str],
        source: str,
        target: str,
        options: SearchOptions,
        arrived: float | None = None,
        markup: bool = False,
    ) -> tuple[list[TextResult], list[tuple[str, float]]]:
        """Translations of `texts` from `source` (or "auto": detected per text) into `target`.

        Returns the results in order and, for "auto", each text's (language, confidence). With
        `markup`, each text is an HTML fragment, translated with its markup put back
        (`nmt.documents.html.fragment`) and detected on its text as a whole.
        Raises UnsupportedPair when no model or pivot chain reaches `target`.
        """
        if markup:
            parsed = await asyncio.to_thread(lambda: [fragment(t) for t in texts])
            plain = [" ".join(p.texts) for p in parsed]
        else:
            plain = list(texts)
        detected: list[tuple[str, float]] = []
        if source == "auto":
            candidates = registry.source_languages(target)
            if not candidates:
                raise UnsupportedPair(f"no loaded model translates into {target}")
            detected = [detect_language(t, candidates)[0] for t in plain]
        sources = [lang for lang, _ in detected] or [source] * len(texts)
        groups: dict[str, list[int]] = {}
        for i, lang in enumerate(sources):
            groups.setdefault(lang, []).append(i)
        if markup:
            aligned = replace(options, n_best=1, return_attention=True)
            work = [self._markup(registry.route(lang, target), [parsed[i] for i in rows], target, aligned, arrived)
                    for lang, rows in groups.items()]  # fmt: skip
        else:
            work = [
                self.translate_route(registry.route(lang, target), [texts[i] for i in rows], options, arrived)
                for lang, rows in groups.items()
            ]
        done = await asyncio.gather(*work)
        results: list[TextResult | None] = [None] * len(texts)
        for rows, group in zip(groups.values(), done, strict=True):
            for i, r in zip(rows, group, strict=True):
                results[i] = r
        return [r for r in results if r is not None], detected

    async def _markup(
        self, route: Sequence[ModelEntry], parsed: Sequence[Parsed], target: str, options: SearchOptions,
        arrived: float | None,
    ) -> list[TextResult]:  # fmt: skip
        """Parsed HTML fragments translated along `route` and rendered back to HTML."""
        flat = [t for p in parsed for t in p.texts]
        results = await self.translate_route(route, flat, options, arrived) if flat else []
        out, start = [], 0
        for p in parsed:
            part = results[start : start + len(p.texts)]
            start += len(p.texts)
            out.append(TextResult(p.render(part, target).decode("utf-8"), 0.0))
        return out

    @staticmethod
    def _prepare(translator: Translator, texts: Sequence[str]) -> tuple[list[Segmented], list[str], list[list[int]]]:
        """Texts cut into sentences, and the sentences' source ids."""
        segmented = [split_text(t) for t in texts]
        sentences = [s for seg in segmented for s in seg.sentences]
        return segmented, sentences, translator.encode(sentences)

    @staticmethod
    def _assemble(seg: Segmented, parts: list[Translation], options: SearchOptions) -> TextResult:
        joined = seg.join_results(parts, options.n_best, options.return_attention)
        alignment = None
        if options.return_attention:
            alignment = [
                SentenceAlignment(p.source_tokens or [], p.target_tokens or [], p.alignment or []) for p in parts
            ]
        alternatives = [(a.text, a.score) for a in joined.alternatives]
        return TextResult(joined.text, joined.score, alternatives, alignment, joined.word_alignment)

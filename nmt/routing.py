"""Which models take one language to another: directly, or two chained through a pivot language.

One rule for the service and the command line: a model translating the pair wins; otherwise
two models through a pivot, English first, then the other languages in alphabetical order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

from nmt.alignment import compose
from nmt.errors import InputError, ModelLoadError
from nmt.model_dir import read_config
from nmt.search import SearchOptions
from nmt.segment import split_text
from nmt.translator import Alternative, Translation, Translator

PIVOT_LANGUAGE = "en"

Pair = tuple[str, str]


class UnsupportedPair(InputError):
    """No model, and no chain of two through a pivot language, translates source into target."""


def find_route(pairs: Collection[Pair], source: str, target: str) -> list[Pair] | None:
    """The pairs (models) that take `source` to `target`: one, or two through a pivot; None if none do."""
    if (source, target) in pairs:
        return [(source, target)]
    if source == target:
        return None
    pivots = {t for _, t in pairs} - {source, target}
    for pivot in sorted(pivots, key=lambda lang: (lang != PIVOT_LANGUAGE, lang)):
        if (source, pivot) in pairs and (pivot, target) in pairs:
            return [(source, pivot), (pivot, target)]
    return None


def reachable(pairs: Collection[Pair]) -> dict[str, list[str]]:
    """Every source language with the targets it reaches, directly or through a pivot."""
    found = {
        s: [t for t in sorted({t for _, t in pairs}) if find_route(pairs, s, t)] for s in sorted({s for s, _ in pairs})
    }
    return {s: t for s, t in found.items() if t}


def route(pairs: Collection[Pair], source: str, target: str) -> list[Pair]:
    """`find_route`, or UnsupportedPair naming what is available."""
    found = find_route(pairs, source, target)
    if found is None:
        available = "; ".join(f"{s}->{','.join(t)}" for s, t in reachable(pairs).items())
        raise UnsupportedPair(f"{source}->{target} is not supported; available: {available}")
    return found


def find_model_dirs(models_dir: Path) -> list[Path]:
    """Model directories under `models_dir` (itself, if it is one; sorted); none found is a ModelLoadError."""
    if not models_dir.is_dir():
        raise ModelLoadError(f"models directory {models_dir} does not exist")
    if (models_dir / "config.json").is_file():
        return [models_dir]
    found = sorted(p for p in models_dir.iterdir() if (p / "config.json").is_file())
    if not found:
        raise ModelLoadError(f"no model directory (a folder with config.json) under {models_dir}")
    return found


def model_route(models: Path, source: str | None, target: str | None) -> list[Path]:
    """The model directories, in order, that take `source` to `target` among those under `models`.

    Without a pair, `models` must hold exactly one model. A model directory given with a pair
    that it does not translate is an InputError.
    """
    if not models.is_dir():
        raise ModelLoadError(f"model directory {models} does not exist")
    dirs = find_model_dirs(models)
    by_pair: dict[Pair, Path] = {}
    for path in dirs:
        config = read_config(path)
        by_pair.setdefault((config["source_language"], config["target_language"]), path)
    if source is None and target is None:
        if len(dirs) > 1:
            raise InputError(f"{models} holds {len(dirs)} models: name the pair with --source and --target")
        return dirs
    if source is None or target is None:
        raise InputError("--source and --target go together")
    return [by_pair[pair] for pair in route(set(by_pair), source, target)]


def translate_through(
    translators: Sequence[Translator],
    texts: Sequence[str],
    options: SearchOptions,
    batch_tokens: int | None = None,
) -> list[Translation]:
    """Translate through a chain of models: each leg but the last keeps its best translation only.

    Each leg batches within `batch_tokens`, by default its device's budget. A chained
    translation's score is the sum of its legs' scores; with attention asked for, its word
    alignment is the legs' composed, and the subword attention, which would relate pieces of
    two vocabularies, is not given.
    """
    if len(translators) == 1:
        return translators[0].translate(texts, options, batch_tokens)
    middle = translate_through(translators[:-1], texts, replace(options, n_best=1), batch_tokens)
    last = translators[-1].translate([m.text for m in middle], options, batch_tokens)
    return [
        Translation(
            r.text,
            r.score + m.score,
            r.log_prob + m.log_prob,
            [Alternative(a.text, a.score + m.score) for a in r.alternatives],
            word_alignment=chain_alignment(m.word_alignment, r.word_alignment),
        )
        for r, m in zip(last, middle, strict=True)
    ]


def chain_alignment(first: Sequence[int] | None, second: Sequence[int] | None) -> list[int] | None:
    """The word alignment of a two-leg translation, where both legs have one."""
    return compose(first, second) if first is not None and second is not None else None


def translate_texts(
    translators: Sequence[Translator], texts: Sequence[str], options: SearchOptions, batch_tokens: int | None = None
) -> list[Translation]:
    """Translate whole texts sentence by sentence (`nmt.segment`), keeping their line breaks.

    What the service does with a request's texts, for callers without it (file translation);
    a text's score is the mean of its sentences', its word alignment theirs joined."""
    segmented = [split_text(t) for t in texts]
    sentences = [s for seg in segmented for s in seg.sentences]
    done = translate_through(translators, sentences, replace(options, n_best=1), batch_tokens)
    out, start = [], 0
    for seg in segmented:
        parts = done[start : start + len(seg.sentences)]
        start += len(parts)
        out.append(seg.join_results(parts, 1, options.return_attention))
    return out

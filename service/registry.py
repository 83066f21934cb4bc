"""The loaded models, by id: every model directory under the models directory.

A model directory is any subdirectory holding a `config.json` (the models directory itself
may also be one). Ids come from each model's config (`name`, else `src-tgt`, e.g. `de-en`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from nmt import routing
from nmt.errors import ModelLoadError
from nmt.routing import Pair, find_model_dirs
from nmt.search import SearchOptions
from nmt.shortlist import ShortlistUse
from nmt.translator import Translator

log = logging.getLogger(__name__)


class UnknownModel(LookupError):
    """No loaded model has the id a request named (404)."""


class ModelNotNamed(LookupError):
    """Several models are loaded and the request named none (422)."""


@dataclass(frozen=True)
class ModelEntry:
    """One servable model."""

    id: str
    path: Path
    translator: Translator

    @property
    def source_language(self) -> str:
        return self.translator.info.source_language

    @property
    def target_language(self) -> str:
        return self.translator.info.target_language

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.translator.model.parameters())


class ModelRegistry:
    """Models by id, with lookups by id and by language pair."""

    def __init__(self, entries: list[ModelEntry]) -> None:
        self.entries = {e.id: e for e in entries}

    @classmethod
    def load(
        cls, models_dir: Path, device: str = "auto", precision: str = "auto", shortlist: ShortlistUse = "auto"
    ) -> ModelRegistry:
        """Load and warm up every model directory; duplicate ids are a ModelLoadError."""
        entries: list[ModelEntry] = []
        paths = find_model_dirs(models_dir)
        for path in paths:
            translator = Translator.from_dir(path, device=device, precision=precision, shortlist=shortlist)
            model_id = translator.info.model_id
            if any(e.id == model_id for e in entries):
                raise ModelLoadError(f"two model directories have the id {model_id!r}: rename one in its config.json")
            translator.translate(["Warm-up."], SearchOptions(beam_size=2))
            log.info("loaded model %s from %s on %s, precision %s (asked for %s), searching %s", model_id, path,
                     translator.device, translator.precision, precision, translator.searched)  # fmt: skip
            entries.append(ModelEntry(model_id, path, translator))
        return cls(entries)

    def get(self, model_id: str | None) -> ModelEntry:
        """The model named `model_id`, or the only one when it is None; UnknownModel or ModelNotNamed otherwise."""
        if model_id is None:
            if len(self.entries) == 1:
                return next(iter(self.entries.values()))
            raise ModelNotNamed(f"several models are loaded; name one of: {', '.join(self.entries)}")
        if model_id not in self.entries:
            raise UnknownModel(f"unknown model {model_id!r}; available: {', '.join(self.entries)}")
        return self.entries[model_id]

    @property
    def pairs(self) -> dict[Pair, ModelEntry]:
        """The first model loaded for each (source, target) pair."""
        found: dict[Pair, ModelEntry] = {}
        for e in self.entries.values():
            found.setdefault((e.source_language, e.target_language), e)
        return found

    def route(self, source: str, target: str) -> list[ModelEntry]:
        """The models taking `source` to `target` (see nmt.routing); UnsupportedPair when none do."""
        pairs = self.pairs
        return [pairs[p] for p in routing.route(set(pairs), source, target)]

    def reachable(self) -> dict[str, list[str]]:
        """Every source language with the targets it reaches, directly or through a pivot."""
        return routing.reachable(set(self.pairs))

    def source_languages(self, target: str | None = None) -> list[str]:
        """Source languages that reach `target` (any target when None)."""
        return sorted(s for s, t in self.reachable().items() if target is None or target in t)

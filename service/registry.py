"""The loaded models, by id: every model directory under the models directory.

A model directory is any subdirectory holding a `config.json` (the models directory itself
may also be one). Ids come from each model's config (`name`, else `src-tgt`, e.g. `de-en`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from nmt.device import resolve_device
from nmt.errors import ModelLoadError
from nmt.search import SearchOptions
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


def find_model_dirs(models_dir: Path) -> list[Path]:
    """Model directories under `models_dir` (sorted); a missing or empty directory is a ModelLoadError."""
    if not models_dir.is_dir():
        raise ModelLoadError(f"models directory {models_dir} does not exist")
    if (models_dir / "config.json").is_file():
        return [models_dir]
    found = sorted(p for p in models_dir.iterdir() if (p / "config.json").is_file())
    if not found:
        raise ModelLoadError(f"no model directory (a folder with config.json) under {models_dir}")
    return found


class ModelRegistry:
    """Models by id, with lookups by id and by language pair."""

    def __init__(self, entries: list[ModelEntry]) -> None:
        self.entries = {e.id: e for e in entries}

    @classmethod
    def load(cls, models_dir: Path, device: str = "auto", dtype: str = "fp32", quantize: str = "none") -> ModelRegistry:
        """Load and warm up every model directory; duplicate ids are a ModelLoadError."""
        entries: list[ModelEntry] = []
        paths = find_model_dirs(models_dir)
        on_cuda = resolve_device(device).type == "cuda"
        dtype = dtype if on_cuda else "fp32"  # NMT_DTYPE applies on CUDA; the CPU runs fp32 (or int8)
        int8 = "int8" if quantize == "int8" and not on_cuda else None
        for path in paths:
            translator = Translator.from_dir(path, device=device, dtype=dtype, quantize=int8)
            model_id = translator.info.model_id
            if any(e.id == model_id for e in entries):
                raise ModelLoadError(f"two model directories have the id {model_id!r}: rename one in its config.json")
            translator.translate(["Warm-up."], SearchOptions(beam_size=2))
            log.info("loaded model %s from %s on %s", model_id, path, translator.device)
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

    def for_pair(self, source: str, target: str) -> ModelEntry | None:
        """The model translating `source` into `target`, if one is loaded."""
        for entry in self.entries.values():
            if entry.source_language == source and entry.target_language == target:
                return entry
        return None

    def source_languages(self, target: str | None = None) -> list[str]:
        """Source languages of the loaded models (into `target` when given)."""
        return sorted(
            {e.source_language for e in self.entries.values() if target is None or e.target_language == target}
        )

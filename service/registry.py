"""The servable models, by id: every model directory under the models directory, loaded when needed.

A model directory is any subdirectory holding a `config.json` (the models directory itself
may also be one). Ids come from each model's config (`name`, else `src-tgt`, e.g. `de-en`).
Every model found is listed; its weights load on first use (or at start, as the memory
budget allows) and, when loading another would pass the budget, the least recently used
model that no request is using is unloaded. `rescan` finds directories added or removed
while the service runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nmt import routing
from nmt.errors import ModelLoadError
from nmt.memory import release_free_memory
from nmt.model import build_model
from nmt.model_dir import CONFIG_FILE, WEIGHTS_FILE, ModelInfo, read_model_info
from nmt.routing import Pair, find_model_dirs
from nmt.translator import Translator

log = logging.getLogger(__name__)

Loader = Callable[[Path], Awaitable[tuple[Translator, int]]]  # a translator and the bytes of memory it took


class UnknownModel(LookupError):
    """No model has the id a request named (404)."""


class ModelNotNamed(LookupError):
    """Several models are served and the request named none (422)."""


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded now: no memory left in the budget, or its files are broken (503)."""


@dataclass(eq=False)
class ModelEntry:
    """One servable model: what its config says, and its translator while loaded."""

    id: str
    path: Path
    info: ModelInfo
    parameters: int
    weights_bytes: int
    stamp: tuple[float, ...] = ()
    translator: Translator | None = None
    memory_bytes: int = 0  # resident memory its load took, measured
    last_used: float = 0.0
    users: int = 0  # requests using it now: it is not unloaded under them
    error: str | None = None  # why its load failed; a rescan that finds its files changed tries again
    loading: asyncio.Future[Translator] | None = field(default=None, repr=False)

    @property
    def source_language(self) -> str:
        return self.info.source_language

    @property
    def target_language(self) -> str:
        return self.info.target_language

    @property
    def loaded(self) -> bool:
        return self.translator is not None


def _stamp(path: Path) -> tuple[float, ...]:
    """When a model directory's files last changed: a rescan replaces an entry whose stamp moved."""
    return tuple(f.stat().st_mtime if f.is_file() else 0.0 for f in (path / CONFIG_FILE, path / WEIGHTS_FILE))


def _entry(path: Path) -> ModelEntry:
    """An unloaded entry for the model directory `path` (reads config.json only)."""
    info = read_model_info(path)
    with torch.device("meta"):  # shapes only: counts the parameters without allocating them
        parameters = sum(p.numel() for p in build_model(info.model).parameters())
    weights = path / WEIGHTS_FILE
    size = weights.stat().st_size if weights.is_file() else 0
    return ModelEntry(info.model_id, path, info, parameters, size, stamp=_stamp(path))


class ModelRegistry:
    """Models by id, with lookups by id and by language pair, loading and unloading them under a budget."""

    def __init__(self, models_dir: Path, loader: Loader, budget_bytes: int | None = None) -> None:
        self.models_dir = models_dir
        self.loader = loader
        self.budget_bytes = budget_bytes
        self.entries: dict[str, ModelEntry] = {}
        self.on_load: Callable[[ModelEntry], None] = lambda entry: None
        self.on_unload: Callable[[ModelEntry, Translator], None] = lambda entry, translator: None
        self._changed: asyncio.Condition | None = None  # a user left or a model unloaded: room may have freed

    def rescan(self) -> tuple[list[str], list[str]]:
        """Read the models directory again: (ids added, ids removed). Duplicate ids are a ModelLoadError."""
        found: dict[str, ModelEntry] = {}
        for path in find_model_dirs(self.models_dir):
            known = next((e for e in self.entries.values() if e.path == path), None)
            entry = known if known is not None and known.stamp == _stamp(path) else _entry(path)
            if entry.id in found:
                raise ModelLoadError(f"two model directories have the id {entry.id!r}: rename one in its config.json")
            found[entry.id] = entry
        added = [i for i, e in found.items() if self.entries.get(i) is not e]
        removed = [i for i, e in self.entries.items() if found.get(i) is not e]
        for model_id in removed:
            self._unload(self.entries[model_id])  # requests using it keep their translator until they end
        self.entries = found
        if added or removed:
            log.info("models: %s new or changed, %s gone or replaced", ", ".join(added) or "none",
                     ", ".join(removed) or "none")  # fmt: skip
        return added, removed

    async def preload(self) -> None:
        """Load every model the budget holds, in directory order, at start-up."""
        for entry in list(self.entries.values()):
            if self.budget_bytes is not None and self.used_bytes() + self._estimate(entry) > self.budget_bytes:
                log.info("model %s loads on first use: the memory budget is taken", entry.id)
                continue
            await self._ensure(entry)

    @asynccontextmanager
    async def use(self, entry: ModelEntry, timeout_s: float) -> AsyncIterator[Translator]:
        """The entry's translator, loaded if need be (waiting at most `timeout_s`), kept loaded while in use."""
        entry.users += 1
        try:
            entry.last_used = time.monotonic()
            try:
                translator = await asyncio.wait_for(asyncio.shield(self._ensure(entry)), timeout_s)
            except TimeoutError:
                raise ModelUnavailable(f"model {entry.id} is still loading; retry later") from None
            yield translator
        finally:
            entry.users -= 1
            entry.last_used = time.monotonic()
            await self._notify()

    async def _ensure(self, entry: ModelEntry) -> Translator:
        if entry.translator is not None:
            return entry.translator
        if entry.error is not None:
            raise ModelUnavailable(entry.error)
        if entry.loading is None:
            entry.loading = asyncio.ensure_future(self._load(entry))
        try:
            return await asyncio.shield(entry.loading)
        finally:
            if entry.loading is not None and entry.loading.done():
                entry.loading = None

    async def _load(self, entry: ModelEntry) -> Translator:
        await self._make_room(entry)
        try:
            translator, memory = await self.loader(entry.path)
        except (ModelLoadError, OSError, RuntimeError, ValueError) as err:
            entry.error = f"model {entry.id} could not be loaded (fix it and reload the models): {err}"
            log.error("%s", entry.error)
            raise ModelUnavailable(entry.error) from err
        entry.translator, entry.memory_bytes = translator, max(memory, entry.weights_bytes)
        log.info("loaded model %s from %s on %s, precision %s, searching %s, %.1f MB", entry.id, entry.path,
                 translator.device, translator.precision, translator.searched, entry.memory_bytes / 2**20)  # fmt: skip
        self.on_load(entry)
        return translator

    async def _make_room(self, entry: ModelEntry) -> None:
        """Unload least recently used idle models until `entry` fits the budget; wait while the rest are busy."""
        if self.budget_bytes is None:
            return
        need = self._estimate(entry)
        while self.used_bytes() + need > self.budget_bytes:
            idle = [e for e in self.entries.values() if e.loaded and e.users == 0 and e is not entry]
            if idle:
                self._unload(min(idle, key=lambda e: e.last_used))
                continue
            if not any(e.loaded for e in self.entries.values()):
                log.warning("model %s (%.0f MB) is larger than the memory budget alone", entry.id, need / 2**20)
                return
            async with self._condition():
                await self._condition().wait()  # every other loaded model is in use: wait for one to be free

    def _unload(self, entry: ModelEntry) -> None:
        translator, entry.translator = entry.translator, None
        if translator is None:
            return
        log.info("unloading model %s (%.1f MB)", entry.id, entry.memory_bytes / 2**20)
        self.on_unload(entry, translator)
        del translator  # requests using it keep their own reference until they end
        release_free_memory()

    def used_bytes(self) -> int:
        """Memory the loaded models took, as measured when each loaded."""
        return sum(e.memory_bytes for e in self.entries.values() if e.loaded)

    def _estimate(self, entry: ModelEntry) -> int:
        """Memory a load of `entry` will take: measured before, else the most a loaded model took per weight byte."""
        if entry.memory_bytes:
            return entry.memory_bytes
        ratios = [e.memory_bytes / e.weights_bytes for e in self.entries.values() if e.memory_bytes and e.weights_bytes]
        return int(entry.weights_bytes * max(ratios, default=2.0))

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _notify(self) -> None:
        async with self._condition():
            self._condition().notify_all()

    def get(self, model_id: str | None) -> ModelEntry:
        """The model named `model_id`, or the only one when it is None; UnknownModel or ModelNotNamed otherwise."""
        if model_id is None:
            if len(self.entries) == 1:
                return next(iter(self.entries.values()))
            raise ModelNotNamed(f"several models are served; name one of: {', '.join(self.entries)}")
        if model_id not in self.entries:
            raise UnknownModel(f"unknown model {model_id!r}; available: {', '.join(self.entries)}")
        return self.entries[model_id]

    @property
    def pairs(self) -> dict[Pair, ModelEntry]:
        """The first model found for each (source, target) pair."""
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

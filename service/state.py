"""What one running app holds: settings, models, batcher, metrics, and its lifecycle flags.

Lifecycle: `loading` (alive, not ready) -> `ready` -> `draining` (SIGTERM: in-flight requests
finish, new ones get 503) -> stopped. A model that fails to load leaves the app `failed`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from nmt.memory import release_free_memory, rss_bytes
from nmt.search import SearchOptions
from nmt.translator import Translator
from service.batcher import Batcher
from service.engine import Engine
from service.files import FileStore
from service.metrics import Metrics
from service.registry import ModelEntry, ModelRegistry
from service.settings import Settings

log = logging.getLogger(__name__)


class ServiceState:
    """The app's models and machinery; created by `create_app`, started by its lifespan."""

    def __init__(self, settings: Settings, on_fatal: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        budget = None if settings.max_model_memory_mb is None else int(settings.max_model_memory_mb * 2**20)
        self.models = ModelRegistry(settings.models_dir, self._load, budget)
        self.models.on_load, self.models.on_unload = self._loaded, self._unloaded
        self.registry: ModelRegistry | None = None  # the models, once start-up found them (readiness)
        self.load_error: str | None = None
        self.draining = False
        self.in_flight = 0
        self._drain_end: float | None = None  # event-loop time the drain must end by
        self._on_fatal = on_fatal
        self.batcher = Batcher(
            batch_tokens=settings.search_tokens,
            max_wait_s=settings.max_wait_ms / 1000,
            queue_limit=settings.queue_limit,
            batching=settings.batching,
            on_batch=self.metrics.observe_batch,
            on_crash=lambda _: self.metrics.worker_restarts.inc(),
        )
        self.metrics.track_queue(lambda: self.batcher.queued, lambda: self.batcher.running)
        self.metrics.model_memory.set_function(self.models.used_bytes)
        self.engine = Engine(self.batcher, self.metrics, self.models, settings.request_timeout_s)
        self.files = FileStore(settings.file_ttl_s)

    @property
    def status(self) -> str:
        """loading, ready, draining, failed, or worker-down (the batching worker is restarting)."""
        if self.load_error is not None:
            return "failed"
        if self.draining:
            return "draining"
        if self.registry is None:
            return "loading"
        return "ready" if self.batcher.healthy else "worker-down"

    async def load_models(self) -> None:
        """Find the model directories and load what the memory budget holds, on the worker's thread (off the
        event loop, so liveness answers meanwhile); the rest load on first use."""
        try:
            self.models.rescan()
            if self.settings.preload:
                await self.models.preload()
        except Exception as err:
            self.load_error = str(err) or type(err).__name__
            log.error("loading models failed: %s", self.load_error)
            if self._on_fatal is not None:
                self._on_fatal(self.load_error)
            return
        self.registry = self.models
        loaded = [e.id for e in self.models.entries.values() if e.loaded]
        log.info("ready: %s (loaded: %s; footprint %s)", ", ".join(self.models.entries), ", ".join(loaded) or "none",
                 self.settings.model_footprint)  # fmt: skip

    async def _load(self, path: Path) -> tuple[Translator, int]:
        """A model's translator, loaded and warmed up on the worker's thread, and the memory that took."""
        settings, footprint = self.settings, self.settings.model_footprint

        def load() -> tuple[Translator, int]:
            if settings.threads:
                torch.set_num_threads(settings.threads)
            before = rss_bytes()
            translator = Translator.from_dir(
                path, settings.device, settings.precision, shortlist=settings.shortlist, footprint=footprint
            )
            translator.translate(["Warm-up."], SearchOptions(beam_size=2))
            release_free_memory()
            return translator, rss_bytes() - before

        return await self.batcher.run_on_worker(load)

    def _loaded(self, entry: ModelEntry) -> None:
        assert entry.translator is not None
        self.metrics.model_info(entry.id, entry.translator)

    def _unloaded(self, entry: ModelEntry, translator: Translator) -> None:
        self.batcher.forget(translator)
        self.metrics.model_unloaded(entry.id, translator)

    async def drain(self, timeout_s: float) -> None:
        """Refuse new work and wait for in-flight requests to finish, at most `timeout_s` after the first call."""
        self.draining = True
        loop = asyncio.get_running_loop()
        if self._drain_end is None:
            self._drain_end = loop.time() + timeout_s
        end = self._drain_end
        while self.in_flight and loop.time() < end:
            await asyncio.sleep(0.02)
        if self.in_flight:
            log.warning("drain timeout: %d requests still in flight", self.in_flight)

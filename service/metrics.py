"""Prometheus metrics of one app (its own registry, so several apps can live in one process).

Requests by route and status with latency histograms (an ASGI middleware), queue depth,
batch sizes, and translated sentences and tokens.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Container

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nmt.translator import Translator
from service.batcher import BatchStats
from service.middleware import HTTPMiddleware

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """The service's metric families."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("nmt_http_requests", "HTTP requests", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "nmt_http_request_seconds", "HTTP request latency", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("nmt_queue_sentences", "sentences waiting to join a search", registry=r)
        self.running = Gauge("nmt_running_sentences", "sentences in running searches", registry=r)
        # a "batch" is one decoder step of a running search
        self.batch_sentences = Histogram(
            "nmt_batch_sentences", "sentences per search or decoder step", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_requests = Histogram(
            "nmt_batch_requests", "requests sharing one search or decoder step", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram("nmt_batch_seconds", "time of one search or decoder step",
                                       buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.sentences = Counter("nmt_translated_sentences", "sentences translated", ["model"], registry=r)
        self.source_tokens = Counter("nmt_source_tokens", "source subwords translated", ["model"], registry=r)
        self.target_tokens = Counter("nmt_target_tokens", "target subwords produced", ["model"], registry=r)
        self.model = Gauge(
            "nmt_model_info", "loaded models (value 1) with where and how they run", ["model", "device", "precision",
            "shortlist"], registry=r,
        )  # fmt: skip
        self.model_loads = Counter("nmt_model_loads", "model loads (at start or on first use)", ["model"], registry=r)
        self.model_unloads = Counter("nmt_model_unloads", "models unloaded (memory budget, reload)", ["model"],
                                     registry=r)  # fmt: skip
        self.model_memory = Gauge("nmt_model_memory_bytes", "resident memory the loaded models took", registry=r)
        self.worker_restarts = Counter(
            "nmt_worker_restarts", "times the batching worker failed and was restarted", registry=r
        )

    def model_info(self, model_id: str, translator: Translator) -> None:
        """Publish a loaded model's device, precision and whether it searches a shortlist."""
        self._model(model_id, translator).set(1)
        self.model_loads.labels(model_id).inc()

    def model_unloaded(self, model_id: str, translator: Translator) -> None:
        """A model left memory: its info series goes to 0."""
        self._model(model_id, translator).set(0)
        self.model_unloads.labels(model_id).inc()

    def _model(self, model_id: str, translator: Translator) -> Gauge:
        shortlist = "yes" if translator.shortlist is not None else "no"
        return self.model.labels(model_id, str(translator.device), translator.precision, shortlist)

    def observe_batch(self, stats: BatchStats) -> None:
        """Record one batch (the batcher's callback)."""
        self.batch_sentences.observe(stats.sentences)
        self.batch_requests.observe(stats.requests)
        self.batch_seconds.observe(stats.seconds)

    def track_queue(self, depth: Callable[[], float], running: Callable[[], float]) -> None:
        """Read the queue depth and the running sentences at every scrape."""
        self.queue_depth.set_function(depth)
        self.running.set_function(running)


class MetricsMiddleware(HTTPMiddleware):
    """Counts requests and times them per route; paths that are not routes count as 'other'."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Container[str]) -> None:
        super().__init__(app)
        self.metrics = metrics
        self.routes = routes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # deadlines run from here: the request's arrival, before its body is read
        scope.setdefault("state", {})["arrived"] = asyncio.get_running_loop().time()
        route = scope["path"] if scope["path"] in self.routes else "other"
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

"""The FastAPI app factory: `create_app(settings)`; nothing is loaded at import.

The lifespan starts the batcher, loads the models in the background (liveness answers at
once, readiness after loading) and on shutdown drains and stops the batcher.
For ASGI servers: `uvicorn --factory service.app:app_from_env`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.errors import install_error_handlers
from service.metrics import MetricsMiddleware
from service.middleware import BodyGuardMiddleware
from service.routes import files, health, libre, v1, web
from service.settings import Settings, load_settings
from service.state import ServiceState


def create_app(settings: Settings, on_fatal: Callable[[str], None] | None = None) -> FastAPI:
    """A new app serving the models under `settings.models_dir`; `on_fatal` hears of a failed load."""
    state = ServiceState(settings, on_fatal)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.batcher.start()
        loader = asyncio.create_task(state.load_models())
        try:
            yield
        finally:
            await state.drain(settings.drain_timeout_s)
            loader.cancel()
            await state.batcher.stop()
            state.files.close()

    app = FastAPI(
        title="NMT translation service",
        summary="Attention LSTM translation with cross-request batching; LibreTranslate-compatible routes.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = state
    install_error_handlers(app)
    routers = (v1.router, libre.router, files.router, files.downloads, health.router, web.router)
    for router in routers:
        app.include_router(router)
    routes = {getattr(r, "path", "") for router in routers for r in router.routes} | {"/docs", "/openapi.json"}
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    web.mount_static(app)
    app.add_middleware(BodyGuardMiddleware, limit=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, routes=routes)
    return app


def app_from_env() -> FastAPI:
    """App factory for ASGI servers: settings from the NMT_* environment."""
    return create_app(load_settings())

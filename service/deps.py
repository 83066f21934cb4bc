"""Dependencies shared by the routes: the app's state, readiness, API keys, in-flight counting."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from service.errors import RETRY_AFTER_S, ApiError, ClientGone
from service.registry import ModelRegistry
from service.state import ServiceState

T = TypeVar("T")


def get_state(request: Request) -> ServiceState:
    """The state of the app serving this request."""
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


def ready_registry(state: ServiceState) -> ModelRegistry:
    """The loaded models, or 503 while loading, draining or after a failed load."""
    if state.draining:
        raise ApiError(503, "the service is shutting down", {"Retry-After": str(RETRY_AFTER_S)})
    if state.registry is None:
        message = f"models failed to load: {state.load_error}" if state.load_error else "models are still loading"
        raise ApiError(503, message, {"Retry-After": str(RETRY_AFTER_S)})
    return state.registry


def request_key(request: Request) -> str | None:
    """The API key from `Authorization: Bearer KEY` or `X-API-Key`."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def check_key(state: ServiceState, key: str | None) -> None:
    """401 without a key, 403 with a wrong one; nothing when no keys are configured."""
    keys = state.settings.api_keys
    if not keys:
        return
    if not key:
        raise ApiError(401, "an API key is required (Authorization: Bearer KEY, X-API-Key or api_key)")
    given = key.encode("utf-8", "surrogatepass")  # a client may send any code point, lone surrogates too
    if not any(hmac.compare_digest(given, k.encode()) for k in keys):
        raise ApiError(403, "invalid API key")


async def _body_key(request: Request) -> object:
    """`api_key` from a JSON object or form body, if there is one (anything unreadable: none)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return (await request.form()).get("api_key")
        body = await request.body()
        if not body.strip():
            return None
        data = json.loads(body)
    except Exception:  # malformed bodies are reported by the route, after authentication
        return None
    return data.get("api_key") if isinstance(data, dict) else None


async def authenticate(request: Request, state: StateDep) -> None:
    """401/403 before the request is validated: keys come from `Authorization: Bearer`, `X-API-Key`,
    or `api_key` in the query string, a JSON body or a form."""
    if not state.settings.api_keys:
        return
    key = request_key(request) or request.query_params.get("api_key") or await _body_key(request)
    check_key(state, key if isinstance(key, str) else None)


Authenticated = Depends(authenticate)


def arrival(request: Request) -> float | None:
    """Event-loop time the request arrived (stamped by the metrics middleware): deadlines count from it."""
    arrived = getattr(request.state, "arrived", None)
    return arrived if isinstance(arrived, float) else None


async def count_in_flight(state: StateDep) -> AsyncIterator[None]:
    """Count the request as in flight while its handler runs, so draining can wait for it."""
    state.in_flight += 1
    try:
        yield
    finally:
        state.in_flight -= 1


InFlight = Depends(count_in_flight)


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it (and so dropping its queued sentences) if the client disconnects."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        # nobody awaits the cancelled work: take its outcome so asyncio does not log it as lost
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise ClientGone()
    return task.result()


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return

"""Operations routes: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import StateDep
from service.errors import RETRY_AFTER_S
from service.schemas import Status

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Status, response_model_exclude_none=True)
async def healthz() -> Status:
    """The process is alive and answering (models may still be loading)."""
    return Status(status="ok")


@router.get("/readyz", response_model=Status, responses={503: {"description": "loading, draining or failed"}})
async def readyz(state: StateDep) -> Response:
    """200 once every model is loaded and warmed up; 503 while loading, while draining, or after a failed load."""
    status = state.status
    if status != "ready":
        body = {"status": status, "error": state.load_error or f"not ready: {status}"}
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    assert state.registry is not None
    return JSONResponse({"status": status, "models": list(state.registry.entries)})


@router.get("/metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    """Prometheus text format: requests, latency, queue depth, batch sizes, sentences and tokens."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

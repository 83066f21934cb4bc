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


@router.get(
    "/readyz",
    response_model=Status,
    responses={503: {"description": "loading, draining, failed, or the batching worker is restarting"}},
)
async def readyz(state: StateDep) -> Response:
    """200 when the service can translate now: models loaded and warmed up, the batching worker running;
    503 while loading or draining, after a failed load, or while the worker restarts."""
    status = state.status
    if status != "ready":
        body = {"status": status, "error": state.load_error or f"not ready: {status}"}
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    assert state.registry is not None
    return JSONResponse({"status": status, "models": list(state.registry.entries)})


# probes often use HEAD: the same answers, without a body (and not listed twice in the schema)
router.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)
router.add_api_route("/readyz", readyz, methods=["HEAD"], include_in_schema=False)


@router.get("/metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    """Prometheus text format: requests, latency, queue depth, batch sizes, sentences and tokens."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

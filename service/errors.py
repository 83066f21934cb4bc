"""Every error answer of the service, in one place: `{"error": "message"}` with a 4xx/5xx status.

Routes raise `ApiError` (or library errors); the handlers here turn them, request validation
failures and anything unexpected into JSON. No answer ever carries a stack trace.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from nmt.errors import InputError
from service.batcher import BatchFailed, DeadlineExceeded, Overloaded
from service.registry import ModelNotNamed, ModelUnavailable, UnknownModel

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1


class ApiError(Exception):
    """An answer other than success: HTTP status, message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class ClientGone(Exception):
    """The client disconnected before its answer was ready (logged as 499, nobody reads the answer)."""


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII characters escaped: renders any string, even one holding a lone surrogate."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error body shape."""
    return AsciiJSONResponse({"error": message}, status_code=status, headers=headers)


def describe_validation(err: RequestValidationError) -> tuple[int, str]:
    """Status and a short message for invalid request data: 400 for unparsable JSON, else 422."""
    errors = err.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "request body is not valid JSON"
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {e.get('msg', 'invalid')}")
    return 422, "invalid request: " + "; ".join(parts)


def map_exception(err: Exception) -> ApiError:
    """The HTTP answer for a library, registry or batcher error."""
    if isinstance(err, ApiError):
        return err
    if isinstance(err, UnknownModel):
        return ApiError(404, str(err))
    if isinstance(err, ModelNotNamed):
        return ApiError(422, str(err))
    if isinstance(err, ModelUnavailable):
        return ApiError(503, str(err), {"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(err, Overloaded):
        return ApiError(503, f"overloaded: {err}; retry later", {"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(err, DeadlineExceeded):
        return ApiError(504, f"request deadline exceeded: {err}")
    if isinstance(err, BatchFailed):
        if err.out_of_memory:
            return ApiError(503, str(err), {"Retry-After": str(RETRY_AFTER_S)})
        return ApiError(500, str(err))
    if isinstance(err, (ClientGone, ClientDisconnect)):
        return ApiError(499, "client closed the request")
    if isinstance(err, InputError):
        return ApiError(422, str(err))
    return ApiError(500, "internal error (see the server log)")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through `error_response`."""

    async def on_api_error(request: Request, err: Exception) -> JSONResponse:
        api = map_exception(err)
        if getattr(request.state, "libre", False) and api.status in (404, 422):
            api = ApiError(400, api.message, api.headers)  # LibreTranslate's convention for client errors
        expected = (ApiError, ModelUnavailable, Overloaded, DeadlineExceeded, BatchFailed, ClientGone, ClientDisconnect)
        if api.status >= 500 and not isinstance(err, expected):
            log.error("unexpected error", exc_info=err)
        return error_response(api.status, api.message, api.headers)

    async def on_validation(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, RequestValidationError)
        return error_response(*describe_validation(err))

    async def on_http(_: Request, err: Exception) -> JSONResponse:
        assert isinstance(err, StarletteHTTPException)
        message = err.detail if isinstance(err.detail, str) else "error"
        return error_response(err.status_code, message, getattr(err, "headers", None))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(UnknownModel, on_api_error)
    app.add_exception_handler(ModelNotNamed, on_api_error)
    app.add_exception_handler(InputError, on_api_error)
    app.add_exception_handler(Overloaded, on_api_error)
    app.add_exception_handler(ModelUnavailable, on_api_error)
    app.add_exception_handler(DeadlineExceeded, on_api_error)
    app.add_exception_handler(BatchFailed, on_api_error)
    app.add_exception_handler(ClientGone, on_api_error)
    app.add_exception_handler(ClientDisconnect, on_api_error)  # the body was still arriving
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_api_error)

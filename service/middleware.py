"""ASGI middleware for HTTP requests: the body's size limit and read timeout; the base the others share."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response


class HTTPMiddleware:
    """Passes everything but HTTP requests straight through; subclasses handle `http` in `handle`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request."""
        await self.app(scope, receive, send)


class BodyGuardMiddleware(HTTPMiddleware):
    """413 for bodies over `limit` bytes (by Content-Length or while a chunked body streams in); 408 for a
    body not received within `timeout_s` of its header (a client that stalls mid-upload)."""

    def __init__(self, app: ASGIApp, limit: int, timeout_s: float) -> None:
        super().__init__(app)
        self.limit = limit
        self.timeout_s = timeout_s

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        too_large = f"request body over the limit of {self.limit} bytes (NMT_MAX_BODY_BYTES)"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await error_response(413, too_large)(scope, receive, send)
            return
        received = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + self.timeout_s
        complete = False

        async def guarded_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()  # after the body: only the disconnect is left to hear of
            try:
                message = await asyncio.wait_for(receive(), max(end - loop.time(), 0.0))
            except TimeoutError:
                late = f"request body not received within {self.timeout_s:g} s (NMT_BODY_TIMEOUT_S)"
                raise HTTPException(408, late, headers={"Connection": "close"}) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, too_large)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, guarded_receive, send)

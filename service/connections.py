"""Connections that stall: a header read timeout and a cap on open connections, under uvicorn's HTTP/1.1.

uvicorn holds a connection that sends half a request header for as long as the client keeps
it open, and accepts connections until the process runs out of file descriptors. Here:

- a request's header must arrive within `header_timeout_s` of the connection opening (or of the
  first byte of the next request on a kept-alive connection), else the client gets 408 and the
  connection closes;
- at most `max_connections` are open. A new connection beyond the cap takes the place of the
  one that has waited longest for its header or sat idle between requests (a real client is
  served; a stalled one loses its slot); where every connection is inside a request, the
  newcomer gets 503 and is closed.

The body's own timeout is the ASGI middleware's (`service.middleware`): the app reads the body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

_RESERVED_FDS = 64  # for model files, logs and the like beside the sockets


def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n")  # fmt: skip
    return head.encode() + body


def connection_cap(wanted: int) -> int:
    """`wanted`, lowered to what the file-descriptor limit allows (raising the soft limit to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    allowed = max(int(soft) - _RESERVED_FDS, 16)
    if allowed < wanted:
        log.warning("at most %d connections: the file-descriptor limit is %d", allowed, soft)
    return min(wanted, allowed)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the header timeout and the connection cap (see the module docstring)."""

    header_timeout_s = 10.0
    max_connections = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_since: float | None = None  # loop time it began waiting for a header; None inside a request

    @classmethod
    def configured(cls, header_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
        """A subclass with these limits (uvicorn takes a protocol class)."""
        return type(cls.__name__, (cls,), {"header_timeout_s": header_timeout_s, "max_connections": max_connections})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_one():
            transport.write(_raw_response(503, "Service Unavailable", "too many open connections; retry later"))
            transport.close()
            return
        self._await_header()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._between_requests():
            self._await_header()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        if not self._between_requests():
            self._header_done()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._waiting_since = self.loop.time()  # idle: evictable, under the keep-alive timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_done()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _await_header(self) -> None:
        self._header_done()
        self._waiting_since = self.loop.time()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timed_out)

    def _header_done(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._waiting_since = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing() and self._between_requests():
            message = f"request header not received within {self.header_timeout_s:g} s (NMT_HEADER_TIMEOUT_S)"
            self.transport.write(_raw_response(408, "Request Timeout", message))
            self.transport.close()

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest for a header (or idled longest); False if none waits."""
        waiting = [c for c in self.connections if isinstance(c, GuardedH11Protocol) and c is not self
                   and c._waiting_since is not None and not c.transport.is_closing()]  # fmt: skip
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c._waiting_since or 0.0)
        oldest._header_done()
        oldest.transport.close()
        return True

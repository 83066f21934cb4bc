"""`nmt-serve`: run the service under uvicorn, draining on SIGTERM.

On SIGTERM (or a first Ctrl-C) readiness turns false, new translation requests get 503,
in-flight requests finish (up to NMT_DRAIN_TIMEOUT_S), then the process exits 0.
A second Ctrl-C exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import uvicorn

from nmt.errors import ModelLoadError
from nmt.precision import FOOTPRINT_CHOICES
from nmt.routing import find_model_dirs
from service.app import create_app
from service.connections import GuardedH11Protocol, connection_cap
from service.settings import SettingsError, load_settings
from service.state import ServiceState

log = logging.getLogger("nmt-serve")


class DrainingServer(uvicorn.Server):
    """uvicorn server whose first SIGTERM/SIGINT drains the app before the usual graceful exit."""

    def __init__(self, config: uvicorn.Config, state: ServiceState, drain_timeout_s: float) -> None:
        super().__init__(config)
        self.state = state
        self.drain_timeout_s = drain_timeout_s
        self.failed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.state.draining or self._loop is None:
            self.should_exit = True
            self.force_exit = self.state.draining and sig == signal.SIGINT
            return
        log.info("signal %d: draining (new requests get 503)", sig)
        self.state.draining = True
        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._drain()))

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.drain_timeout_s
        await self.state.drain(self.drain_timeout_s)
        # uvicorn then waits for open connections (a client stalled mid-upload keeps one open
        # for ever): only for what is left of the drain budget, then it cancels them
        self.config.timeout_graceful_shutdown = max(0, round(end - loop.time()))
        self.should_exit = True

    def fatal(self, message: str) -> None:
        """A model failed to load: stop serving and exit non-zero."""
        self.failed = True
        self.should_exit = True


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nmt-serve", description="Serve translation models over HTTP.")
    p.add_argument("--models", type=Path, help="models directory (default: NMT_MODELS_DIR or ./models)")
    p.add_argument("--host", help="default: NMT_HOST or 127.0.0.1 (0.0.0.0 listens on every interface)")
    p.add_argument("--port", type=int, help="default: NMT_PORT or 8000")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: NMT_DEVICE or auto")
    p.add_argument("--max-model-memory", type=float, metavar="MB",
                   help="memory the loaded models may take together; least recently used unloaded beyond it "
                   "(default: NMT_MAX_MODEL_MEMORY_MB or no limit)")  # fmt: skip
    p.add_argument("--footprint", choices=FOOTPRINT_CHOICES, help="default: NMT_FOOTPRINT or auto")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `nmt-serve`; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(
            models_dir=args.models,
            device=args.device,
            host=args.host,
            port=args.port,
            max_model_memory_mb=args.max_model_memory,
            footprint=args.footprint,
        )
        find_model_dirs(settings.models_dir)
    except (SettingsError, ModelLoadError) as err:
        print(f"nmt-serve: {err}", file=sys.stderr)
        return 2
    server: DrainingServer | None = None

    def on_fatal(message: str) -> None:
        print(f"nmt-serve: {message}", file=sys.stderr)
        if server is not None:
            server.fatal(message)

    app = create_app(settings, on_fatal=on_fatal)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=math.ceil(settings.drain_timeout_s),
        timeout_keep_alive=math.ceil(settings.idle_timeout_s),
        http=GuardedH11Protocol.configured(settings.header_timeout_s, connection_cap(settings.max_connections)),
    )
    server = DrainingServer(config, app.state.service, settings.drain_timeout_s)
    server.run()
    return 1 if server.failed else 0


if __name__ == "__main__":
    sys.exit(main())

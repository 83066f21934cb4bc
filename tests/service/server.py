"""A real `nmt-serve` process on a free port, for tests that need sockets, signals and real clients."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """An nmt-serve subprocess and its base URL; its log goes to a file (a pipe nobody reads would fill
    up and block the server's event loop on its next log line)."""

    def __init__(self, models: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "service.cli", "--models", str(models), "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "warning"]  # fmt: skip
        self.log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (lives as long as the server)
        self.proc = subprocess.Popen(cmd, env={**os.environ, "NMT_DEVICE": "cpu", **env}, stderr=self.log)

    def stderr(self) -> str:
        """Everything the server logged so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def wait_ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.stderr()}")
            try:
                if httpx.get(self.url + "/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError("server not ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def running(models: Path, **env: str) -> Iterator[Server]:
    """A ready server for the duration of the block, killed after it."""
    server = Server(models, **env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()

"""Service fixtures: a models directory with two tiny models, and apps under a test client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings


def wait_ready(client: TestClient, timeout: float = 30.0) -> None:
    """Poll /readyz until the models are loaded."""
    end = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        if time.monotonic() > end:
            raise TimeoutError(client.get("/readyz").json())
        time.sleep(0.02)


@pytest.fixture
def make_client(models_dir: Path) -> Iterator[object]:
    """Factory: a started, ready test client for settings overrides (one app per call)."""
    clients: list[TestClient] = []

    def make(ready: bool = True, **overrides: object) -> TestClient:
        settings = Settings(**{"models_dir": models_dir, "device": "cpu", "max_wait_ms": 2.0, **overrides})  # type: ignore[arg-type]
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        if ready:
            wait_ready(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client: object) -> TestClient:
    """A ready client with default settings."""
    assert callable(make_client)
    return make_client()  # type: ignore[no-any-return]

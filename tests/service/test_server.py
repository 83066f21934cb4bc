"""A real `nmt-serve` process on a free port: concurrency, draining on SIGTERM, start-up errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.service.server import Server, running


@pytest.fixture
def server(models_dir: Path) -> Iterator[Server]:
    with running(models_dir, NMT_MAX_WAIT_MS="10") as s:
        yield s


def translate(url: str, text: str) -> str:
    r = httpx.post(url + "/v1/translate", json={"texts": [text], "model": "de-en"}, timeout=60)
    r.raise_for_status()
    return str(r.json()["translations"][0]["text"])


def test_64_concurrent_clients_get_the_answers_given_one_at_a_time(models_dir: Path) -> None:
    """Whatever ran beside a sentence, and at whichever step it joined, its answer is the same."""
    letters = "abcdefghijkl"
    texts = [" ".join(letters[(i * 7 + j) % 12] for j in range(3 + i % 6)) for i in range(64)]
    with running(models_dir, NMT_MAX_WAIT_MS="10") as server:
        alone = [translate(server.url, t) for t in texts]
        with ThreadPoolExecutor(64) as pool:
            together = list(pool.map(lambda t: translate(server.url, t), texts))
        assert together == alone
        metrics = httpx.get(server.url + "/metrics").text
    assert "nmt_batch_requests_bucket" in metrics
    batches = int(float(metrics.split("nmt_batch_sentences_count ")[1].split()[0]))
    assert batches > 64  # steps: many per request


def test_sigterm_drains_in_flight_requests_then_exits_0(server: Server) -> None:
    long_texts = [" ".join("abcdefghijkl"[(i + j) % 12] for j in range(150)) for i in range(100)]
    answer: dict[str, httpx.Response] = {}

    def slow() -> None:
        body = {"texts": long_texts, "model": "de-en", "beam_size": 8}
        answer["r"] = httpx.post(server.url + "/v1/translate", json=body, timeout=120)

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.5)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    late = httpx.post(server.url + "/v1/translate", json={"texts": ["a"], "model": "de-en"})
    assert late.status_code == 503 and "Retry-After" in late.headers
    assert httpx.get(server.url + "/readyz").status_code == 503
    worker.join(120)
    assert answer["r"].status_code == 200
    assert len(answer["r"].json()["translations"]) == 100
    assert server.proc.wait(30) == 0


def test_start_up_errors_are_one_line_and_non_zero(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "service.cli", "--models", str(tmp_path / "none")],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "service.cli", "--models", str(tmp_path)], capture_output=True,
                       text=True, env={**os.environ, "NMT_QUEUE_LIMIT": "-1"})  # fmt: skip
    assert r.returncode == 2 and "NMT_QUEUE_LIMIT" in r.stderr


def test_a_model_that_fails_to_load_stops_the_server(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{}")
    s = Server(tmp_path)
    try:
        assert s.proc.wait(60) == 1
        assert "Traceback" not in s.stderr()
    finally:
        s.stop()


def test_a_client_that_disconnects_leaves_the_queue(server: Server) -> None:
    long_texts = [" ".join("abcdefghijkl"[(i + j) % 12] for j in range(150)) for i in range(100)]
    body = {"texts": long_texts, "model": "de-en", "beam_size": 8}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/v1/translate", json=body, timeout=0.5)

    def queued() -> float:
        text = httpx.get(server.url + "/metrics").text
        return float(next(ln.split()[-1] for ln in text.splitlines() if ln.startswith("nmt_queue_sentences ")))

    end = time.monotonic() + 3
    while queued() > 0:
        assert time.monotonic() < end, "the abandoned request's sentences are still queued"
        time.sleep(0.05)
    r = httpx.post(server.url + "/v1/translate", json={"texts": ["a b c"], "model": "de-en"})
    assert r.status_code == 200  # and the server still answers

"""A real `nmt-serve` against clients that hang up, stall, never read, or send pathological requests."""

from __future__ import annotations

import contextlib
import json
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.service.server import Server, running

BODY = json.dumps({"texts": ["a b c d e"], "model": "de-en"}).encode()
JSON = {"content-type": "application/json"}


def _request(path: str, body: bytes, length: int | None = None) -> bytes:
    """Raw HTTP/1.1 POST bytes; `length` may claim more body than is sent."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def _health_seconds(server: Server) -> float:
    started = time.perf_counter()
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    return time.perf_counter() - started


@pytest.fixture
def server(models_dir: Path) -> Iterator[Server]:
    with running(models_dir, NMT_MAX_WAIT_MS="20", NMT_DRAIN_TIMEOUT_S="2", NMT_REQUEST_TIMEOUT_S="10") as s:
        yield s


def test_a_disconnect_storm_leaves_the_server_serving_at_once(server: Server) -> None:
    """300 clients send a request and hang up at random moments (in the batching wait, in a search...)."""
    rng = random.Random(0)

    def hang_up(i: int) -> None:
        with _connect(server) as sock:
            body = BODY if i % 3 else json.dumps({"texts": ["a b c"] * 20, "model": "fr-en"}).encode()
            sock.sendall(_request("/v1/translate" if i % 2 else "/translate?q=a&source=de&target=en", body))
            time.sleep(rng.random() * 0.05)

    with ThreadPoolExecutor(50) as pool:
        list(pool.map(hang_up, range(300)))
    started = time.perf_counter()
    r = httpx.post(server.url + "/v1/translate", json={"texts": ["a b"], "model": "de-en"}, timeout=10)
    assert r.status_code == 200 and time.perf_counter() - started < 3
    assert httpx.get(server.url + "/readyz").status_code == 200
    assert "nmt_worker_restarts_total 0.0" in httpx.get(server.url + "/metrics").text
    assert "Traceback" not in server.stderr()  # a client leaving is routine, not an error


def test_a_client_that_hangs_up_mid_file_stops_its_translation(server: Server) -> None:
    """A large file upload whose client leaves: the remaining chunks are never searched."""
    lines = "".join(f"{' '.join('abcdefghijkl'[(i + j) % 12] for j in range(6))}\n" for i in range(3000))
    form = {"source": "de", "target": "en", "progress_id": "hangup-0123456789"}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(server.url + "/translate_file", files={"file": ("big.txt", lines.encode())}, data=form, timeout=0.3)
    end = time.monotonic() + 10
    while httpx.get(server.url + "/translate_file/progress/hangup-0123456789").status_code != 404:
        assert time.monotonic() < end, "the abandoned file is still being translated"
        time.sleep(0.05)
    metrics = httpx.get(server.url + "/metrics").text
    translated = [line for line in metrics.splitlines() if line.startswith("nmt_translated_sentences_total{")]
    sentences = sum(float(line.split()[-1]) for line in translated)
    assert 0 < sentences < 3000  # it had started, and it stopped: not every line was translated
    r = httpx.post(server.url + "/v1/translate", json={"texts": ["a b"], "model": "de-en"}, timeout=10)
    assert r.status_code == 200 and "Traceback" not in server.stderr()


def test_stalled_uploads_and_clients_that_never_read_do_not_block_others(server: Server) -> None:
    stalled = [_connect(server) for _ in range(20)]
    for sock in stalled:
        sock.sendall(_request("/v1/translate", b'{"texts": [', length=1000))  # and then nothing
    never_read = [_connect(server) for _ in range(20)]
    big = json.dumps({"texts": ["a b c d e f g h"] * 100, "model": "de-en"}).encode()
    for sock in never_read:
        sock.sendall(_request("/v1/translate", big))
    try:

        def normal(_: int) -> int:
            headers = {"content-type": "application/json"}
            return httpx.post(server.url + "/v1/translate", content=BODY, headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(normal, range(16)))
        assert codes == [200] * 16
        assert _health_seconds(server) < 1
    finally:
        for sock in stalled + never_read:
            sock.close()


def test_a_pathological_request_neither_freezes_the_server_nor_outlives_its_deadline(models_dir: Path) -> None:
    """640 KB of runs of dots: segmented in linear time off the event loop; health answers meanwhile."""
    with running(models_dir, NMT_REQUEST_TIMEOUT_S="4") as s:
        body = {"texts": ["." * 4998 + " a"] * 128, "model": "de-en"}
        answer: dict[str, float | int] = {}

        def send() -> None:
            started = time.perf_counter()
            answer["status"] = httpx.post(s.url + "/v1/translate", json=body, timeout=60).status_code
            answer["seconds"] = time.perf_counter() - started

        worker = threading.Thread(target=send)
        worker.start()
        probes = []
        while worker.is_alive():
            probes.append(_health_seconds(s))
            time.sleep(0.05)
        worker.join()
        assert answer["status"] in (200, 503, 504)
        assert answer["seconds"] < 4 + 1.5  # the deadline counts from arrival, preparation included
        assert probes and max(probes) < 0.5, probes


def test_shutdown_is_bounded_by_the_drain_timeout_whatever_clients_do(server: Server) -> None:
    stalled = _connect(server)
    stalled.sendall(_request("/v1/translate", b'{"texts": ["a', length=1000))
    never_read = _connect(server)
    never_read.sendall(_request("/v1/translate", json.dumps({"texts": ["a b c"] * 100, "model": "de-en"}).encode()))
    time.sleep(0.2)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(timeout=2 + 3)
    finally:
        stalled.close()
        never_read.close()
    assert code == 0
    assert time.monotonic() - started < 2 + 1.5  # NMT_DRAIN_TIMEOUT_S=2, and a little to exit


def _answer(sock: socket.socket, timeout: float) -> bytes:
    """What the server sends before it closes the connection (b'' if it closes without a word)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data + b"<still open>"
    return data


def test_half_a_header_or_half_a_body_gets_408_and_the_connection_is_closed(models_dir: Path) -> None:
    env = {"NMT_HEADER_TIMEOUT_S": "0.5", "NMT_BODY_TIMEOUT_S": "0.5"}
    with running(models_dir, **env) as server:
        header = _connect(server)
        header.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: test\r\nContent-")  # and then nothing
        body = _connect(server)
        body.sendall(_request("/v1/translate", b'{"texts": [', length=1000))
        started = time.monotonic()
        for sock, what in ((header, b"header"), (body, b"body")):
            answer = _answer(sock, timeout=5)
            assert answer.startswith(b"HTTP/1.1 408") and what in answer and answer.endswith(b"}"), answer
        assert time.monotonic() - started < 3
        # a client that dribbles its header a byte at a time is cut off too: the timeout is not per byte
        slow = _connect(server)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the server closes it mid-dribble
            for byte in b"GET /healthz HTTP/1.1\r\nHost: test\r\n":
                slow.sendall(bytes([byte]))
                time.sleep(0.1)
        assert _answer(slow, timeout=5).startswith(b"HTTP/1.1 408")
        assert httpx.post(server.url + "/v1/translate", content=BODY, headers=JSON, timeout=10).status_code == 200


def test_kept_alive_connections_serve_several_requests_and_then_close_when_idle(models_dir: Path) -> None:
    with running(models_dir, NMT_HEADER_TIMEOUT_S="0.5", NMT_IDLE_TIMEOUT_S="1") as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(3):
                assert client.post("/v1/translate", content=BODY, headers=JSON).status_code == 200
                time.sleep(0.7)  # longer than the header timeout, between requests: only idle
        sock = _connect(server)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = _answer(sock, timeout=5)  # answered, then closed once idle for 1 s
        assert answer.startswith(b"HTTP/1.1 200") and not answer.endswith(b"<still open>")


def test_beyond_the_connection_cap_stalled_connections_make_way_for_real_clients(models_dir: Path) -> None:
    """300 connections that send half a header, against a cap of 50: real clients are still answered at once."""
    with running(models_dir, NMT_MAX_CONNECTIONS="50", NMT_HEADER_TIMEOUT_S="60") as server:
        stalled = []
        try:
            for _ in range(300):
                sock = _connect(server)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: te")
                stalled.append(sock)
            for _ in range(5):
                assert _health_seconds(server) < 1
            assert httpx.post(server.url + "/v1/translate", content=BODY, headers=JSON, timeout=10).status_code == 200
            still_open = 0
            for sock in stalled:
                sock.settimeout(0.01)
                try:
                    still_open += 0 if sock.recv(1) == b"" else 1
                except TimeoutError:
                    still_open += 1
                except ConnectionResetError:
                    pass  # closed by the server
            assert still_open <= 50
        finally:
            for sock in stalled:
                sock.close()

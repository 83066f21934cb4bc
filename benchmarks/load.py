"""Service load test: requests/s and latency percentiles with batching on and off, in one run.

Starts `nmt-serve` on a free port twice (NMT_BATCHING=true, then false), and for each
concurrency level runs that many clients, each sending one sentence per request (taken in
turn from a test set) for a fixed time. Prints one table with the throughput ratio of
batching on over off, and counts every 5xx that is not a documented 503.

    python benchmarks/load.py --models models --concurrency 1 8 32 128 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = ROOT.parent / "shared" / "data" / "multi30k" / "test_2016_flickr.de"


@dataclass
class Result:
    """One (mode, concurrency) cell."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] | None = None
    overloaded: int = 0
    other_errors: int = 0

    def percentile(self, q: float) -> float:
        """Latency percentile q (0-100) in ms."""
        lat = sorted(self.latencies or [0.0])
        return 1000 * lat[min(len(lat) - 1, int(q / 100 * len(lat)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(models: Path, batching: bool, threads: int, extra_env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """An nmt-serve process and its URL, once ready."""
    port = free_port()
    env = {**os.environ, "NMT_BATCHING": str(batching).lower(), "NMT_THREADS": str(threads), **extra_env}
    cmd = [sys.executable, "-m", "service.cli", "--models", str(models), "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        if proc.poll() is not None:
            raise SystemExit(f"nmt-serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/readyz").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("nmt-serve did not become ready")


async def run_level(url: str, sentences: list[str], clients: int, seconds: float, beam: int) -> Result:
    """`clients` concurrent loops of one-sentence requests for `seconds`.

    aiohttp, not httpx: on two cores httpx's async pool spent about 5 ms of CPU per request
    (190 req/s on /healthz at 32 clients, against 3,900 with aiohttp) and so measured itself.
    """
    result = Result(latencies=[])
    counter = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=clients + 4)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as http:
        end = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < end:
                text = sentences[next(counter) % len(sentences)]
                start = time.perf_counter()
                async with http.post("/v1/translate", json={"texts": [text], "beam_size": beam}) as r:
                    await r.read()
                    status = r.status
                if status == 200:
                    result.requests += 1
                    assert result.latencies is not None
                    result.latencies.append(time.perf_counter() - start)
                elif status == 503:
                    result.overloaded += 1
                else:
                    result.other_errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        result.seconds = time.perf_counter() - started
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--src", type=Path, default=DEFAULT_SRC, help="sentences to send, one per line")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--seconds", type=float, default=20.0, help="duration of each level")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    args = p.parse_args()
    sentences = [line.strip() for line in args.src.read_text(encoding="utf-8").splitlines() if line.strip()]
    env = {"NMT_QUEUE_LIMIT": "100000", "NMT_REQUEST_TIMEOUT_S": "300"}
    table: dict[tuple[bool, int], Result] = {}
    for batching in (True, False):
        proc, url = start_server(args.models, batching, args.threads, env)
        try:
            asyncio.run(run_level(url, sentences, 4, 2.0, args.beam_size))  # warm-up
            for clients in args.concurrency:
                table[batching, clients] = asyncio.run(run_level(url, sentences, clients, args.seconds, args.beam_size))
        finally:
            proc.terminate()
            proc.wait(60)

    print(f"\nnmt-serve load, beam {args.beam_size}, {args.threads} torch threads, one sentence per request, "
          f"{args.seconds:g} s per level\n")  # fmt: skip
    print("| clients | batching | req/s | p50 ms | p95 ms | p99 ms | 503 | other 5xx/4xx | on/off req/s |")
    print("|--:|:--|--:|--:|--:|--:|--:|--:|--:|")
    for clients in args.concurrency:
        for batching in (True, False):
            r = table[batching, clients]
            rate = r.requests / r.seconds
            off = table[False, clients]
            ratio = rate / max(off.requests / off.seconds, 1e-9)
            print(f"| {clients} | {'on' if batching else 'off'} | {rate:.1f} | {r.percentile(50):.0f} | "
                  f"{r.percentile(95):.0f} | {r.percentile(99):.0f} | {r.overloaded} | {r.other_errors} | "
                  f"{f'{ratio:.2f}x' if batching else ''} |")  # fmt: skip
    mean = statistics.fmean(r.percentile(50) for r in table.values())
    print(f"\n(mean p50 over cells: {mean:.0f} ms)")


if __name__ == "__main__":
    main()

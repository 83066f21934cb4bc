"""Service load test: requests/s and latency percentiles of the service, of the service without
batching, and of another revision of it, in one run; a mixed load; then goodput under a tight
deadline, and health-probe latency under load.

Starts `nmt-serve` on a free port once per mode (`--modes`: `batched`, the default; `off`,
NMT_BATCHING=false; `baseline`, the server of the checkout at `--baseline-tree`, e.g. a
`git worktree` of an earlier revision, with `--baseline-env` set), and for each concurrency level
runs that many clients, each sending one sentence per request (taken in turn from a test set) for
a fixed time. Prints one table with the throughput ratio of each mode over the last one, and
counts every 5xx that is not a documented 503.

The mixed table (`--mixed-clients`, default 4) runs that many clients sending 24-sentence
requests beside one client sending one-sentence requests, per mode, and gives the short
requests' latency against a short request alone: the short request joins the running search at
its next step, in the express lane.

The long-sentence table (`--long-clients`, default 32) runs that many clients of one-sentence
requests alone and then beside one client that keeps sending one run-on sentence (the first 14
sentences of the test set joined by commas: ~250 subwords), per mode: a search is padded to its
longest source, so one long sentence can take the room of many short ones.

The goodput table (`--goodput-clients`, default 96) runs that many clients against a server with
the default deadline and one with `--tight-deadline` (1.5 s): goodput is 200 answers per second.
A client that gets 503 (refused: it could not be answered in time) waits 100 ms before its next
request, as a client honouring Retry-After would wait. Meanwhile a probe asks `/healthz` every
50 ms; a third row repeats the default deadline with a pathological request halfway through
(128 texts of 4,998 dots). The table gives the probes' worst and 99th-percentile latency.

    python benchmarks/load.py --models models/de-en --concurrency 1 8 32 128 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = ROOT.parent / "shared" / "data" / "multi30k" / "test_2016_flickr.de"
LOAD_ENV = {"NMT_QUEUE_LIMIT": "100000", "NMT_REQUEST_TIMEOUT_S": "300"}  # measure speed, not refusals


def percentile(values: list[float], q: float) -> float:
    """Percentile q (0-100) of durations in seconds, in ms (0 for none)."""
    ordered = sorted(values or [0.0])
    return 1000 * ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


@dataclass
class Result:
    """One (mode, concurrency) cell."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] | None = None
    overloaded: int = 0
    expired: int = 0
    other_errors: int = 0
    probes: list[float] | None = None  # /healthz latencies (s) during the level
    pathological: str = ""  # status and seconds of the pathological request, if one was sent

    def percentile(self, q: float) -> float:
        """Latency percentile q (0-100) in ms."""
        return percentile(self.latencies or [], q)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MODES = {"batched": {}, "off": {"NMT_BATCHING": "false"}, "baseline": {}}


def start_server(args: argparse.Namespace, mode: str, extra_env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """An nmt-serve process as `mode` says (see MODES) and its URL, once ready."""
    port = free_port()
    env = {**os.environ, **MODES[mode], "NMT_THREADS": str(args.threads), **extra_env}
    tree = None
    if mode == "baseline":
        if args.baseline_tree is None:
            raise SystemExit("--modes baseline needs --baseline-tree")
        tree = args.baseline_tree.resolve()
        env |= dict(item.split("=", 1) for item in args.baseline_env) | {"PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "service.cli", "--models", str(args.models.resolve()), "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=tree)
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


@contextlib.contextmanager
def serving(args: argparse.Namespace, sentences: list[str], mode: str, env: dict[str, str]) -> Iterator[str]:
    """The URL of a warmed-up `nmt-serve` as `mode` says, with `env`; stopped on leaving."""
    proc, url = start_server(args, mode, env)
    try:
        asyncio.run(run_level(url, sentences, 4, 2.0, args.beam_size))  # warm-up
        for model in httpx.get(url + "/v1/models").json()["models"]:
            print(f"({mode}: {model['id']} on {model['device']}, {model['precision']})", flush=True)
        yield url
    finally:
        proc.terminate()
        proc.wait(60)


async def run_level(
    url: str,
    sentences: list[str],
    clients: int,
    seconds: float,
    beam: int,
    probe: bool = False,
    pathological: bool = False,
    per_request: int = 1,
) -> Result:
    """`clients` concurrent loops of requests of `per_request` sentences for `seconds`; with `probe`,
    health probes every 50 ms; with `pathological`, one pathological request halfway.

    aiohttp, not httpx: on two cores httpx's async pool spent about 5 ms of CPU per request
    (190 req/s on /healthz at 32 clients, against 3,900 with aiohttp) and so measured itself.
    """
    result = Result(latencies=[], probes=[])
    counter = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=clients + 8)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as http:
        end = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < end:
                texts = [sentences[next(counter) % len(sentences)] for _ in range(per_request)]
                start = time.perf_counter()
                async with http.post("/v1/translate", json={"texts": texts, "beam_size": beam}) as r:
                    await r.read()
                    status = r.status
                if status == 200:
                    result.requests += 1
                    assert result.latencies is not None
                    result.latencies.append(time.perf_counter() - start)
                elif status == 503:
                    result.overloaded += 1
                    await asyncio.sleep(0.1)
                elif status == 504:
                    result.expired += 1
                else:
                    result.other_errors += 1

        async def prober() -> None:
            assert result.probes is not None
            while time.perf_counter() < end:
                start = time.perf_counter()
                async with http.get("/healthz") as r:
                    await r.read()
                result.probes.append(time.perf_counter() - start)
                await asyncio.sleep(0.05)

        async def send_pathological() -> None:
            await asyncio.sleep(seconds / 2)
            start = time.perf_counter()
            async with http.post("/v1/translate", json={"texts": ["." * 4998 + " a"] * 128}) as r:
                await r.read()
            result.pathological = f"{r.status} in {time.perf_counter() - start:.1f} s"

        started = time.perf_counter()
        extra = ([prober()] if probe else []) + ([send_pathological()] if pathological else [])
        await asyncio.gather(*(client() for _ in range(clients)), *extra)
        result.seconds = time.perf_counter() - started
    return result


def goodput_table(args: argparse.Namespace, sentences: list[str]) -> None:
    """Goodput with the default deadline and a tight one, and health probes, at `--goodput-clients`."""
    rows = []
    for deadline, pathological in ((30.0, False), (args.tight_deadline, False), (30.0, True)):
        with serving(args, sentences, args.modes[0], {"NMT_REQUEST_TIMEOUT_S": str(deadline)}) as url:
            r = asyncio.run(
                run_level(url, sentences, args.goodput_clients, args.seconds, args.beam_size, True, pathological)
            )
        rows.append((deadline, pathological, r))
    print(f"\ngoodput, {args.modes[0]}, {args.goodput_clients} clients, beam {args.beam_size}, "
          f"{args.seconds:g} s per row; health probes every 50 ms\n")  # fmt: skip
    print("| NMT_REQUEST_TIMEOUT_S | pathological request | goodput (200/s) | vs default | p50 ms | p99 ms | 503 | "
          "504 | other | health p99 ms | health max ms |")  # fmt: skip
    print("|--:|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    base = rows[0][2].requests / rows[0][2].seconds
    for deadline, pathological, r in rows:
        probes = r.probes or []
        rate = r.requests / r.seconds
        sent = f"halfway: {r.pathological}" if pathological else "no"
        print(f"| {deadline:g} | {sent} | {rate:.1f} | {rate / max(base, 1e-9):.2f}x | "
              f"{r.percentile(50):.0f} | {r.percentile(99):.0f} | {r.overloaded} | {r.expired} | {r.other_errors} | "
              f"{percentile(probes, 99):.0f} | {1000 * max(probes, default=0.0):.0f} |")  # fmt: skip


def run_on(sentences: list[str], count: int = 14) -> str:
    """One long sentence: the first `count` sentences joined by commas (no sentence break inside)."""
    return ", ".join(s.rstrip(" .") for s in sentences[:count]) + "."


def long_table(args: argparse.Namespace, sentences: list[str]) -> None:
    """One-sentence clients alone and beside one client of a run-on sentence, per mode."""
    rows = alone_and_beside(args, sentences, args.long_clients, lambda url: run_level(
        url, [run_on(sentences)], 1, args.seconds, args.beam_size))  # fmt: skip
    print(f"\n{args.long_clients} clients of one-sentence requests beside 1 client of a run-on sentence "
          f"({len(run_on(sentences))} characters), beam {args.beam_size}, {args.seconds:g} s per row\n")  # fmt: skip
    print("| server | short req/s alone | short req/s beside it | ratio | short p99 ms beside it | "
          "run-on sentences answered | their mean s |")  # fmt: skip
    print("|:--|--:|--:|--:|--:|--:|--:|")
    for mode, alone, short, long in rows:
        base, rate = alone.requests / alone.seconds, short.requests / short.seconds
        mean = sum(long.latencies or []) / max(len(long.latencies or []), 1)
        print(f"| {mode} | {base:.1f} | {rate:.1f} | {rate / max(base, 1e-9):.2f}x | {short.percentile(99):.0f} | "
              f"{long.requests} | {mean:.2f} |")  # fmt: skip


def alone_and_beside(
    args: argparse.Namespace, sentences: list[str], clients: int, beside: Callable[[str], Awaitable[Result]]
) -> list[tuple[str, Result, Result, Result]]:
    """Per mode: `clients` clients of one-sentence requests alone, then beside the load `beside(url)` makes:
    (mode, alone, short beside it, that load)."""

    async def together(url: str) -> tuple[Result, Result]:
        short, other = await asyncio.gather(run_level(url, sentences, clients, args.seconds, args.beam_size),
                                            beside(url))  # fmt: skip
        return short, other

    rows = []
    for mode in args.modes:
        with serving(args, sentences, mode, LOAD_ENV) as url:
            alone = asyncio.run(run_level(url, sentences, clients, args.seconds, args.beam_size))
            short, other = asyncio.run(together(url))
        rows.append((mode, alone, short, other))
    return rows


def mixed_table(args: argparse.Namespace, sentences: list[str]) -> None:
    """Short requests' latency alone and beside 24-sentence requests, per mode."""
    rows = alone_and_beside(args, sentences, 1, lambda url: run_level(
        url, sentences[::-1], args.mixed_clients, args.seconds, args.beam_size, per_request=24))  # fmt: skip
    print(f"\nmixed load: 1 client of one-sentence requests beside {args.mixed_clients} clients of 24-sentence "
          f"requests, beam {args.beam_size}, {args.seconds:g} s per row\n")  # fmt: skip
    print("| server | short alone p50 ms | short p50 ms | short p99 ms | short p50 / alone | "
          "24-sentence req/s | 24-sentence p50 ms | sentences/s |")  # fmt: skip
    print("|:--|--:|--:|--:|--:|--:|--:|--:|")
    for mode, alone, short, big in rows:
        sent = (short.requests + 24 * big.requests) / max(big.seconds, short.seconds, 1e-9)
        print(f"| {mode} | {alone.percentile(50):.0f} | {short.percentile(50):.0f} | {short.percentile(99):.0f} | "
              f"{short.percentile(50) / max(alone.percentile(50), 1e-9):.1f}x | {big.requests / big.seconds:.2f} | "
              f"{big.percentile(50):.0f} | {sent:.1f} |")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--models", type=Path, default=ROOT / "models" / "de-en", help="a model directory (or a folder of one)"
    )
    p.add_argument("--src", type=Path, default=DEFAULT_SRC, help="sentences to send, one per line")
    p.add_argument(
        "--modes", nargs="+", choices=list(MODES), default=["batched", "off"],
        help="servers to compare; ratios are over the last; the goodput table uses the first",
    )  # fmt: skip
    p.add_argument("--baseline-tree", type=Path, help="checkout whose server the baseline mode runs")
    p.add_argument("--baseline-env", nargs="*", default=[], metavar="NAME=VALUE", help="its environment")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--seconds", type=float, default=20.0, help="duration of each level")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    p.add_argument("--mixed-clients", type=int, default=4, help="clients of 24-sentence requests (0: skip the table)")
    p.add_argument("--long-clients", type=int, default=32, help="one-sentence clients beside a run-on sentence "
                   "(0: skip the table)")  # fmt: skip
    p.add_argument("--goodput-clients", type=int, default=96, help="clients of the goodput table (0: skip it)")
    p.add_argument("--tight-deadline", type=float, default=1.5, help="NMT_REQUEST_TIMEOUT_S of the goodput table")
    p.add_argument("--skip-load-table", action="store_true", help="only the mixed, long-sentence and goodput tables")
    args = p.parse_args()
    sentences = [line.strip() for line in args.src.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not args.skip_load_table:
        load_table(args, sentences)
    if args.mixed_clients:
        mixed_table(args, sentences)
    if args.long_clients:
        long_table(args, sentences)
    if args.goodput_clients:
        goodput_table(args, sentences)


def load_table(args: argparse.Namespace, sentences: list[str]) -> None:
    """Throughput and latency of one-sentence requests per mode and concurrency."""
    table: dict[tuple[str, int], Result] = {}
    for mode in args.modes:
        with serving(args, sentences, mode, LOAD_ENV) as url:
            for clients in args.concurrency:
                table[mode, clients] = asyncio.run(run_level(url, sentences, clients, args.seconds, args.beam_size))
    base = args.modes[-1]
    print(f"\nnmt-serve load, beam {args.beam_size}, {args.threads} torch threads, one sentence per request, "
          f"{args.seconds:g} s per level\n")  # fmt: skip
    print(f"| clients | server | req/s | p50 ms | p95 ms | p99 ms | 503 | other 5xx/4xx | req/s / {base} |")
    print("|--:|:--|--:|--:|--:|--:|--:|--:|--:|")
    for clients in args.concurrency:
        for mode in args.modes:
            r = table[mode, clients]
            rate = r.requests / r.seconds
            other = table[base, clients]
            ratio = rate / max(other.requests / other.seconds, 1e-9)
            print(f"| {clients} | {mode} | {rate:.1f} | {r.percentile(50):.0f} | "
                  f"{r.percentile(95):.0f} | {r.percentile(99):.0f} | {r.overloaded} | {r.other_errors} | "
                  f"{f'{ratio:.2f}x' if mode != base else ''} |")  # fmt: skip


if __name__ == "__main__":
    main()

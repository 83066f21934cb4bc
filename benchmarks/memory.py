"""Memory and stalled connections: the service's RSS by model count, and real clients beside stalled ones.

The first table starts `nmt-serve` on a folder of N model directories (copies of the shipped
ones, each under its own id; the weights are links, so the folder costs nothing) in each
footprint, and reads the server's resident memory once every model is loaded and has
translated: the cost of each model after the first, against its weights file.

The second table opens `--stalled` connections that send half a request header and then
nothing, and meanwhile times real clients (one sentence to /v1/translate, and /healthz): with
the header timeout and the connection cap, they are served as if the stalled ones were not there.

    python benchmarks/memory.py --copies 1 6 20 --stalled 3000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from nmt.precision import FOOTPRINTS

ROOT = Path(__file__).resolve().parents[1]
SENTENCE = {"texts": ["Ein Hund rennt durch den Schnee."], "model": "de-en"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_copies(models: Path, copies: int, into: Path) -> int:
    """`copies` model directories under `into`, cycling through those under `models`; their weights bytes."""
    sources = sorted(p for p in models.iterdir() if (p / "config.json").is_file())
    weights = 0
    for i in range(copies):
        src = sources[i % len(sources)]
        dst = into / (src.name if i < len(sources) else f"{src.name}-{i}")
        dst.mkdir()
        for f in src.iterdir():
            if f.name != "config.json":
                (dst / f.name).symlink_to(f.resolve())
        config = json.loads((src / "config.json").read_text())
        if i >= len(sources):
            config["name"] = dst.name
        (dst / "config.json").write_text(json.dumps(config))
        weights += (src / "model.safetensors").stat().st_size
    return weights


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Serving:
    """An nmt-serve process on a free port, ready, with every model loaded; killed on leaving."""

    def __init__(self, models: Path, threads: int, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "service.cli", "--models", str(models), "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "warning"]  # fmt: skip
        full_env = {**os.environ, "NMT_THREADS": str(threads), **env}
        self.proc = subprocess.Popen(cmd, env=full_env, cwd=ROOT)

    def __enter__(self) -> Serving:
        for _ in range(3000):
            if self.proc.poll() is not None:
                raise SystemExit(f"nmt-serve exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/readyz").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise SystemExit("nmt-serve did not become ready")

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def memory_table(args: argparse.Namespace) -> None:
    print("| models | footprint | RSS MB | MB per model after the first | x its weights file |")
    print("|--:|:--|--:|--:|--:|")
    first: dict[str, float] = {}
    for footprint in args.footprints:
        for copies in args.copies:
            with tempfile.TemporaryDirectory() as tmp:
                weights = model_copies(args.models, copies, Path(tmp))
                with Serving(Path(tmp), args.threads, NMT_FOOTPRINT=footprint) as server:
                    models = httpx.get(server.url + "/v1/models").json()["models"]
                    assert all(m["loaded"] for m in models), "every model loads at start without a budget"
                    for m in models:
                        body = {**SENTENCE, "model": m["id"]}
                        httpx.post(server.url + "/v1/translate", json=body, timeout=60).raise_for_status()
                    rss = rss_mb(server.proc.pid)
            if copies == 1:
                first[footprint] = rss
                print(f"| 1 | {footprint} | {rss:.0f} | | |")
                continue
            extra = (rss - first.get(footprint, rss)) / (copies - 1)
            ratio = extra / (weights / copies / 2**20)
            print(f"| {copies} | {footprint} | {rss:.0f} | {extra:.1f} | {ratio:.2f}x |")


def stalled_table(args: argparse.Namespace) -> None:
    print("\n| stalled connections | real requests | translate p50 ms | translate max ms | health max ms | "
          "stalled still open after | errors |")  # fmt: skip
    print("|--:|--:|--:|--:|--:|--:|--:|")
    for stalled_count in (0, args.stalled):
        with Serving(args.models, args.threads) as server:
            stalled = []
            try:
                for _ in range(stalled_count):
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                    sock.sendall(b"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-")
                    stalled.append(sock)
                translate, health, errors = [], [], 0
                with httpx.Client(timeout=30) as client:
                    for _ in range(args.requests):
                        started = time.perf_counter()
                        r = client.post(server.url + "/v1/translate", json=SENTENCE)
                        translate.append(time.perf_counter() - started)
                        started = time.perf_counter()
                        h = client.get(server.url + "/healthz")
                        health.append(time.perf_counter() - started)
                        errors += (r.status_code != 200) + (h.status_code != 200)
                still_open = 0
                for sock in stalled:
                    sock.settimeout(0.001)
                    try:
                        still_open += sock.recv(1) != b""
                    except TimeoutError:
                        still_open += 1
                    except OSError:
                        pass
            finally:
                for sock in stalled:
                    sock.close()
        print(f"| {stalled_count} | {args.requests} | {1000 * statistics.median(translate):.0f} | "
              f"{1000 * max(translate):.0f} | {1000 * max(health):.0f} | {still_open} | {errors} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="folder of model directories")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 6, 20], help="model counts (start with 1)")
    parser.add_argument("--footprints", nargs="+", default=["lean", "fast"], choices=FOOTPRINTS)
    parser.add_argument("--stalled", type=int, default=3000, help="stalled connections (0: skip the table)")
    parser.add_argument("--requests", type=int, default=20, help="real requests beside them")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    args = parser.parse_args()
    if args.copies:
        memory_table(args)
    if args.stalled:
        stalled_table(args)


if __name__ == "__main__":
    main()

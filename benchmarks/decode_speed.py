"""Decoding speed: our default against OpenNMT-py, and each speed lever alone and combined (ablation).

Translates Multi30k test_2016_flickr (1,000 sentences) with a model directory, after a
warm-up, in several configurations; each row is the fastest of --repeat runs, with BLEU on
test_2016 and test_2017. With --peer it also times OpenNMT-py 3.5.1 (same architecture)
through ../shared/peers/onmt_bench.sh on the same machine in the same run, and prints each
row's ratio to it. The header names the CPU's capability, which decides what `auto` picks.

    python benchmarks/decode_speed.py --model models/de-en --repeat 3 --peer          # CPU ablation
    python benchmarks/decode_speed.py --device cuda --rows default --copies 20        # GPU: test set x 20

Levers (see nmt/precision.py, nmt/quantize.py, nmt/layers.py, nmt/shortlist.py): int8 products
(fbgemm), oneDNN's AMX kernels for them, the decoder's token table, the vocabulary shortlist.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from nmt.batching import default_batch_tokens
from nmt.precision import Footprint, prepare
from nmt.quantize import amx_int8
from nmt.scoring import corpus_bleu
from nmt.search import SearchOptions
from nmt.shortlist import ShortlistUse
from nmt.translator import Translator

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "multi30k"


@dataclass(frozen=True)
class Setup:
    """One row: a precision and which levers are on."""

    name: str
    precision: str  # auto, fp32, int8, bf16, fp16
    kernels: str = "auto"  # int8 only: auto (oneDNN where AMX), fbgemm
    token_table: bool = True  # int8 only
    shortlist: ShortlistUse = "auto"
    beam: int = 5
    footprint: Footprint = "fast"


SETUPS = {
    "fp32": Setup("fp32, whole vocabulary (the old default)", "fp32", shortlist="off"),
    "int8-base": Setup("int8 (fbgemm), no other lever", "int8", "fbgemm", token_table=False, shortlist="off"),
    "+onednn": Setup("  + oneDNN/AMX kernels alone", "int8", "auto", token_table=False, shortlist="off"),
    "+table": Setup("  + token table alone", "int8", "fbgemm", token_table=True, shortlist="off"),
    "+shortlist": Setup("  + shortlist alone", "int8", "fbgemm", token_table=False, shortlist="on"),
    "fp32+shortlist": Setup("fp32 + shortlist", "fp32", shortlist="on"),
    "default": Setup("default (auto: all levers)", "auto"),
    "lean": Setup("default, lean footprint (one kernel, no token table)", "auto", footprint="lean"),
    "auto-whole": Setup("auto, whole vocabulary", "auto", shortlist="off"),
    "fp16": Setup("fp16, whole vocabulary", "fp16", shortlist="off"),
    "fp32-greedy": Setup("fp32, whole vocabulary, greedy", "fp32", shortlist="off", beam=1),
    "default-greedy": Setup("default, greedy", "auto", beam=1),
}

CPU_ROWS = ["fp32", "int8-base", "+onednn", "+table", "+shortlist", "fp32+shortlist", "default", "lean", "fp32-greedy",
            "default-greedy"]  # fmt: skip


def peak_mib(device: torch.device) -> float:
    """Peak GPU memory since the last reset, or the process's peak resident memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_peer(beam: int, batch: int, threads: int, repeat: int) -> float | None:
    """OpenNMT-py's best sentences/s over `repeat` calls of the shared peer script, or None.

    The script subtracts the time of a one-sentence run (start-up) from the full run.
    """
    script = SHARED / "peers" / "onmt_bench.sh"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    speeds = []
    for _ in range(repeat):
        proc = subprocess.run(["bash", str(script), "translate", str(beam), str(batch)], capture_output=True,
                              text=True, env=env)  # fmt: skip
        print(proc.stdout.strip() or proc.stderr.strip()[-500:], file=sys.stderr)
        match = re.search(r"([\d.]+) sentences/s", proc.stdout)
        if match is None:
            return None
        speeds.append(float(match.group(1)))
    return max(speeds)


def load(model: Path, device: str, setup: Setup) -> Translator:
    """A translator for one row: the library's own loading, then the row's levers."""
    if setup.precision != "int8" or (setup.kernels == "auto" and setup.token_table):
        return Translator.from_dir(model, device, setup.precision, shortlist=setup.shortlist, footprint=setup.footprint)
    translator = Translator.from_dir(model, device, "fp32", shortlist=setup.shortlist)
    prepare(translator.model, "int8", token_table=setup.token_table, kernels=setup.kernels)
    translator.precision = "int8"
    return translator


@dataclass(frozen=True)
class Result:
    """What one row measured."""

    setup: Setup
    precision: str
    seconds: float
    sentences: int
    tokens: int
    peak: float
    bleu: dict[str, float]


def measure(translator: Translator, setup: Setup, sets: dict[str, tuple[list[str], list[str]]], copies: int,
            repeat: int, budget: int | None) -> Result:  # fmt: skip
    """Fastest of `repeat` runs over the first set (repeated `copies` times); BLEU on every set."""
    device = translator.device
    options = SearchOptions(beam_size=setup.beam)
    first, (sources, _) = next(iter(sets.items()))
    translator.translate(sources[:64], options, batch_tokens=budget)  # warm-up
    timed = sources * copies
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    seconds, out = float("inf"), []
    for _ in range(repeat):  # the fastest run: the one least disturbed by other work
        start = time.perf_counter()
        out = translator.translate(timed, options, batch_tokens=budget)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = min(seconds, time.perf_counter() - start)
    tokens = sum(len(ids) for ids in translator.tokenizer.encode_tgt([t.text for t in out]))
    bleu = {first: corpus_bleu([t.text for t in out[: len(sources)]], sets[first][1])}
    for name, (src, ref) in list(sets.items())[1:]:
        bleu[name] = corpus_bleu([t.text for t in translator.translate(src, options, batch_tokens=budget)], ref)
    return Result(setup, translator.precision, seconds, len(timed), tokens, peak_mib(device), bleu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "de-en")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with test_2016_flickr.de/.en and 2017")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", nargs="+", choices=list(SETUPS), default=CPU_ROWS)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--batch-tokens", type=int,
                        help="source tokens per batch (default: the device's, nmt.batching.BATCH_TOKENS)")  # fmt: skip
    parser.add_argument("--copies", type=int, default=1, help="time the test set repeated this often (fills a GPU)")
    parser.add_argument("--repeat", type=int, default=3, help="time each row (and the peer) this often; the fastest")
    parser.add_argument("--peer", action="store_true", help="also time OpenNMT-py at beam 5 (onmt_bench.sh setup)")
    parser.add_argument("--peer-batch", type=int, default=64, help="OpenNMT-py batch size in sentences")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sets = {}
    for name in ("test_2016_flickr", "test_2017_flickr"):
        src, ref = args.data / f"{name}.de", args.data / f"{name}.en"
        if src.exists() and ref.exists():
            sets[name] = (src.read_text(encoding="utf-8").splitlines(), ref.read_text(encoding="utf-8").splitlines())
    results = []
    for key in args.rows:
        setup = SETUPS[key]
        results.append(measure(load(args.model, args.device, setup), setup, sets, args.copies, args.repeat,
                               args.batch_tokens))  # fmt: skip
        print(f"done: {setup.name}", file=sys.stderr, flush=True)
    peer = run_peer(5, args.peer_batch, args.threads, args.repeat) if args.peer else None
    device = torch.device(args.device)
    where = (f"{torch.cuda.get_device_name(device)}" if device.type == "cuda"
             else f"cpu, {args.threads} threads, capability {torch.backends.cpu.get_cpu_capability()}, "
                  f"AMX int8 {'yes' if amx_int8() else 'no'}")  # fmt: skip
    budget = args.batch_tokens or default_batch_tokens(device)
    print(
        f"\n{args.model} on {next(iter(sets))} x {args.copies} ({len(sets[next(iter(sets))][0]) * args.copies} "
        f"sentences), {where}, torch {torch.__version__}, batch {budget} tokens, fastest of {args.repeat}"
    )
    names = list(sets)
    print("| setup | precision | search | sent/s | tgt tok/s | x fp32 | x OpenNMT-py | peak MiB | "
          + " | ".join(f"BLEU {n[5:9]}" for n in names) + " |")  # fmt: skip
    print("|" + "---|" * (8 + len(names)))
    fp32 = next(
        (r for r in results if r.setup.precision == "fp32" and r.setup.shortlist == "off" and r.setup.beam == 5), None
    )
    for r in results:
        sps = r.sentences / r.seconds
        search = "greedy" if r.setup.beam == 1 else f"beam {r.setup.beam}"
        vs_fp32 = f"{sps / (fp32.sentences / fp32.seconds):.2f}" if fp32 and r.setup.beam == 5 else ""
        vs_peer = f"{sps / peer:.2f}" if peer and r.setup.beam == 5 else ""
        bleu = " | ".join(f"{r.bleu[n]:.2f}" for n in names)
        print(f"| {r.setup.name} | {r.precision} | {search} | {sps:.1f} | {r.tokens / r.seconds:,.0f} | {vs_fp32} | "
              f"{vs_peer} | {r.peak:.0f} | {bleu} |")  # fmt: skip
    if args.peer:
        print(f"| OpenNMT-py 3.5.1 (batch {args.peer_batch} sentences) | fp32 | beam 5 | "
              f"{peer if peer is not None else 'failed'} | | | 1.00 | | |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Decoding speed: sentences/s and target tokens/s for greedy and beam search at several batch budgets.

Translates a test set (default: Multi30k test_2016_flickr, 1,000 sentences) with a model
directory, after a short warm-up, and prints a table with peak memory and BLEU. With
--peer it also times OpenNMT-py 3.5.1 (same architecture) through
../shared/peers/onmt_bench.sh on the same machine in the same run and prints the ratio.

    python benchmarks/decode_speed.py --model runs/step500 --threads 2 --peer
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from nmt.scoring import corpus_bleu
from nmt.search import SearchOptions
from nmt.translator import Translator

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def peak_mib(device: torch.device) -> float:
    """Peak GPU memory since the last reset, or the process's peak resident memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_peer(beam: int, batch: int, threads: int) -> float | None:
    """OpenNMT-py's sentences/s from the shared peer script, or None if it is not set up.

    The script subtracts the time of a one-sentence run (start-up) from the full run. Its
    first call starts cold (imports and the checkpoint not yet in the page cache: ~8 s instead
    of ~4.7 s here), which overstates start-up and so the peer's speed; the warm second call
    is the one reported.
    """
    script = SHARED / "peers" / "onmt_bench.sh"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    speed = None
    for _ in range(2):
        proc = subprocess.run(["bash", str(script), "translate", str(beam), str(batch)], capture_output=True,
                              text=True, env=env)  # fmt: skip
        print(proc.stdout.strip() or proc.stderr.strip()[-500:], file=sys.stderr)
        match = re.search(r"([\d.]+) sentences/s", proc.stdout)
        speed = float(match.group(1)) if match else None
    return speed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "multi30k_de_en" / "best")
    parser.add_argument("--src", type=Path, default=SHARED / "data" / "multi30k" / "test_2016_flickr.de")
    parser.add_argument("--ref", type=Path, default=SHARED / "data" / "multi30k" / "test_2016_flickr.en")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--quantize", choices=["int8"])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--batch-tokens", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument(
        "--peer", action="store_true", help="also time OpenNMT-py at beam 5 (needs onmt_bench.sh setup)"
    )
    parser.add_argument("--peer-batch", type=int, default=64, help="OpenNMT-py batch size in sentences")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    translator = Translator.from_dir(args.model, device=args.device, dtype=args.dtype, quantize=args.quantize)
    device = translator.device
    sources = args.src.read_text(encoding="utf-8").splitlines()
    references = args.ref.read_text(encoding="utf-8").splitlines() if args.ref.exists() else None
    translator.translate(sources[:32], SearchOptions(beam_size=max(args.beams)))  # warm-up
    rows = []
    for beam in args.beams:
        for budget in args.batch_tokens:
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(device)
            start = time.perf_counter()
            out = translator.translate(sources, SearchOptions(beam_size=beam), batch_tokens=budget)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            tokens = sum(len(ids) for ids in translator.tokenizer.encode_tgt([t.text for t in out]))
            bleu = corpus_bleu([t.text for t in out], references) if references else float("nan")
            rows.append((beam, budget, seconds, len(sources) / seconds, tokens / seconds, peak_mib(device), bleu))
    what = f"{device.type}, {args.dtype}" + (f", {args.quantize}" if args.quantize else "")
    threads = f", {args.threads} threads" if device.type == "cpu" else ""
    print(f"\n{args.model} on {args.src.name} ({len(sources)} sentences): {what}{threads}, torch {torch.__version__}")
    print(f"{'search':>7} | {'batch tokens':>12} | {'seconds':>7} | {'sent/s':>7} | {'tgt tok/s':>9} | "
          f"{'peak MiB':>8} | {'BLEU':>5}")  # fmt: skip
    print("-" * 76)
    for beam, budget, seconds, sps, tps, peak, bleu in rows:
        name = "greedy" if beam == 1 else f"beam {beam}"
        print(f"{name:>7} | {budget:>12} | {seconds:>7.1f} | {sps:>7.1f} | {tps:>9.0f} | {peak:>8.0f} | {bleu:>5.1f}")
    if args.peer:
        peer = run_peer(5, args.peer_batch, args.threads)
        ours = max((r[3] for r in rows if r[0] == 5), default=None)
        if peer and ours:
            print(f"\nbeam 5, {args.threads} threads: ours {ours:.1f} sent/s, OpenNMT-py 3.5.1 {peer:.1f} sent/s "
                  f"-> ratio {ours / peer:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

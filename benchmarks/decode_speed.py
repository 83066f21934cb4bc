"""Decoding speed: sentences/s and target tokens/s for greedy and beam search at several batch budgets.

Translates a test set (default: Multi30k test_2016_flickr, 1,000 sentences) with a model
directory, after a short warm-up, and prints a table with peak memory and BLEU. With
--peer it also times OpenNMT-py 3.5.1 (same architecture) through
../shared/peers/onmt_bench.sh on the same machine in the same run and prints the ratio.

    python benchmarks/decode_speed.py --model runs/step500 --quantize none int8 --repeat 3 --peer
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


def run_peer(beam: int, batch: int, threads: int, repeat: int) -> float | None:
    """OpenNMT-py's best sentences/s over `repeat` warm calls of the shared peer script, or None.

    The script subtracts the time of a one-sentence run (start-up) from the full run. Its
    first call starts cold (imports and the checkpoint not yet in the page cache: ~8 s instead
    of ~4.7 s here), which overstates start-up and so the peer's speed; that call is dropped.
    """
    script = SHARED / "peers" / "onmt_bench.sh"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    speeds = []
    for call in range(1 + repeat):
        proc = subprocess.run(["bash", str(script), "translate", str(beam), str(batch)], capture_output=True,
                              text=True, env=env)  # fmt: skip
        print(proc.stdout.strip() or proc.stderr.strip()[-500:], file=sys.stderr)
        match = re.search(r"([\d.]+) sentences/s", proc.stdout)
        if match is None:
            return None
        if call > 0:
            speeds.append(float(match.group(1)))
    return max(speeds)


Row = tuple[str, int, int, float, float, float, float, float]


def time_translator(
    translator: Translator,
    weights: str,
    sources: list[str],
    references: list[str] | None,
    beams: list[int],
    budgets: list[int],
    repeat: int,
) -> list[Row]:
    """(weights, beam, budget, seconds, sent/s, tgt tok/s, peak MiB, BLEU) per setting: the fastest of `repeat`."""
    device = translator.device
    translator.translate(sources[:32], SearchOptions(beam_size=max(beams)))  # warm-up
    rows = []
    for beam in beams:
        for budget in budgets:
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(device)
            seconds = float("inf")
            for _ in range(repeat):  # the fastest run: the one least disturbed by other work
                start = time.perf_counter()
                out = translator.translate(sources, SearchOptions(beam_size=beam), batch_tokens=budget)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = min(seconds, time.perf_counter() - start)
            tokens = sum(len(ids) for ids in translator.tokenizer.encode_tgt([t.text for t in out]))
            bleu = corpus_bleu([t.text for t in out], references) if references else float("nan")
            sps, tps = len(sources) / seconds, tokens / seconds
            rows.append((weights, beam, budget, seconds, sps, tps, peak_mib(device), bleu))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "multi30k_de_en" / "best")
    parser.add_argument("--src", type=Path, default=SHARED / "data" / "multi30k" / "test_2016_flickr.de")
    parser.add_argument("--ref", type=Path, default=SHARED / "data" / "multi30k" / "test_2016_flickr.en")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--quantize", nargs="+", choices=["none", "int8"], default=["none"],
                        help="weights to time in turn: fp32/--dtype (none) and int8 (CPU)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--batch-tokens", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument(
        "--peer", action="store_true", help="also time OpenNMT-py at beam 5 (needs onmt_bench.sh setup)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="time each setting (and the peer) this often; report the fastest"
    )
    parser.add_argument("--peer-batch", type=int, default=64, help="OpenNMT-py batch size in sentences")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sources = args.src.read_text(encoding="utf-8").splitlines()
    references = args.ref.read_text(encoding="utf-8").splitlines() if args.ref.exists() else None
    rows = []
    for quantize in args.quantize:
        quantized = quantize != "none"
        translator = Translator.from_dir(args.model, args.device, args.dtype, quantize if quantized else None)
        weights = quantize if quantized else args.dtype
        rows += time_translator(translator, weights, sources, references, args.beams, args.batch_tokens, args.repeat)
    device = translator.device
    threads = f", {args.threads} threads" if device.type == "cpu" else ""
    print(f"\n{args.model} on {args.src.name} ({len(sources)} sentences): {device.type}{threads}, "
          f"torch {torch.__version__}, fastest of {args.repeat}")  # fmt: skip
    print(f"{'weights':>7} | {'search':>7} | {'batch tokens':>12} | {'seconds':>7} | {'sent/s':>7} | "
          f"{'tgt tok/s':>9} | {'peak MiB':>8} | {'BLEU':>5}")  # fmt: skip
    print("-" * 86)
    for weights, beam, budget, seconds, sps, tps, peak, bleu in rows:
        name = "greedy" if beam == 1 else f"beam {beam}"
        print(f"{weights:>7} | {name:>7} | {budget:>12} | {seconds:>7.1f} | {sps:>7.1f} | {tps:>9.0f} | "
              f"{peak:>8.0f} | {bleu:>5.1f}")  # fmt: skip
    if args.peer:
        peer = run_peer(5, args.peer_batch, args.threads, args.repeat)
        print(f"OpenNMT-py 3.5.1 | beam 5 | {args.peer_batch} sentences | {peer} sent/s")
        for weights in dict.fromkeys(r[0] for r in rows):
            ours = max((r[4] for r in rows if r[0] == weights and r[1] == 5), default=None)
            if peer and ours:
                print(f"beam 5, {args.threads} threads: ours ({weights}) {ours:.1f} sent/s, "
                      f"OpenNMT-py 3.5.1 {peer:.1f} sent/s -> ratio {ours / peer:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training throughput of the reference architecture (configs/multi30k_de_en.yaml).

Times real optimizer steps (forward, backward, clipping, Adam) on Multi30k batches at
several token budgets and prints a table: seconds per step, target tokens/s, peak memory.

    python benchmarks/train_speed.py [--device cpu|cuda] [--steps 5] [--batch-tokens 2048 4096]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from training.config import load_config
from training.data import epoch_batches
from training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "multi30k_de_en.yaml")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "multi30k")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per budget")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per budget")
    parser.add_argument("--batch-tokens", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--spm", type=Path, help="existing sentencepiece model (skips training one)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            f"data.train_src={args.data / 'train.de'}",
            f"data.train_tgt={args.data / 'train.en'}",
            "data.valid_src=null",
            "data.valid_tgt=null",
            f"train.out_dir={tmp}",
            f"train.device={args.device}",
            f"train.amp={args.amp}",
        ]
        if args.spm:
            overrides.append(f"tokenizer.model={args.spm}")
        trainer = Trainer(load_config(args.config, overrides))
        params = sum(p.numel() for p in trainer.model.parameters())
        for budget in args.batch_tokens:
            batches = epoch_batches(trainer.train_data, budget, seed=1, epoch=1)
            tokens, seconds = 0.0, 0.0
            for i in range(args.warmup + args.steps):
                if args.device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                _, step_tokens = trainer.train_step([batches[i]])
                if args.device == "cuda":
                    torch.cuda.synchronize()
                if i >= args.warmup:
                    seconds += time.perf_counter() - start
                    tokens += step_tokens
            if args.device == "cuda":
                peak = torch.cuda.max_memory_allocated() / 2**20
            else:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rows.append((budget, seconds / args.steps, tokens / seconds, peak))
    threads = torch.get_num_threads() if args.device == "cpu" else "-"
    print(
        f"\nreference architecture: {params / 1e6:.1f} M parameters, device {args.device}, threads {threads}, "
        f"amp {args.amp}, torch {torch.__version__}"
    )
    print(f"{'batch tokens':>12} | {'s/step':>7} | {'tgt tok/s':>9} | {'peak MiB':>8}")
    print("-" * 46)
    for budget, per_step, speed, peak in rows:
        print(f"{budget:>12} | {per_step:>7.2f} | {speed:>9.0f} | {peak:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Matrix products at the decoder's shapes: fp32, bf16 and int8 (fbgemm, oneDNN) speed, and batch invariance.

Why `auto` picks int8 on CPUs (nmt/precision.py): for each shape and row count, GOP/s of
fp32 (MKL), bf16 (oneDNN; AMX or AVX-512-BF16 where present) and `Int8Linear`'s two
kernels, and whether a row's bits stay the same when it is computed with other rows.

    python benchmarks/matmul_kernels.py
    ATEN_CPU_CAPABILITY=avx2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/matmul_kernels.py     # AVX2 code paths
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable

import torch

from nmt.quantize import Int8Linear, amx_int8, int8_kernels

SHAPES = [(1024, 2048), (1024, 512), (256, 3000)]  # decoder LSTM layer, combine, a shortlist batch's generator


def gops(fn: Callable[[], object], flops: float, repeat: int = 20) -> float:
    """Best-of-`repeat` rate of `fn` in GOP/s, after two warm-up calls."""
    fn()
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return flops / best / 1e9


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.linear(x.to(weight.dtype), weight, bias)


def invariant(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> bool:
    """Whether row 0's result is the same bits computed alone and among 1..N rows."""
    alone = fn(x[:1])[0]
    return all(torch.equal(fn(x[:rows])[0], alone) for rows in (2, 5, 17, 33, 64, 250, x.size(0)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, nargs="+", default=[5, 32, 250, 1000])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    kernels = int8_kernels()
    print(f"capability {torch.backends.cpu.get_cpu_capability()}, AMX int8 {'yes' if amx_int8() else 'no'}, "
          f"{args.threads} threads, torch {torch.__version__}; GOP/s (2 x multiply-adds), best of 20")  # fmt: skip
    print("| in -> out | rows | fp32 | bf16 | int8 fbgemm | int8 oneDNN |")
    print("|---|--:|--:|--:|--:|--:|")
    same: dict[str, bool] = {}
    for k, m in SHAPES:
        weight, bias = torch.randn(m, k) * 0.05, torch.randn(m) * 0.1
        big = torch.rand(max(args.rows), k) * 2 - 1
        wb, bb = weight.bfloat16(), bias.bfloat16()
        layers = {name: Int8Linear(weight, bias, torch.ones(k), kernels=name) for name in kernels}
        fns: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
            "fp32": functools.partial(_linear, weight=weight, bias=bias),
            "bf16": functools.partial(_linear, weight=wb, bias=bb),
            **{f"int8 {name}": layer for name, layer in layers.items()},
        }
        for rows in args.rows:
            rates = {name: gops(functools.partial(fn, big[:rows]), 2.0 * rows * k * m) for name, fn in fns.items()}
            cells = [f"{rates[n]:.0f}" if n in rates else "-" for n in ("fp32", "bf16", "int8 fbgemm", "int8 onednn")]
            print(f"| {k} -> {m} | {rows} | " + " | ".join(cells) + " |")
        for name, fn in fns.items():
            same[name] = same.get(name, True) and invariant(fn, big)
    print("\nrow 0 the same bits alone and among 2..1000 rows: "
          + ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in same.items()))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

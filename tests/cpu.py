"""What CPU code paths a test ran on, for failure messages: numeric guarantees can differ by instruction set."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import torch

# Variables that lower the instruction set PyTorch, FBGEMM (int8), MKL (fp32 BLAS) and oneDNN use.
ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "FBGEMM_ENABLE_INSTRUCTIONS", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
LOWER_TO_AVX2 = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


@cache
def cpu_description() -> str:
    """e.g. 'AVX512 on Intel(R) Xeon(R) Processor [avx2 avx512f avx512_vnni], 2 threads'."""
    model, flags = "unknown CPU", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    present = " ".join(f for f in _FLAGS if f in flags)
    forced = " ".join(f"{v}={os.environ[v]}" for v in ISA_VARIABLES if v in os.environ)
    text = f"{torch.backends.cpu.get_cpu_capability()} on {model} [{present}], {torch.get_num_threads()} threads"
    return f"{text}, {forced}" if forced else text

"""`nmt-average`: average the weights of several checkpoints into one model directory.

Averaging the last few checkpoints of a run (Vaswani et al., 2017; Marian's and fairseq's
`average_checkpoints`) smooths the noise of the last updates and usually gains a little
BLEU. With one input it converts a model directory, e.g. to fp16 or int8 for shipping:

    nmt-average runs/x/checkpoints/step_0000{1000,1250,1500} --output models/de-en --dtype fp16
    nmt-average models/de-en --output /tmp/de-en-int8 --dtype int8
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from nmt.dtypes import INT8_STORAGE, STORAGE_CHOICES, dtype_name
from nmt.errors import NMTError
from nmt.model_dir import LoadedModel, load_model_dir, save_model_dir


def average_models(paths: Sequence[Path]) -> LoadedModel:
    """The first model with every floating-point weight replaced by the mean over `paths`."""
    if not paths:
        raise NMTError("give at least one model directory to average")
    models = [load_model_dir(p) for p in paths]
    first = models[0]
    for other, path in zip(models[1:], paths[1:], strict=True):
        if other.info.model != first.info.model:
            raise NMTError(f"{path} has another architecture than {paths[0]}: cannot average them")
    states = [m.model.state_dict() for m in models]
    averaged = {
        name: torch.stack([s[name].float() for s in states]).mean(0).to(tensor.dtype)
        if tensor.is_floating_point()
        else tensor
        for name, tensor in states[0].items()
    }
    first.model.load_state_dict(averaged)
    return first


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `nmt-average`; returns the exit status."""
    parser = argparse.ArgumentParser(prog="nmt-average", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="model directories (checkpoints) to average")
    parser.add_argument("--output", type=Path, required=True, help="model directory to write")
    parser.add_argument(
        "--dtype",
        default="fp32",
        choices=STORAGE_CHOICES,
        help="weights stored as fp32, fp16, bf16, or int8 (a scale per row; a quarter of fp32's size)",
    )
    parser.add_argument("--model-card", type=Path, help="a MODEL_CARD.md to place in the output")
    args = parser.parse_args(argv)
    try:
        loaded = average_models(args.models)
        info = loaded.info
        if len(args.models) > 1:  # one input is a conversion: it keeps the checkpoints it was averaged from
            info.training["averaged_from"] = [p.name for p in args.models]
        extra = {"MODEL_CARD.md": args.model_card.read_bytes()} if args.model_card else None
        save_model_dir(args.output, loaded.model, info, loaded.tokenizer, dtype=args.dtype, extra_files=extra)
    except (NMTError, OSError) as err:
        print(f"nmt-average: {err}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in args.output.iterdir()) / 2**20
    stored = args.dtype if args.dtype == INT8_STORAGE else dtype_name(args.dtype)
    print(f"wrote {args.output} ({len(args.models)} checkpoint(s), {stored}, {size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

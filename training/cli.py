"""`nmt-train --config CONFIG.yaml [dotted.key=value ...]`: train a model, resuming if possible.

Start it again with the same command after a crash or a kill and it continues from its
newest checkpoint. Under `torchrun --nproc_per_node N` it trains with N processes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from nmt.device import resolve_device
from nmt.errors import NMTError
from training import distributed as dist
from training.config import ConfigError, load_config
from training.trainer import Trainer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nmt-train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="YAML training recipe")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted overrides, e.g. train.max_steps=200 data.train_src=/path",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `nmt-train`; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as err:
        print(f"nmt-train: {err}", file=sys.stderr)
        return 2
    try:
        use_cuda = resolve_device(config.train.device).type == "cuda"
    except NMTError as err:
        print(f"nmt-train: error: train.device: {err}", file=sys.stderr)
        return 1
    info = dist.setup(use_cuda)
    logging.basicConfig(
        level=logging.INFO if info.is_main else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    try:
        Trainer(config, info).train()
    except NMTError as err:  # data and input errors included
        print(f"nmt-train: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nmt-train: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        dist.teardown(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())

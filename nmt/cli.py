"""Command-line entry points of the library: `nmt-eval` (and offline translation later).

Errors a user can cause print one line on stderr and exit with status 1 or 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from nmt.errors import NMTError
from nmt.fileio import open_text
from nmt.scoring import corpus_scores
from nmt.translator import Translator

log = logging.getLogger("nmt")


def read_lines(path: Path) -> list[str]:
    """Lines of a plain or gzipped UTF-8 file, without line ends; errors name the file."""
    try:
        with open_text(path) as handle:
            return handle.read().splitlines()
    except FileNotFoundError as err:
        raise NMTError(f"{path}: no such file") from err
    except UnicodeDecodeError as err:
        raise NMTError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except OSError as err:
        raise NMTError(f"{path}: {err.strerror or err}") from err


def _eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nmt-eval", description="Translate a test set and print sacrebleu BLEU and chrF with signatures."
    )
    parser.add_argument("--model", required=True, type=Path, help="model directory")
    parser.add_argument("--src", required=True, type=Path, help="source file (plain or .gz)")
    parser.add_argument("--ref", required=True, type=Path, help="reference file, one line per source line")
    parser.add_argument("--output", type=Path, help="also write the translations to this file")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    parser.add_argument("--batch-tokens", type=int, default=4096, help="source tokens per batch")
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    return parser


def eval_main(argv: Sequence[str] | None = None) -> int:
    """`nmt-eval`: score a model on a test set with greedy decoding."""
    args = _eval_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        sources, references = read_lines(args.src), read_lines(args.ref)
        if len(sources) != len(references):
            raise NMTError(f"{args.src} has {len(sources)} lines but {args.ref} has {len(references)}")
        device = resolve_device(args.device)
        translator = Translator.from_dir(args.model, device=device)
        hypotheses = [t.text for t in translator.translate(sources, batch_tokens=args.batch_tokens)]
        if args.output:
            try:
                args.output.write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
            except OSError as err:
                raise NMTError(f"{args.output}: cannot write: {err.strerror or err}") from err
        scores = corpus_scores(hypotheses, references)
    except NMTError as err:
        print(f"nmt-eval: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({s.name: {"score": round(s.score, 2), "signature": s.signature} for s in scores}))
    else:
        for s in scores:
            print(f"{s.text}\n  signature: {s.signature}")
    return 0


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when a GPU is present else 'cpu'; 'cuda' without a GPU is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NMTError("--device cuda was asked for but no CUDA GPU is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise NMTError(f"unknown device {name!r}: use cpu, cuda or auto")
    return name


if __name__ == "__main__":
    sys.exit(eval_main())

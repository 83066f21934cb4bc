"""`nmt-ray-translate`: translate text files on a Ray cluster with Ray Data (`pip install nmt[ray]`).

Every line of every input file becomes a row; `map_batches` sends batches of rows to a pool of
actors, each of which loads the model once (on a CPU, or on a GPU with `--gpus-per-actor`), and
the driver writes each file's translations, in the file's line order, to a file of the same
name under `--output-dir` (written atomically: it appears only when complete). One output line
per input line, as `nmt-translate` gives, with the same options. Like `nmt-translate`, a run that
is killed resumes when run again with the same command, losing at most 1,000 lines or 20 s of
work a file, and writes the same bytes (`nmt.resume`).

    nmt-ray-translate --model models/de-en --output-dir out/ data/*.txt --actors 4
    # on an existing cluster: RAY_ADDRESS=ray://head:10001 nmt-ray-translate ...
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nmt.cli import add_route_arguments
from nmt.errors import NMTError
from nmt.fileio import stream_lines
from nmt.model_dir import read_config
from nmt.precision import PRECISION_CHOICES
from nmt.resume import ChunkPlan, ResumableWriter, file_identity, resumable_output
from nmt.routing import model_route, translate_through
from nmt.search import SearchOptions
from nmt.translator import Translator


class TranslateBatch:
    """A Ray Data actor: loads the model once, then translates batches of rows {"text": [...]}."""

    def __init__(self, route: list[str], device: str, precision: str, beam_size: int, batch_tokens: int | None) -> None:
        self.translators = [Translator.from_dir(model, device=device, precision=precision) for model in route]
        self.options = SearchOptions(beam_size=beam_size)
        self.batch_tokens = batch_tokens

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        results = translate_through(self.translators, texts, self.options, self.batch_tokens)
        return {"path": batch["path"], "translation": np.array([r.text for r in results], dtype=object)}


def check_inputs(
    inputs: Sequence[Path], model: Path, source: str | None = None, target: str | None = None
) -> list[Path]:
    """The model route (nmt.routing); NMTError for what would otherwise fail inside the cluster:
    missing files, colliding names, a broken model or a pair no model serves."""
    names = [p.name for p in inputs]
    if len(set(names)) != len(names):
        raise NMTError("two inputs have the same file name: their outputs would collide")
    for path in inputs:
        if not path.is_file():
            raise NMTError(f"{path}: no such file")
    route = model_route(model, source, target)
    for path in route:
        read_config(path)  # a missing or broken model directory, with the library's message
    return route


def translate_files(
    inputs: Sequence[Path],
    output_dir: Path,
    model: Path,
    actors: int = 2,
    gpus_per_actor: float = 0.0,
    cpus_per_actor: float = 1.0,
    batch_size: int = 256,
    beam_size: int = 5,
    precision: str = "auto",
    batch_tokens: int | None = None,
    source: str | None = None,
    target: str | None = None,
) -> dict[Path, int]:
    """Translate `inputs` into `output_dir/<name>` on the running Ray cluster; lines written per output.

    The actors take `actors * cpus_per_actor` of the cluster's CPUs; leave at least one free for
    Ray Data's read tasks, or the pipeline waits for ever.
    """
    route = check_inputs(inputs, model, source, target)
    names = [p.name for p in inputs]
    resolved = [str(p.resolve()) for p in inputs]
    output_dir.mkdir(parents=True, exist_ok=True)
    counts = {output_dir / name: 0 for name in names}
    outputs = {path: output_dir / name for path, name in zip(resolved, names, strict=True)}
    translator = {"route": [str(p.resolve()) for p in route], "device": "cuda" if gpus_per_actor else "cpu",
                  "precision": precision, "beam_size": beam_size, "batch_tokens": batch_tokens}  # fmt: skip
    options = {k: v for k, v in translator.items() if k not in ("route", "device")}  # what shapes the output
    models = [{"path": str(p.resolve()), "weights": read_config(p).get("weights")} for p in route]
    with contextlib.ExitStack() as stack:
        files: dict[str, ResumableWriter] = {}
        for path, given in zip(resolved, inputs, strict=True):
            facts = {"input": file_identity(given), "model": models, "options": options, "runner": "ray"}
            files[path] = stack.enter_context(resumable_output(outputs[path], facts, say=_say))
        for path, writer in files.items():
            counts[outputs[path]] = writer.lines_done
        pool = {"concurrency": actors, "batch_size": batch_size, "num_cpus": cpus_per_actor,
                "num_gpus": gpus_per_actor or None}  # fmt: skip
        translated = _translated(resolved, {p: w.lines_done for p, w in files.items()}, translator, pool)
        pending = dict.fromkeys(resolved, 0)
        last_commit = time.monotonic()
        for row in translated.iter_rows() if translated is not None else []:
            files[row["path"]].write(str(row["translation"]) + "\n")
            counts[outputs[row["path"]]] += 1
            pending[row["path"]] += 1
            if pending[row["path"]] >= ChunkPlan.max_lines or time.monotonic() - last_commit >= ChunkPlan.seconds:
                for key, lines in pending.items():  # what a kill could lose: under 1,000 lines or 20 s a file
                    if lines:
                        files[key].commit(lines)
                        pending[key] = 0
                last_commit = time.monotonic()
        for key, lines in pending.items():
            files[key].commit(lines)
    return counts


def _say(message: str) -> None:
    print(f"nmt-ray-translate: {message}", file=sys.stderr)


def _translated(resolved: list[str], done: dict[str, int], translator: dict[str, Any], pool: dict[str, Any]) -> Any:
    """The Ray dataset of the lines still to translate, rows {"path", "translation"} in file and line order
    (None when every line is done): fresh files are read by Ray, a resumed run's remaining lines here."""
    import ray

    ray.data.DataContext.get_current().execution_options.preserve_order = True  # each file's line order
    if all(lines == 0 for lines in done.values()):
        dataset = ray.data.read_text(resolved, drop_empty_lines=False, include_paths=True)
    else:
        rows = [{"text": line, "path": path} for path in resolved
                for line in stream_lines(Path(path), start=done[path])]  # fmt: skip
        if not rows:
            return None
        dataset = ray.data.from_items(rows)
    return dataset.map_batches(TranslateBatch, fn_constructor_kwargs=translator, batch_format="numpy", **pool)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `nmt-ray-translate`; returns the exit status."""
    parser = argparse.ArgumentParser(prog="nmt-ray-translate", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", type=Path, help="plain UTF-8 text files, one sentence per line")
    add_route_arguments(parser)
    parser.add_argument("--output-dir", required=True, type=Path, help="one output file per input, same name")
    parser.add_argument("--actors", type=int, default=2, help="model replicas (actors)")
    parser.add_argument("--gpus-per-actor", type=float, default=0.0, help="0: CPU actors")
    parser.add_argument("--cpus-per-actor", type=float, default=1.0, help="leave a CPU free for reading")
    parser.add_argument("--batch-size", type=int, default=256, help="lines per batch sent to an actor")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                        help="auto (default): int8 on x86 CPU actors, bf16/fp16 on GPU ones")  # fmt: skip
    parser.add_argument("--quantize", dest="precision", choices=["int8"], help=argparse.SUPPRESS)  # earlier flag
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local instance)")
    args = parser.parse_args(argv)
    try:
        import ray
    except ImportError:
        print("nmt-ray-translate: Ray is not installed: pip install 'nmt[ray]'", file=sys.stderr)
        return 1
    try:
        check_inputs(args.inputs, args.model, args.source, args.target)
    except NMTError as err:
        print(f"nmt-ray-translate: error: {err}", file=sys.stderr)
        return 1
    ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    try:
        counts = translate_files(args.inputs, args.output_dir, args.model, args.actors, args.gpus_per_actor,
                                 args.cpus_per_actor, args.batch_size, args.beam_size, args.precision,
                                 source=args.source, target=args.target)  # fmt: skip
    except NMTError as err:
        print(f"nmt-ray-translate: error: {err}", file=sys.stderr)
        return 1
    finally:
        ray.shutdown()
    for path, lines in counts.items():
        print(f"{path}: {lines} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command-line entry points of the library: `nmt-translate` and `nmt-eval`.

Errors a user can cause print one line on stderr and exit with status 1 (2 for bad
arguments), never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar, get_args

import torch
from tqdm import tqdm

from nmt.batching import BATCH_TOKENS
from nmt.documents import FORMATS, parse_document
from nmt.dtypes import ALIASES, DTYPES
from nmt.errors import NMTError
from nmt.fileio import atomic_write_bytes, atomic_write_text, count_lines, read_lines, stream_lines
from nmt.model_dir import read_config, record_metrics
from nmt.penalties import LengthPenalty
from nmt.precision import PRECISION_CHOICES
from nmt.resume import ChunkPlan, ResumableWriter, file_identity, resumable_output
from nmt.routing import model_route, translate_texts, translate_through
from nmt.scoring import corpus_scores
from nmt.search import SearchOptions
from nmt.shortlist import ShortlistUse
from nmt.translator import LengthLimits, Translation, Translator

T = TypeVar("T")


def add_route_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --source and --target, as every command that translates takes them (see nmt.routing)."""
    parser.add_argument(
        "--model",
        required=True,
        type=Path,
        help="model directory, or a folder of them (then --source and --target pick the model)",
    )
    parser.add_argument("--source", help="source language; with --target, picks a model or a pivot chain")
    parser.add_argument("--target", help="target language")


def _add_model_options(parser: argparse.ArgumentParser, beam_default: int) -> None:
    search, limits = SearchOptions(), LengthLimits()  # the defaults are the library's
    add_route_arguments(parser)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                        help="auto (default): int8 on x86 CPUs, bf16 or fp16 on CUDA; fp32: the reference")  # fmt: skip
    # the flags of earlier versions, kept working: --quantize int8 and --dtype name a precision
    parser.add_argument("--quantize", dest="precision", choices=["int8"], help=argparse.SUPPRESS)
    parser.add_argument("--dtype", dest="precision", type=lambda v: ALIASES.get(v, v), choices=list(DTYPES),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--shortlist", default="auto", choices=get_args(ShortlistUse),
                        help="search each sentence's shortlist where the model has one (auto: on CPUs)")  # fmt: skip
    parser.add_argument("--beam-size", type=int, default=beam_default, help=f"1 is greedy (default {beam_default})")
    parser.add_argument("--length-penalty", default=search.length_penalty, choices=get_args(LengthPenalty))
    parser.add_argument("--alpha", type=float, default=search.alpha, help="exponent of the gnmt length penalty")
    parser.add_argument("--min-length", type=int, default=search.min_length, help="fewest output subwords")
    parser.add_argument("--no-repeat-ngram", type=int, default=search.no_repeat_ngram,
                        help="block repeated n-grams of this size")  # fmt: skip
    parser.add_argument("--max-length-ratio", type=float, default=limits.ratio,
                        help="output cap: ratio * source + extra")  # fmt: skip
    parser.add_argument("--max-length-extra", type=int, default=limits.extra)
    parser.add_argument("--max-length", type=int, default=limits.hard_cap, help="hard cap on output subwords")
    parser.add_argument("--max-source-length", type=int, default=limits.max_source_tokens,
                        help="longer sources are truncated")  # fmt: skip
    parser.add_argument("--on-long-input", default=limits.on_long_input, choices=["truncate", "reject"])
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help=f"padded source subwords per batch (default: {BATCH_TOKENS['cpu']} on a CPU, "
                             f"{BATCH_TOKENS['cuda']} on a GPU)")  # fmt: skip


def _build(
    args: argparse.Namespace, n_best: int = 1, alignments: bool = False
) -> tuple[list[Path], list[Translator], SearchOptions]:
    """The model directories that take --source to --target (one, or a pivot chain), their translators,
    and the search options."""
    try:
        options = SearchOptions(
            beam_size=args.beam_size, n_best=n_best, length_penalty=args.length_penalty, alpha=args.alpha,
            min_length=args.min_length, no_repeat_ngram=args.no_repeat_ngram, return_attention=alignments,
        )  # fmt: skip
        limits = LengthLimits(args.max_length_ratio, args.max_length_extra, args.max_length,
                              args.max_source_length, args.on_long_input)  # fmt: skip
    except ValueError as err:
        raise NMTError(str(err)) from err
    if args.batch_tokens is not None and args.batch_tokens < 1:
        raise NMTError("--batch-tokens must be positive")
    route = model_route(args.model, args.source, args.target)
    if alignments and len(route) > 1:
        raise NMTError(f"--alignments needs a direct model; {args.source}->{args.target} goes through a pivot")
    translators = [Translator.from_dir(d, args.device, args.precision, limits, options, args.shortlist) for d in route]
    if sys.stderr.isatty() and not getattr(args, "quiet", False):  # beside the progress bar, where there is one
        for path, translator in zip(route, translators, strict=True):
            print(f"{path}: {translator.precision} on {translator.device}, searching {translator.searched}",
                  file=sys.stderr)  # fmt: skip
    return route, translators, options


# ----- nmt-translate ------------------------------------------------------------------------


def _translate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nmt-translate",
        description="Translate a file line by line (one output line per input line, in order), or a document "
        "(.srt, .html, .po/.pot, .xliff, .docx, .pptx, .odt, .odp, .epub) into the same layout.",
        epilog="Sharding: run with --shard 0/N ... --shard N-1/N, each with its own --output, "
        "then join in order with: cat OUT.0 OUT.1 ... > OUT",
    )
    _add_model_options(parser, beam_default=5)
    parser.add_argument("--input", type=Path, help="input file, plain or .gz (default: stdin)")
    parser.add_argument("--output", type=Path, help="output file, written atomically (default: stdout)")
    parser.add_argument("--n-best", type=int, default=1, help="alternatives per line (needs --format jsonl)")
    parser.add_argument("--format", default="text", choices=["text", "jsonl"], help="jsonl: text, score, alternatives")
    parser.add_argument("--alignments", action="store_true", help="with jsonl: attention weights per target token")
    parser.add_argument("--shard", default=None, metavar="I/N", help="translate only the I-th of N equal parts")
    parser.add_argument("--chunk-lines", type=int, default=ChunkPlan.max_lines,
                        help="most lines translated between two durable commits of --output (a kill loses at most "
                             f"one chunk: this many lines or about {ChunkPlan.seconds:.0f} s of work)")  # fmt: skip
    parser.add_argument("--input-format", default="auto", choices=["auto", "lines", *FORMATS],
                        help="lines: one text per line; a document format translates the whole file in its layout; "
                             "auto (default): by the input's extension (.txt and unknown ones: lines)")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N) with 0 <= I < N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise NMTError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= index < count:
        raise NMTError(f"--shard {text}: need 0 <= I < N")
    return index, count


def _chunks(lines: Iterator[T], plan: ChunkPlan) -> Iterator[list[T]]:
    """Lines in chunks as `plan` sizes them; the caller reports each chunk's time with `plan.record`."""
    while chunk := list(islice(lines, plan.next_size())):
        yield chunk


def _format(t: Translation, fmt: str) -> str:
    if fmt == "text":
        return t.text
    record: dict[str, Any] = {"text": t.text, "score": round(t.score, 6)}
    if t.alternatives:
        record["alternatives"] = [{"text": a.text, "score": round(a.score, 6)} for a in t.alternatives]
    if t.alignment is not None:
        record.update(alignment=t.alignment, source_tokens=t.source_tokens, target_tokens=t.target_tokens)
    return json.dumps(record, ensure_ascii=False)


class _Stdout:
    """Standard output behind the writer interface of `nmt.resume`: nothing to resume, flushed per chunk."""

    lines_done = 0

    def write(self, text: str) -> None:
        sys.stdout.write(text)

    def commit(self, lines: int) -> None:
        sys.stdout.flush()


@contextlib.contextmanager
def _destination(
    args: argparse.Namespace, route: list[Path], start: int, stop: int | None, path: Path | None = None
) -> Iterator[ResumableWriter | _Stdout]:
    """stdout, or the --output file continuing an interrupted run of the same command (see nmt.resume);
    with `path`, the chunks go to that work file, removed once the run ends."""
    if args.output is None:
        yield _Stdout()
        return
    path = path or args.output
    if path.is_dir():  # checked first: the rename at the end would fail, naming the temporary file
        raise NMTError(f"{path}: is a directory; --output takes a file name")
    if args.input is None:
        facts: dict[str, Any] = {"input": "stdin"}  # cannot be re-read: a rerun starts over
        facts["run"] = os.getpid()
    else:
        facts = {"input": file_identity(args.input)}
    facts["model"] = [{"path": str(d.resolve()), "weights": read_config(d).get("weights")} for d in route]
    ignored = {"input", "output", "model", "quiet", "source", "target"}
    facts["options"] = {k: v for k, v in sorted(vars(args).items()) if k not in ignored}
    facts["lines"] = [start, stop]

    def say(message: str) -> None:
        print(f"nmt-translate: {message}", file=sys.stderr)

    try:
        with resumable_output(path, facts, say, discard=path != args.output) as writer:
            yield writer
    except FileNotFoundError as err:
        raise NMTError(f"{path}: cannot write: {err.strerror or err}") from None
    except OSError as err:
        if err.filename and Path(err.filename).name.startswith(f".{path.name}."):
            raise NMTError(f"{path}: cannot write: {err.strerror or err}") from None
        raise


def _document_format(args: argparse.Namespace) -> str | None:
    """The document format the input is read as, or None for lines."""
    if args.input_format == "lines":
        return None
    if args.input_format != "auto":
        return str(args.input_format)
    suffix = args.input.suffix.lower() if args.input is not None else ""
    found = next((f.name for f in FORMATS.values() if suffix in f.suffixes), None)
    return None if found == "txt" else found


def _translate_document(args: argparse.Namespace, kind: str) -> None:
    """Translate a whole document into its layout (nmt.documents); resumable like lines: the texts'
    translations are kept in `.OUT.texts.partial` chunk by chunk until the document is written."""
    if args.input is None:
        raise NMTError(f"a {kind} document needs --input (it is read whole, not streamed from stdin)")
    try:
        data = args.input.read_bytes()
    except OSError as err:
        raise NMTError(f"{args.input}: {err.strerror or err}") from None
    doc = parse_document(args.input.name, data, max_chars=sys.maxsize, kind=kind)
    route, translators, options = _build(args)
    options = replace(options, return_attention=doc.aligned)
    work = None if args.output is None else args.output.with_name(f"{args.output.name}.texts")
    bar = tqdm(total=len(doc.texts), unit=" text", disable=args.quiet or not sys.stderr.isatty(), file=sys.stderr)
    plan = ChunkPlan(max_lines=max(args.chunk_lines, 1))
    done: list[Translation] = []
    with _destination(args, route, 0, None, work) as out, bar:
        bar.update(out.lines_done)
        for chunk in _chunks(iter(doc.texts[out.lines_done :]), plan):
            began = time.monotonic()
            results = translate_texts(translators, chunk, options, args.batch_tokens)
            if isinstance(out, _Stdout):
                done.extend(results)
            else:
                out.write("".join(json.dumps([r.text, r.word_alignment], ensure_ascii=False) + "\n" for r in results))
                out.commit(len(chunk))
            plan.record(len(chunk), time.monotonic() - began)
            bar.update(len(chunk))
        if isinstance(out, ResumableWriter):
            for line in out.written().decode("utf-8").splitlines():
                text, words = json.loads(line)
                done.append(Translation(text, 0.0, word_alignment=words))
        rendered = doc.render(done, args.target or translators[-1].info.target_language)
        if args.output is None:
            sys.stdout.buffer.write(rendered)
            sys.stdout.flush()
        else:
            atomic_write_bytes(args.output, rendered)


def translate_main(argv: Sequence[str] | None = None) -> int:
    """`nmt-translate`: stream a file (or stdin) through the translator in chunks, or translate a document."""
    parser = _translate_parser()
    args = parser.parse_args(argv)
    kind = _document_format(args)
    if kind is not None and (args.format != "text" or args.n_best > 1 or args.alignments or args.shard):
        parser.error(f"a {kind} document is written in its own layout: --format jsonl, --n-best, --alignments "
                     "and --shard apply to lines only (--input-format lines reads it as lines)")  # fmt: skip
    if args.n_best > 1 and args.format != "jsonl":
        parser.error("--n-best above 1 needs --format jsonl (one JSON object per input line)")
    if args.alignments and args.format != "jsonl":
        parser.error("--alignments needs --format jsonl")
    try:
        if kind is not None:
            _translate_document(args, kind)
            return 0
        start, stop, total = 0, None, None
        if args.shard:
            index, count = parse_shard(args.shard)
            if args.input is None:
                raise NMTError("--shard needs --input (stdin cannot be split)")
            lines = count_lines(args.input)
            start, stop = lines * index // count, lines * (index + 1) // count
            total = stop - start
        elif args.input is not None and args.input.suffix != ".gz" and sys.stderr.isatty() and not args.quiet:
            total = count_lines(args.input)
        route, translators, options = _build(args, args.n_best, args.alignments)
        bar = tqdm(total=total, unit=" sent", disable=args.quiet or not sys.stderr.isatty(), file=sys.stderr)
        plan = ChunkPlan(max_lines=max(args.chunk_lines, 1))
        with _destination(args, route, start, stop) as out, bar:
            bar.update(out.lines_done)
            for chunk in _chunks(stream_lines(args.input, start + out.lines_done, stop), plan):
                began = time.monotonic()
                results = translate_through(translators, chunk, options, args.batch_tokens)
                out.write("".join(_format(t, args.format) + "\n" for t in results))
                out.commit(len(chunk))
                plan.record(len(chunk), time.monotonic() - began)
                bar.update(len(chunk))
    except NMTError as err:
        print(f"nmt-translate: error: {err}", file=sys.stderr)
        return 1
    except torch.cuda.OutOfMemoryError:  # batches were halved down to one sentence (Translator.translate_ids)
        print("nmt-translate: error: out of GPU memory searching a single sentence: try a smaller --beam-size, "
              "--max-source-length, or --device cpu", file=sys.stderr)  # fmt: skip
        return 1
    except BrokenPipeError:
        sys.stderr.close()  # e.g. `| head`: the reader is gone, nothing to report
        return 0
    except OSError as err:
        print(f"nmt-translate: error: {err.filename or 'output'}: {err.strerror or err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


# ----- nmt-eval -----------------------------------------------------------------------------


def _eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nmt-eval", description="Translate a test set and print sacrebleu BLEU and chrF with signatures."
    )
    _add_model_options(parser, beam_default=1)
    parser.add_argument("--src", required=True, type=Path, help="source file (plain or .gz)")
    parser.add_argument("--ref", required=True, type=Path, help="reference file, one line per source line")
    parser.add_argument("--output", type=Path, help="also write the translations to this file")
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    parser.add_argument(
        "--record",
        metavar="NAME",
        help="store the scores in the model's config.json under metrics.NAME (shown by /v1/models)",
    )
    return parser


def eval_main(argv: Sequence[str] | None = None) -> int:
    """`nmt-eval`: score a model on a test set (greedy unless --beam-size is given)."""
    args = _eval_parser().parse_args(argv)
    try:
        sources, references = read_lines(args.src), read_lines(args.ref)
        if len(sources) != len(references):
            raise NMTError(f"{args.src} has {len(sources)} lines but {args.ref} has {len(references)}")
        route, translators, options = _build(args)
        hypotheses = [t.text for t in translate_through(translators, sources, options, args.batch_tokens)]
        if args.output:
            try:
                atomic_write_text(args.output, "".join(h + "\n" for h in hypotheses))
            except OSError as err:
                raise NMTError(f"{args.output}: cannot write: {err.strerror or err}") from err
        scores = corpus_scores(hypotheses, references)
        if args.record:
            if len(translators) > 1:
                raise NMTError("--record needs a direct model: a pivot chain's scores belong to no one model")
            values: dict[str, Any] = {s.name: round(s.score, 2) for s in scores}
            values.update(beam_size=options.beam_size, sentences=len(sources))
            values.update(precision=translators[0].precision, shortlist=translators[0].shortlist is not None)
            values["signatures"] = {s.name: s.signature for s in scores}
            record_metrics(route[0], args.record, values)
    except NMTError as err:
        print(f"nmt-eval: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({s.name: {"score": round(s.score, 2), "signature": s.signature} for s in scores}))
    else:
        for s in scores:
            print(f"{s.text}\n  signature: {s.signature}")
    return 0

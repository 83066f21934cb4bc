"""Build a model directory's vocabulary shortlist from its parallel training data (see `nmt.shortlist`).

For every source piece, its candidates are the target pieces that co-occur with it most
specifically (Dice coefficient over sentence pairs, 2 c(s, t) / (c(s) + c(t))), plus the
`frequent` most common target pieces for every sentence. Counting 29,000 Multi30k pairs
takes a few seconds.

    python -m training.shortlist --model models/de-en --src ../shared/data/multi30k/train.de \\
        --tgt ../shared/data/multi30k/train.en
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from nmt.errors import InputError, NMTError
from nmt.fileio import read_lines
from nmt.model_dir import load_model_dir
from nmt.shortlist import SHORTLIST_FILE, Shortlist

DEFAULT_FREQUENT = 200  # with 10 candidates: de-en's test_2016 BLEU unchanged (docs/benchmarks.md)
DEFAULT_CANDIDATES = 10


def build_shortlist(
    sources: list[list[int]], targets: list[list[int]], src_vocab: int, tgt_vocab: int,
    frequent: int = DEFAULT_FREQUENT, candidates: int = DEFAULT_CANDIDATES, joint: bool = False,
) -> Shortlist:  # fmt: skip
    """Shortlist from id sequences of sentence pairs: the `frequent` commonest targets, `candidates` per source id.

    `joint`: source and target share one vocabulary, so each sentence's own pieces join its list.
    """
    src_sets = [np.unique(np.asarray(s, dtype=np.int64)) for s in sources]
    tgt_sets = [np.unique(np.asarray(t, dtype=np.int64)) for t in targets]
    src_count = np.bincount(np.concatenate(src_sets), minlength=src_vocab)
    tgt_count = np.bincount(np.concatenate(tgt_sets), minlength=tgt_vocab)
    pairs = np.concatenate(
        [(s[:, None] * tgt_vocab + t[None, :]).ravel() for s, t in zip(src_sets, tgt_sets, strict=True)]
    )
    keys, together = np.unique(pairs, return_counts=True)
    src_of, tgt_of = keys // tgt_vocab, keys % tgt_vocab
    strength = 2 * together / (src_count[src_of] + tgt_count[tgt_of])  # Dice: p(t | s) alone favours common t
    # best first within each source id: sort by source, then by descending strength, then by id
    order = np.lexsort((tgt_of, -strength, src_of))
    src_of, tgt_of = src_of[order], tgt_of[order]
    starts = np.searchsorted(src_of, np.arange(src_vocab))
    table = np.full((src_vocab, candidates), -1, dtype=np.int64)
    for s in np.unique(src_of):
        found = tgt_of[starts[s] : starts[s] + candidates]
        table[s, : len(found)] = found
    token_count = np.bincount(np.concatenate([np.asarray(t, dtype=np.int64) for t in targets]), minlength=tgt_vocab)
    common = np.argsort(-token_count, kind="stable")[:frequent]
    copy_source = src_vocab == tgt_vocab and joint
    return Shortlist(torch.from_numpy(common), torch.from_numpy(table), copy_source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="model directory to add shortlist.safetensors to")
    parser.add_argument("--src", type=Path, required=True, help="training source text, one sentence per line")
    parser.add_argument("--tgt", type=Path, required=True, help="training target text, aligned with --src")
    parser.add_argument("--frequent", type=int, default=DEFAULT_FREQUENT, help="commonest target pieces in every list")
    parser.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES, help="target pieces per source piece")
    args = parser.parse_args(argv)
    try:
        loaded = load_model_dir(args.model)
        src_lines, tgt_lines = read_lines(args.src), read_lines(args.tgt)
        if len(src_lines) != len(tgt_lines):
            raise InputError(f"{args.src} has {len(src_lines)} lines but {args.tgt} has {len(tgt_lines)}")
        if args.frequent < 1 or args.candidates < 1:
            raise InputError("--frequent and --candidates must be at least 1")
    except (NMTError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    tok, config = loaded.tokenizer, loaded.info.model
    shortlist = build_shortlist(tok.encode_src(src_lines), tok.encode_tgt(tgt_lines), config.src_vocab_size,
                                config.tgt_vocab_size, args.frequent, args.candidates, tok.joint)  # fmt: skip
    shortlist.save(args.model / SHORTLIST_FILE)
    print(f"{args.model / SHORTLIST_FILE}: {args.frequent} frequent pieces, {args.candidates} per source piece")
    return 0


if __name__ == "__main__":
    sys.exit(main())

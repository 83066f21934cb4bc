"""Train the language identifier of `/detect`: character n-gram profiles per language.

    python -m training.langid --out nmt/langid.json ../shared/data/multi30k/train.{en,de,fr,cs}

Each file is one language's text (its code is the part of the name after the last dot). For
every language, the most frequent character 1- to 3-grams of its lowercased words (with a
space on either side) keep their add-one-smoothed log-probabilities; all others share an
"unseen" log-probability. `nmt.langid` scores a text by summing these (naive Bayes).
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from nmt.fileio import atomic_write_text, stream_lines
from nmt.langid import ORDERS, char_ngrams

KEEP = 2000


def profile(lines: Iterable[str], keep: int = KEEP) -> dict[str, object]:
    """Log-probabilities of the `keep` most frequent n-grams, and of any other n-gram."""
    counts: Counter[str] = Counter()
    for line in lines:
        counts.update(char_ngrams(line))
    total = sum(counts.values())
    kept = counts.most_common(keep)
    denominator = total + len(counts) + 1
    grams = {g: round(math.log((c + 1) / denominator), 4) for g, c in kept}
    return {"unseen": round(math.log(1 / denominator), 4), "grams": grams}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m training.langid`: write the profiles of the given files' languages."""
    parser = argparse.ArgumentParser(prog="python -m training.langid", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="one text file per language, e.g. train.de")
    parser.add_argument("--out", type=Path, required=True, help="profiles file (JSON)")
    parser.add_argument("--keep", type=int, default=KEEP, help="n-grams kept per language")
    args = parser.parse_args(argv)
    languages = {path.suffix.lstrip("."): profile(stream_lines(path), args.keep) for path in args.files}
    data = {"orders": list(ORDERS), "trained_on": [p.name for p in args.files], "languages": languages}
    atomic_write_text(args.out, json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n")
    print(f"wrote {args.out}: {', '.join(languages)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

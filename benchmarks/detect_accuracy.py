"""Language identification accuracy: the function-word counts against the character n-gram profiles.

    .venv/bin/python benchmarks/detect_accuracy.py [--data ../shared/data/multi30k]

For every language with a test_2016_flickr file, the share of its sentences (and of their first
two and three words) identified correctly among all four languages.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nmt.langid import shipped_profiles
from service.detect import count_function_words

LANGUAGES = ["en", "de", "fr", "cs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/multi30k"))
    args = parser.parse_args()
    profiles = shipped_profiles()
    methods = {
        "function words": lambda t: count_function_words(t, LANGUAGES)[0][0],
        "char n-grams": lambda t: profiles.rank(t, LANGUAGES)[0][0],
    }
    print("| language | method | sentences | first 3 words | first 2 words |")
    print("| --- | --- | --- | --- | --- |")
    for lang in LANGUAGES:
        lines = [t for t in (args.data / f"test_2016_flickr.{lang}").read_text(encoding="utf-8").splitlines() if t]
        for name, best in methods.items():
            cells = []
            for words in (None, 3, 2):
                texts = [t if words is None else " ".join(t.split()[:words]) for t in lines]
                cells.append(f"{100 * sum(best(t) == lang for t in texts) / len(texts):.1f}%")
            print(f"| {lang} ({len(lines)}) | {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()

"""BLEU of every direction the shipped models reach, directly or through a pivot, on the Multi30k tests.

    .venv/bin/python benchmarks/language_scores.py [--models models] [--pairs fr-de de-fr ...] [--beam-size 5]

Direct directions print the scores `make score-SRC-TGT` recorded in their config.json (measured
again with --remeasure); chains through a pivot are translated and scored here. Prints a
Markdown table: direction, route, and sacrebleu BLEU / chrF2 per test set that exists in both
languages (test_2017_flickr has no Czech).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nmt.fileio import read_lines
from nmt.model_dir import read_config
from nmt.routing import model_route, reachable, translate_through
from nmt.scoring import corpus_scores
from nmt.search import SearchOptions
from nmt.translator import Translator

ROOT = Path(__file__).resolve().parents[1]
TEST_SETS = ("test_2016_flickr", "test_2017_flickr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "multi30k")
    parser.add_argument("--pairs", nargs="*", help="only these directions, e.g. fr-de (default: all)")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument(
        "--remeasure", action="store_true", help="score direct models too instead of reading config.json"
    )
    args = parser.parse_args()
    configs = {p: read_config(p) for p in args.models.iterdir() if (p / "config.json").is_file()}
    pairs = {(c["source_language"], c["target_language"]) for c in configs.values()}
    wanted = [(s, t) for s, targets in reachable(pairs).items() for t in targets]
    if args.pairs:
        wanted = [(p.split("-", 1)[0], p.split("-", 1)[-1]) for p in args.pairs]
    options = SearchOptions(beam_size=args.beam_size)
    loaded: dict[Path, Translator] = {}
    print(f"| direction | route | {' | '.join(f'{t} BLEU / chrF2' for t in TEST_SETS)} |")
    print(f"| --- | --- | {' | '.join('---' for _ in TEST_SETS)} |")
    for source, target in wanted:
        route = model_route(args.models, source, target)
        cells = []
        for test_set in TEST_SETS:
            src, ref = args.data / f"{test_set}.{source}", args.data / f"{test_set}.{target}"
            if not (src.is_file() and ref.is_file()):
                cells.append("-")
                continue
            recorded = configs[route[0]].get("metrics", {}).get(test_set) if len(route) == 1 else None
            if recorded and not args.remeasure and recorded.get("beam_size") == args.beam_size:
                bleu, chrf = recorded["BLEU"], recorded["chrF2"]
            else:
                translators = [loaded.setdefault(p, Translator.from_dir(p, device="cpu")) for p in route]
                hypotheses = [t.text for t in translate_through(translators, read_lines(src), options)]
                bleu, chrf = (s.score for s in corpus_scores(hypotheses, read_lines(ref)))
            cells.append(f"{bleu:.2f} / {chrf:.2f}")
        via = " -> ".join([source, *[read_config(p)["target_language"] for p in route]])
        print(f"| {source}->{target} | {'direct' if len(route) == 1 else via} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()

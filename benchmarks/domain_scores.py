"""BLEU and chrF per domain of a corpus's held-out sets, and how many outputs keep their source's placeholders.

    nmt-corpus build configs/corpus_de_en.yaml out_dir=runs/corpus/de-en
    .venv/bin/python benchmarks/domain_scores.py --corpus runs/corpus/de-en --models models/de-en models/en-de

Every `test.DOMAIN.SRC` / `test.DOMAIN.TGT` pair the corpus builder held out (by Ding line, by
gettext package, Multi30k's test sets) is translated by each model whose languages it has, in
either direction, and scored with sacrebleu. `placeholders kept` counts the outputs whose
placeholders (`nmt.placeholders`: printf, braces, tags, entities, URLs…) are exactly the source's,
as a multiset, among the sources that have any. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nmt.fileio import read_lines
from nmt.placeholders import placeholders_in
from nmt.scoring import corpus_scores
from nmt.search import SearchOptions
from nmt.translator import Translator


def test_sets(corpus: Path, source: str, target: str) -> dict[str, tuple[Path, Path]]:
    """Domain -> (source file, reference file) of the held-out sets in `corpus` for this direction."""
    found = {}
    for path in sorted(corpus.glob(f"test.*.{source}")):
        domain = path.name[len("test.") : -len(f".{source}")]
        reference = corpus / f"test.{domain}.{target}"
        if reference.is_file():
            found[domain] = (path, reference)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a folder nmt-corpus build wrote")
    parser.add_argument("--models", type=Path, nargs="+", required=True, help="model directories")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="first N sentences of each set (0: all)")
    args = parser.parse_args()
    print("| model | direction | domain | sentences | BLEU | chrF | placeholders kept |")
    print("|:--|:--|:--|--:|--:|--:|--:|")
    for model_dir in args.models:
        translator = Translator.from_dir(model_dir)
        info = translator.info
        source, target = info.source_language, info.target_language
        for domain, (src, ref) in test_sets(args.corpus, source, target).items():
            sources, references = read_lines(src), read_lines(ref)
            if args.limit:
                sources, references = sources[: args.limit], references[: args.limit]
            outputs = [t.text for t in translator.translate(sources, SearchOptions(beam_size=args.beam_size))]
            bleu, chrf = corpus_scores(outputs, references)
            with_any = [(s, o) for s, o in zip(sources, outputs, strict=True) if placeholders_in(s)]
            kept = sum(placeholders_in(s) == placeholders_in(o) for s, o in with_any)
            rate = f"{kept}/{len(with_any)} ({100 * kept / len(with_any):.1f}%)" if with_any else "-"
            print(f"| {model_dir.name} | {source}->{target} | {domain} | {len(sources)} | "
                  f"{bleu.score:.2f} | {chrf.score:.2f} | {rate} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

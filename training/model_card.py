"""Write a model directory's MODEL_CARD.md from what its config.json records.

    python -m training.model_card models/en-de [--hardware "2-core Xeon, bf16 autocast, 58 min"]

The card says what the model translates and where it is weak, its architecture and size, its
data, the recipe and the command that reproduces it, and the test scores `nmt-eval --record`
stored (`make score-SRC-TGT`). Run it again after scoring to refresh the table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nmt.errors import NMTError
from nmt.fileio import atomic_write_text
from nmt.model import build_model
from nmt.model_dir import ModelConfig, read_config

NAMES = {"en": "English", "de": "German", "fr": "French", "cs": "Czech"}


def _scores(metrics: dict[str, Any]) -> list[str]:
    rows = ["| test set | search | precision | BLEU | chrF2 | sentences |", "| --- | --- | --- | --- | --- | --- |"]
    signatures = set()
    for name, value in sorted(metrics.items()):
        if isinstance(value, dict) and "BLEU" in value:
            beam = value.get("beam_size", 1)
            search = "greedy" if beam == 1 else f"beam {beam}"
            # scores recorded before nmt-eval stored it came from the fp32 default of that time
            run = value.get("precision", "fp32") + (", shortlist" if value.get("shortlist") else "")
            chrf = value.get("chrF2", float("nan"))
            rows.append(
                f"| {name} | {search} | {run} | **{value['BLEU']:.2f}** | {chrf:.2f} | {value.get('sentences', '')} |"
            )
            signatures.update(value.get("signatures", {}).values())
    if len(rows) == 2:
        return ["Not scored yet: `make score-SRC-TGT` records the test scores."]
    return [*rows, "", "sacrebleu signatures: " + "; ".join(f"`{s}`" for s in sorted(signatures))]


def model_card(path: Path, hardware: str | None = None) -> str:
    """The card's Markdown for the model directory at `path`."""
    config = read_config(path)
    src, tgt = config["source_language"], config["target_language"]
    names = NAMES.get(src, src), NAMES.get(tgt, tgt)
    model_cfg = ModelConfig.from_dict(config["model"])
    params = sum(p.numel() for p in build_model(model_cfg).parameters())
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e6
    training = config.get("training", {})
    recipe = training.get("config", {})
    data, train = recipe.get("data", {}), recipe.get("train", {})
    pair = f"{src}-{tgt}"
    averaged = training.get("averaged_from") or []
    steps = [int(name.rsplit("_", 1)[-1]) for name in averaged if name.rsplit("_", 1)[-1].isdigit()]
    last_step = max(steps, default=training.get("steps", 0))
    lines = [
        f"# {pair}: {names[0]}→{names[1]} attention LSTM (Multi30k)",
        "",
        f"Translates short, descriptive {names[0]} sentences (image captions: people, animals, places,",
        f"actions) into {names[1]}. It was trained on 29,000 caption pairs only: expect good output on",
        "everyday descriptive sentences and weak output on other domains (news, technical text,",
        "dialogue, long sentences).",
        "",
        "## Architecture",
        "",
        f"The reference recipe: joint sentencepiece {model_cfg.src_vocab_size:,}-piece vocabulary; embeddings "
        f"{model_cfg.emb_size}; encoder {model_cfg.enc_layers}-layer bidirectional {model_cfg.cell.upper()} "
        f"({model_cfg.enc_hidden} per direction); decoder {model_cfg.dec_layers}-layer {model_cfg.cell.upper()} of "
        f"{model_cfg.dec_hidden} with Luong dot attention{' and input feeding' if model_cfg.input_feed else ''}. "
        f"**{params / 1e6:.1f} M parameters**, weights stored as {config['weights']['dtype']} "
        f"({size:.1f} MB with the tokenizer); loaded as fp32.",
        "",
        "## Data",
        "",
        f"Multi30k task 1, raw cased text: `{Path(str(data.get('train_src', '?'))).name}` / "
        f"`{Path(str(data.get('train_tgt', '?'))).name}` ({training.get('train_pairs_read', '?'):,} pairs read, "
        f"{training.get('train_pairs_kept', '?'):,} kept); `val` for validation and checkpoint choice; the test sets "
        "only for the scores below.",
        "",
        "## Recipe and the command that reproduces it",
        "",
        f"`configs/multi30k_{src}_{tgt}.yaml`: Adam (lr {train.get('lr')}), {train.get('schedule')} schedule, "
        f"batches of {train.get('batch_tokens'):,} tokens, dropout {model_cfg.dropout}, label smoothing "
        f"{train.get('label_smoothing')}, seed {train.get('seed')}, autocast {train.get('amp')} where the hardware has "
        f"it; {last_step:,} steps; "
        + (
            f"the checkpoints of steps {', '.join(f'{n:,}' for n in steps)} averaged."
            if steps
            else "the final weights."
        ),
        "",
        "```sh",
        f"make model-{pair}   # train, average the last 3 checkpoints (int8 storage), score, into models/{pair}",
        "```",
        "",
    ]
    if hardware:
        lines += [f"Trained on: {hardware}.", ""]
    lines += ["## Scores", "", *_scores(config.get("metrics", {})), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m training.model_card MODEL_DIR`: write MODEL_DIR/MODEL_CARD.md."""
    parser = argparse.ArgumentParser(prog="python -m training.model_card", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="model directory")
    parser.add_argument("--hardware", help="where and how long it trained, for the card")
    args = parser.parse_args(argv)
    try:
        text = model_card(args.model, args.hardware)
    except NMTError as err:
        print(f"model_card: {err}", file=sys.stderr)
        return 1
    atomic_write_text(args.model / "MODEL_CARD.md", text)
    print(f"wrote {args.model / 'MODEL_CARD.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Corpus scores with sacrebleu (cased, detokenised, default 13a tokenisation), with signatures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sacrebleu


@dataclass(frozen=True)
class Score:
    """A corpus score and the sacrebleu signature that makes it reproducible."""

    name: str
    score: float
    signature: str
    text: str


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> list[Score]:
    """BLEU and chrF of hypotheses against one reference each."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    scores = []
    for metric in (sacrebleu.BLEU(), sacrebleu.CHRF()):
        result = metric.corpus_score(list(hypotheses), [list(references)])
        scores.append(Score(result.name, float(result.score), str(metric.get_signature()), str(result)))
    return scores


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu BLEU of hypotheses against one reference each."""
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)

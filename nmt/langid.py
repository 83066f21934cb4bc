"""Which language a text is in: naive Bayes over character n-grams, with profiles that ship with nmt.

`nmt/langid.json` holds, per language, the log-probabilities of its most frequent character
1- to 3-grams (of lowercased words padded with spaces) and one for any other n-gram; it is
built from training data by `python -m training.langid` (`make langid`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

PROFILES = Path(__file__).with_name("langid.json")
ORDERS = (1, 2, 3)


def char_ngrams(text: str, orders: Sequence[int] = ORDERS) -> Iterable[str]:
    """The character n-grams of each lowercased word, padded with a space on both sides."""
    for word in text.lower().split():
        padded = f" {word} "
        for n in orders:
            for i in range(len(padded) - n + 1):
                gram = padded[i : i + n]
                if gram.strip():
                    yield gram


class LanguageProfiles:
    """Per-language n-gram log-probabilities; `rank` orders candidate languages for a text."""

    def __init__(self, data: dict[str, Any]) -> None:
        languages: dict[str, dict[str, Any]] = data["languages"]
        self.orders: tuple[int, ...] = tuple(data.get("orders", ORDERS))
        self.unseen = {lang: float(p["unseen"]) for lang, p in languages.items()}
        self.grams = {lang: dict(p["grams"]) for lang, p in languages.items()}

    @property
    def languages(self) -> list[str]:
        """Languages with a profile."""
        return sorted(self.grams)

    def rank(self, text: str, candidates: Sequence[str]) -> list[tuple[str, float]]:
        """(language, confidence 0-100) for each candidate with a profile, most likely first.

        Confidence is the posterior under equal priors; a text without letters gets equal shares.
        """
        known = [c for c in candidates if c in self.grams]
        grams = list(char_ngrams(text, self.orders))
        if not known:
            return []
        if not grams:
            share = round(100.0 / len(known), 1)
            return [(lang, share) for lang in known]
        scores = {lang: sum(self.grams[lang].get(g, self.unseen[lang]) for g in grams) for lang in known}
        best = max(scores.values())
        weights = {lang: math.exp(s - best) for lang, s in scores.items()}
        total = sum(weights.values())
        ranked = sorted(known, key=lambda lang: -scores[lang])
        return [(lang, round(100.0 * weights[lang] / total, 1)) for lang in ranked]


@cache
def shipped_profiles() -> LanguageProfiles:
    """The profiles that ship with nmt (read once)."""
    return LanguageProfiles(json.loads(PROFILES.read_text(encoding="utf-8")))

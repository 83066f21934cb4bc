"""Language identification among the loaded source languages, by function words.

An honest small method for `/detect` and `source=auto`: count the words of the text that are
among the most frequent function words of each candidate language, and share 100 points of
confidence in proportion to the counts. A text with no such word gets the candidates equally.
"""

from __future__ import annotations

import re

LANGUAGE_NAMES = {
    "ar": "Arabic", "cs": "Czech", "de": "German", "en": "English", "es": "Spanish", "fr": "French",
    "it": "Italian", "ja": "Japanese", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ru": "Russian",
    "zh": "Chinese",
}  # fmt: skip

_FUNCTION_WORDS = {
    "de": "der die das und ist ein eine einer einem einen nicht zu mit auf im in den dem des von sich auch "
    "es ich sie er wir ihr mann frau hund vor bei für über unter zwei drei",
    "en": "the and is a an of to in on with at for it this that are was not by from man woman dog two three "
    "his her their while",
    "fr": "le la les et est un une des du de en dans sur avec pour pas que qui il elle au aux homme femme "
    "chien deux trois",
    "cs": "a je se na v ve s z do k o že to jako muž žena pes dva tři které který",
}
_WORDS = {lang: frozenset(words.split()) for lang, words in _FUNCTION_WORDS.items()}
_TOKEN = re.compile(r"\w+", re.UNICODE)


def detect_language(text: str, candidates: list[str]) -> list[tuple[str, float]]:
    """(language, confidence 0-100) for each candidate, most likely first."""
    if not candidates:
        return []
    words = [w.lower() for w in _TOKEN.findall(text)]
    counts = {lang: sum(w in _WORDS.get(lang, frozenset()) for w in words) for lang in candidates}
    total = sum(counts.values())
    if total == 0:
        share = round(100.0 / len(candidates), 1)
        return [(lang, share) for lang in candidates]
    ranked = sorted(candidates, key=lambda lang: -counts[lang])
    return [(lang, round(100.0 * counts[lang] / total, 1)) for lang in ranked]

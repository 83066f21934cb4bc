"""Split a text into sentences for translation and put the translations back in its layout.

Models are trained on single sentences, so a paragraph is translated sentence by sentence.
`split_text` keeps the layout: line breaks (and blank lines) are preserved exactly, and the
sentences of one line are joined back with a single space. A sentence ends at `.`, `!`, `?`
or `…` (with closing quotes or brackets) followed by whitespace and a capital letter, digit,
opening quote or tag, unless the word before the stop is a common German or English abbreviation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from nmt.translator import Alternative, Translation

_ABBREVIATIONS = frozenset(
    [
        "dr",
        "prof",
        "mr",
        "mrs",
        "ms",
        "st",
        "nr",
        "str",
        "bzw",
        "ca",
        "etc",
        "vgl",
        "usw",
        "z.b",
        "d.h",
        "u.a",
        "e.g",
        "i.e",
        "vs",
        "jr",
        "sr",
        "no",
        "fig",
        "abb",
    ]
)
# A match may only start where a run of stops starts (the look-behind): otherwise a failed match
# is retried from every stop of a long run ("....."), which takes time quadratic in its length.
_BOUNDARY = re.compile(r"""(?<![.!?…])[.!?…]+["'”’»)\]]*\s+(?=["'“„«(\[]?[A-ZÄÖÜ0-9]|<[A-Za-z/])""")
_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")


@dataclass(frozen=True)
class Segmented:
    """A text cut into sentences: `lines[i]` lists the sentences of line i, `breaks[i]` follows it."""

    lines: list[list[str]]
    breaks: list[str]

    @property
    def sentences(self) -> list[str]:
        """All sentences in reading order (blank lines contribute none)."""
        return [s for line in self.lines for s in line]

    def join(self, translations: Sequence[str]) -> str:
        """The text rebuilt with `translations` (one per sentence, in order) in place of the sentences."""
        it = iter(translations)
        parts = []
        for line, brk in zip(self.lines, self.breaks, strict=True):
            parts.append(" ".join(next(it) for _ in line))
            parts.append(brk)
        return "".join(parts)

    def join_results(self, parts: Sequence[Translation], n_best: int, attention: bool) -> Translation:
        """The text's translation from its sentences' (`parts`, one per sentence): their texts joined;
        the mean of their scores; alternative k joining each sentence's k-th alternative (its best
        where it has fewer); with `attention`, their word alignments joined."""
        score = sum(p.score for p in parts) / len(parts) if parts else 0.0
        alternatives = []
        for k in range(1, n_best):
            if not any(len(p.alternatives) >= k for p in parts):
                break
            picks = [p.alternatives[k - 1] if len(p.alternatives) >= k else None for p in parts]
            text = self.join([a.text if a else p.text for a, p in zip(picks, parts, strict=True)])
            alt_scores = [a.score if a else p.score for a, p in zip(picks, parts, strict=True)]
            alternatives.append(Alternative(text, sum(alt_scores) / len(alt_scores)))
        texts = [p.text for p in parts]
        words = self.join_alignments(texts, [p.word_alignment for p in parts]) if attention else None
        return Translation(self.join(texts), score, alternatives=alternatives, word_alignment=words)

    def join_alignments(self, translations: Sequence[str], alignments: Sequence[Sequence[int] | None]) -> list[int]:
        """The word alignment of the text `join(translations)` from each sentence's (`nmt.alignment`):
        word indices shifted by the words of the sentences before."""
        out: list[int] = []
        src_offset = 0
        for source, target, words in zip(self.sentences, translations, alignments, strict=True):
            count = len(target.split())
            row = list(words or [])[:count] + [-1] * max(0, count - len(words or []))
            out.extend(a + src_offset if a >= 0 else -1 for a in row)
            src_offset += len(source.split())
        return out


def split_sentences(line: str) -> list[str]:
    """Sentences of one line, stripped; a blank line has none."""
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(line):
        # the word before the stop; a window, not the whole sentence so far, keeps this linear
        words = line[max(start, match.start() - 32) : match.start() + 1].split()
        last = words[-1].lower().rstrip(".") if words else ""
        if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
            continue  # "Dr. Müller", "z.B. Hunde", initials such as "J. Smith"
        sentences.append(line[start : match.end()].strip())
        start = match.end()
    sentences.append(line[start:].strip())
    return [s for s in sentences if s]


def split_text(text: str) -> Segmented:
    """Cut `text` into lines (keeping each line-break sequence) and each line into sentences."""
    pieces = _LINE_BREAK.split(text)
    lines = [split_sentences(p) for p in pieces[0::2]]
    breaks = [*pieces[1::2], ""]
    return Segmented(lines, breaks)

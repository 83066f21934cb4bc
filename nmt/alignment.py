"""Word alignments from attention: which source word each word of a translation comes from.

The decoder's attention relates subwords of the masked texts the model saw (`nmt.placeholders`);
users and documents deal in the words of the texts themselves. `word_alignment` turns one
sentence's attention into, for every whitespace-separated word of the translation, the index of
the whitespace-separated source word it attends to most (-1 where nothing can be said, such as a
word the placeholder restoration inserted without attention). Document formats place inline
markup by it (`nmt.markup`), and through a pivot language the legs' alignments compose.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher

from nmt.placeholders import Protected, expand

WORD_START = "▁"


def piece_words(pieces: Sequence[str]) -> list[int]:
    """The word index of each sentencepiece piece: a piece starting with `▁` starts a new word."""
    out, word = [], -1
    for piece in pieces:
        if piece.startswith(WORD_START) or word < 0:
            word += 1
        out.append(word)
    return out


def _piece_to_word(pieces: Sequence[str], words: int) -> list[int]:
    """Piece -> word of a text of `words` words; proportional where the pieces do not count the words."""
    grouped = piece_words(pieces)
    if grouped and grouped[-1] + 1 == words:
        return grouped
    return [min(words - 1, i * words // max(len(pieces), 1)) for i in range(len(pieces))]


def masked_alignment(
    masked_source: str, masked_target: str, weights: Sequence[Sequence[float]], source_pieces: Sequence[str],
    target_pieces: Sequence[str],
) -> list[int]:  # fmt: skip
    """For each word of `masked_target`, the word of `masked_source` its pieces attend to most."""
    src_words, tgt_words = len(masked_source.split()), len(masked_target.split())
    if not src_words or not tgt_words or not weights:
        return [-1] * tgt_words
    src_map = _piece_to_word(source_pieces, src_words)
    tgt_map = _piece_to_word(target_pieces, tgt_words)
    mass = [[0.0] * src_words for _ in range(tgt_words)]
    for row, t in zip(weights, tgt_map, strict=False):
        for col, value in enumerate(row[: len(src_map)]):
            mass[t][src_map[col]] += value
    return [max(range(src_words), key=m.__getitem__) if any(m) else -1 for m in mass]


def restored_alignment(source: Protected, masked_target: str, final_target: str, alignment: Sequence[int]) -> list[int]:
    """`alignment` (masked target words -> masked source words) carried over to the words of the
    restored texts: the source's placeholders may hold spaces, and restoring may drop, insert or
    change words of the translation."""
    src_starts, total = [], 0
    for word in source.text.split():
        src_starts.append(total)
        total += max(len(expand(word, source).split()), 1)
    final = final_target.split()
    out = [-1] * len(final)
    expanded: list[str] = []
    origin: list[int] = []
    for k, word in enumerate(masked_target.split()):
        parts = expand(word, source).split()
        expanded.extend(parts)
        origin.extend([k] * len(parts))
    matcher = SequenceMatcher(None, expanded, final, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                src = alignment[origin[i]] if origin[i] < len(alignment) else -1
                out[j] = src_starts[src] if 0 <= src < len(src_starts) else -1
    # a placeholder restoring inserted belongs to the source word that holds it
    src_words = [expand(w, source) for w in source.text.split()]
    for j, word in enumerate(final):
        if out[j] < 0 and word in source.spans:
            out[j] = next((src_starts[i] for i, w in enumerate(src_words) if word in w), -1)
    return out


def compose(first: Sequence[int], second: Sequence[int]) -> list[int]:
    """Alignment through a pivot: `second` maps final words to pivot words, `first` pivot words to source words."""
    return [first[p] if 0 <= p < len(first) else -1 for p in second]

"""Placeholders and markup that must survive translation untouched, protected before and restored after.

Software strings and documents carry pieces that are not words: printf conversions (`%s`, `%d`,
`%1$s`, `%(name)s`, Qt's `%1`), braces (`{name}`, `{0}`, `{{var}}`), shell variables (`${VAR}`,
`$1`), XML/HTML tags and entities, URLs and e-mail addresses. `protect` replaces each by a numbered
symbol (`｟1｠`, `｟2｠`, … in order of appearance; the same text gets the same number) that models
trained with `nmt.tokenizer` keep as one subword and learn to copy, and `restore` puts the original
text back. A menu accelerator (`_File`, `&File`, `~File`) is removed before translation and put back
on the translated label, on the same letter where the translation has it at a word start, else on
its first letter.

`restore` makes the output hold exactly the source's placeholders, whatever the model wrote: a
symbol written twice is kept once, an unknown one dropped, a missing one inserted where the
attention of the target tokens points at it (with an alignment), else at the same relative position,
and a placeholder the model spelt out of ordinary pieces (a `%e`, a `<b>`) that the source does not
hold is removed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

OPEN, CLOSE = "｟", "｠"
MAX_SYMBOLS = 24
SYMBOLS: tuple[str, ...] = tuple(f"{OPEN}{k}{CLOSE}" for k in range(1, MAX_SYMBOLS + 1))
"""What a model's sentencepiece vocabulary reserves, one piece each (`nmt.tokenizer.train_sentencepiece`)."""

_PATTERNS = [
    r"</?[A-Za-z][\w:.-]*(?:\s+[\w:.-]+(?:\s*=\s*(?:\"[^\"<>]*\"|'[^'<>]*'|[^\s\"'<>=]+))?)*\s*/?>",  # tags
    r"<!--.*?-->",  # comments
    r"&(?:#\d{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});",  # entities
    r"%%",
    r"%\([A-Za-z_][\w.]*\)[-+#0]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]",  # %(name)s
    r"%(?:\d+\$)?[-+#0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|t|I64|I32)?[diouxXeEfFgGaAcspn]",
    r"%\d{1,2}\b",  # Qt and KDE: %1
    # IRC clients' colour and style codes, and $t (a tab)
    r"%C\d{1,2}(?:,\d{1,2})?|%[BCOURIH](?![a-z])|(?<=%O)\$t|\$t(?![A-Za-z])",
    r"\{\{\s*[\w.|: ]+?\s*\}\}",  # {{ var }}
    r"\{[\w.\[\]]*(?:![rsa])?(?::[^{}\s]*)?\}",  # {name}, {0}, {}, {0:.2f}
    r"\$\{[A-Za-z_]\w*\}",  # ${VAR}
    r"\$\d{1,2}\b",  # $1
    r"\$[A-Z_][A-Z0-9_]+\b",  # $HOME
    r"\b(?:https?|ftp)://[^\s<>\"'｟｠]*[^\s<>\"'｟｠.,;:!?)\]]",  # URLs
    r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b",  # e-mail
]
_PLACEHOLDER = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.DOTALL)
_SYMBOL = re.compile(f"{OPEN}(\\d+){CLOSE}")
# one marker before a letter or digit, at a word start or inside a word; `&` not starting an entity
_ACCELERATOR = re.compile(r"(?:(?<=\s)|(?<=^)|(?<=\w))([_&~])(?=[^\W_])")
_ENTITY_AHEAD = re.compile(r"&[#\w]+;")


@dataclass(frozen=True)
class Accelerator:
    """A menu accelerator taken out of a label: its marker and the letter it stood before."""

    marker: str
    letter: str


@dataclass(frozen=True)
class Protected:
    """A text with its placeholders replaced by symbols: `spans[k - 1]` is what `｟k｠` stands for."""

    text: str
    spans: tuple[str, ...] = ()
    accelerator: Accelerator | None = None

    @property
    def changed(self) -> bool:
        """Whether anything was replaced or removed (else `text` is the input itself)."""
        return bool(self.spans) or self.accelerator is not None


def find_accelerator(text: str) -> tuple[int, Accelerator] | None:
    """The one accelerator marker in a label and its letter, or None where there is none or the
    marker character appears more than once (an identifier such as `file_name`, a `&&` or `A & B`)."""
    candidates = [m for m in _ACCELERATOR.finditer(text) if not _ENTITY_AHEAD.match(text, m.start())]
    if len(candidates) != 1:
        return None
    match = candidates[0]
    marker = match.group(1)
    if text.count(marker) != 1:
        return None
    word = re.search(r"\w*$", text[: match.start()])
    before = word.group(0) if word else ""
    if before and not (before[0].isupper() and text[match.end()].islower()):
        return None  # inside a word only as in "Ö_ffnen", not "file_name" or "AT&T"
    return match.start(), Accelerator(marker, text[match.end()])


def protect(text: str, accelerators: bool = True) -> Protected:
    """`text` with placeholders replaced by numbered symbols and its accelerator (if any) removed.

    Text that already holds the symbol characters is left as it is: it cannot be told apart."""
    if OPEN in text or CLOSE in text:
        return Protected(text)
    spans: list[str] = []
    pieces: list[str] = []
    last = 0
    for match in _PLACEHOLDER.finditer(text):
        span = match.group(0)
        if span not in spans:
            spans.append(span)
        if len(spans) > MAX_SYMBOLS:
            spans.pop()
            break
        pieces.append(text[last : match.start()])
        pieces.append(SYMBOLS[spans.index(span)])
        last = match.end()
    pieces.append(text[last:])
    masked = "".join(pieces)
    accelerator = None
    if accelerators:
        found = find_accelerator(masked)
        if found is not None:
            at, accelerator = found
            masked = masked[:at] + masked[at + 1 :]
    return Protected(masked, tuple(spans), accelerator)


def protect_like(text: str, source: Protected) -> str | None:
    """A target text masked with the numbering of `source` (for training pairs); None where its
    placeholders are not exactly the source's (a pair a model should not learn from)."""
    own = protect(text, accelerators=source.accelerator is not None)
    if _multiset(own) != _multiset(source):
        return None
    if source.accelerator is not None and own.accelerator is None:
        return None
    renumber = {own_k: source.spans.index(span) for own_k, span in enumerate(own.spans)}
    return _SYMBOL.sub(lambda m: SYMBOLS[renumber[int(m.group(1)) - 1]], own.text)


def _multiset(protected: Protected) -> list[str]:
    return sorted(protected.spans[k - 1] for k in symbols_in(protected.text))


def placeholders_in(text: str) -> list[str]:
    """The placeholders of a text as protection finds them, repeats included, sorted: two texts keep
    each other's placeholders exactly when these are equal."""
    return _multiset(protect(text))


def expand(text: str, source: Protected) -> str:
    """`text` with the symbols of `source` replaced by what they stand for (others left as they are)."""
    if not source.spans:
        return text
    spans = source.spans
    return _SYMBOL.sub(lambda m: spans[int(m.group(1)) - 1] if int(m.group(1)) <= len(spans) else m.group(0), text)


def symbols_in(text: str) -> list[int]:
    """The symbol numbers in a masked text, in order (1-based, repeats included)."""
    return [int(m.group(1)) for m in _SYMBOL.finditer(text)]


def restore(
    translation: str,
    source: Protected,
    source_pieces: Sequence[str] | None = None,
    target_pieces: Sequence[str] | None = None,
    alignment: Sequence[Sequence[float]] | None = None,
) -> str:
    """The translation of a protected text with the source's placeholders and accelerator put back.

    Each of the source's placeholders appears in the result exactly as often as in the source; see
    the module docstring for how a missing one is placed (`alignment` rows are target pieces,
    columns source pieces, as `Translation.alignment`)."""
    if not source.changed and (OPEN not in translation or OPEN in source.text or CLOSE in source.text):
        return drop_invented(translation, source.text)  # nothing to restore, or symbols the source itself holds
    wanted = {k + 1: source.text.count(SYMBOLS[k]) for k in range(len(source.spans))}
    seen: dict[int, int] = {}

    def keep(match: re.Match[str]) -> str:
        k = int(match.group(1))
        seen[k] = seen.get(k, 0) + 1
        return match.group(0) if seen[k] <= wanted.get(k, 0) else ""

    text = _SYMBOL.sub(keep, translation)
    if text != translation:
        text = re.sub(r" {2,}", " ", text).strip()
    for k, count in wanted.items():
        for _ in range(count - seen.get(k, 0)):
            text = _insert(text, SYMBOLS[k - 1], source, source_pieces, target_pieces, alignment)
    if source.accelerator is not None:
        text = _put_accelerator(text, source.accelerator)
    return expand(drop_invented(text, source.text), source)


def drop_invented(text: str, source: str) -> str:
    """`text` without the placeholders the model spelt out that `source` (masked) does not hold as text:
    a `%s` or `<b>` made of ordinary pieces would break a program as surely as a lost one."""
    allowed = Counter(m.group(0) for m in _PLACEHOLDER.finditer(source))
    dropped = False

    def keep(match: re.Match[str]) -> str:
        nonlocal dropped
        if allowed[match.group(0)] > 0:
            allowed[match.group(0)] -= 1
            return match.group(0)
        dropped = True
        return ""

    out = _PLACEHOLDER.sub(keep, text)
    return re.sub(r" {2,}", " ", out).strip() if dropped else out


def _insert(
    text: str,
    symbol: str,
    source: Protected,
    source_pieces: Sequence[str] | None,
    target_pieces: Sequence[str] | None,
    alignment: Sequence[Sequence[float]] | None,
) -> str:
    """`text` with `symbol` inserted between two words: after the word whose target piece attends
    most to the symbol's source piece, else at the symbol's relative position in the source."""
    words = text.split(" ") if text else []
    src_words = source.text.split(" ")
    where = next((i for i, w in enumerate(src_words) if symbol in w), 0)
    at = round(len(words) * where / max(len(src_words), 1))
    if source_pieces and target_pieces and alignment and symbol in source_pieces:
        column = list(source_pieces).index(symbol)
        rows = [row[column] if column < len(row) else 0.0 for row in alignment[: len(target_pieces)]]
        if rows:
            best = max(range(len(rows)), key=rows.__getitem__)
            at = sum(1 for p in target_pieces[: best + 1] if p.startswith("▁")) or at
            at = min(at, len(words))
    if not words:
        return symbol
    return " ".join([*words[:at], symbol, *words[at:]])


def _put_accelerator(text: str, accelerator: Accelerator) -> str:
    """The marker before the first word-initial occurrence of the accelerator's letter (any case),
    else before the first letter of the text; a translation that has its own marker keeps it."""
    found = find_accelerator(text)
    if found is not None and found[1].marker == accelerator.marker:
        return text
    letter = accelerator.letter.lower()
    spans = [(m.start(), m.end()) for m in _SYMBOL.finditer(text)]
    inside = [i for s, e in spans for i in range(s, e)]
    starts = [m.start() for m in re.finditer(r"(?<!\w)[^\W_]", text) if m.start() not in inside]
    letters = [m.start() for m in re.finditer(r"[^\W_]", text) if m.start() not in inside]
    at = next((i for i in starts if text[i].lower() == letter), None)
    if at is None:
        at = next((i for i in letters if text[i].lower() == letter), letters[0] if letters else None)
    if at is None:
        return accelerator.marker + text
    return text[:at] + accelerator.marker + text[at:]

"""What one request may ask of the server: how many texts, how long, how wide a beam.

Both APIs apply these rules; a request over a limit raises `LimitExceeded`, which
`service.errors` answers with 422 (400 on the LibreTranslate routes).
"""

from __future__ import annotations

from nmt.errors import InputError
from nmt.search import SearchOptions
from service.settings import Settings


class LimitExceeded(InputError):
    """A request asks for more than the server's settings allow; the message names the setting."""


def check_texts(texts: list[str], settings: Settings) -> None:
    """More texts, or longer texts, than the server allows: LimitExceeded."""
    if len(texts) > settings.max_texts:
        raise LimitExceeded(f"too many texts: {len(texts)} > NMT_MAX_TEXTS={settings.max_texts}")
    for i, text in enumerate(texts):
        if len(text) > settings.max_chars:
            raise LimitExceeded(f"text {i} has {len(text)} characters, over NMT_MAX_CHARS={settings.max_chars}")


def search_options(settings: Settings, beam_size: int | None, n_best: int, alignments: bool) -> SearchOptions:
    """Search options for one request within the server's limits (the message names the field)."""
    beam = beam_size or max(settings.beam_size, n_best)
    if beam > settings.max_beam_size:
        raise LimitExceeded(f"beam_size {beam} is over the server's limit NMT_MAX_BEAM_SIZE={settings.max_beam_size}")
    if n_best > beam:
        raise LimitExceeded(f"n_best ({n_best}) must not exceed beam_size ({beam})")
    return SearchOptions(beam_size=beam, n_best=n_best, return_attention=alignments)

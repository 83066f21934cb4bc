"""Request and response bodies of the service's own API (`/v1`), named for what they carry."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


def valid_unicode(text: str) -> str:
    """`text` if it encodes as UTF-8; JSON escapes such as "\\ud800" can carry lone surrogates, which do not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"not valid Unicode: a lone surrogate at character {err.start}") from None
    return text


class TranslateRequest(BaseModel):
    """`POST /v1/translate`: texts to translate and search options."""

    model_config = ConfigDict(extra="forbid", strict=True)

    texts: list[str] = Field(min_length=1, description="texts to translate; each may hold several sentences and lines")
    model: str | None = Field(
        None, description="model id, e.g. 'de-en'; optional when only one model is loaded or target is given"
    )
    source: str | None = Field(
        None, min_length=1, max_length=32, description="source language code, or 'auto' to detect it per text"
    )
    target: str | None = Field(
        None, min_length=1, max_length=32, description="target language code: picks a model, or two through a pivot"
    )
    beam_size: int | None = Field(None, ge=1, description="beam width (default: the server's NMT_BEAM_SIZE)")
    n_best: int = Field(1, ge=1, description="translations per text: the best plus n_best - 1 alternatives")
    return_scores: bool = Field(False, description="include the length-normalised log-probability")
    return_alignments: bool = Field(False, description="include attention weights per sentence")
    format: Literal["text", "html"] = Field(
        "text", description="html: each text is an HTML fragment, translated with its markup kept"
    )
    api_key: str | None = Field(None, description="API key, when the server needs one (or a header)")

    @field_validator("texts")
    @classmethod
    def _texts_are_unicode(cls, texts: list[str]) -> list[str]:
        for i, text in enumerate(texts):
            try:
                valid_unicode(text)
            except ValueError as err:
                raise ValueError(f"text {i} is {err}") from None
        return texts

    @field_validator("model", "api_key", "source", "target")
    @classmethod
    def _is_unicode(cls, value: str | None) -> str | None:
        return None if value is None else valid_unicode(value)


class AlternativeOut(BaseModel):
    """A lower-ranked translation."""

    text: str
    score: float | None = None


class AlignmentOut(BaseModel):
    """Attention of one sentence: `weights[t][s]` is target token t's weight on source token s."""

    source_tokens: list[str]
    target_tokens: list[str]
    weights: list[list[float]]


class DetectedLanguage(BaseModel):
    """The language `source: auto` found, with confidence 0-100."""

    language: str
    confidence: float


class TranslationOut(BaseModel):
    """One translated text."""

    text: str
    detected_language: DetectedLanguage | None = None
    score: float | None = None
    alternatives: list[AlternativeOut] | None = None
    alignment: list[AlignmentOut] | None = None
    word_alignment: list[int] | None = Field(
        None, description="with return_alignments: each word of text's source word index (-1: none)"
    )


class TranslateResponse(BaseModel):
    """Translations in input order."""

    model: str = Field(description="model id; a pivot chain joins ids by '+', several routes by ','")
    translations: list[TranslationOut]


class ModelOut(BaseModel):
    """A servable model; device, precision and shortlist are known while it is loaded."""

    id: str
    source_language: str
    target_language: str
    parameters: int
    loaded: bool = Field(description="in memory now; otherwise it loads on first use")
    memory_mb: float | None = Field(None, description="resident memory its load took (while loaded)")
    device: str | None = None
    precision: str | None = Field(
        None, description="what the model runs in: int8, fp32, bf16 or fp16 (NMT_PRECISION=auto picks)"
    )
    shortlist: bool | None = Field(None, description="whether each sentence is searched over its vocabulary shortlist")
    metrics: dict[str, object] = Field(
        default_factory=dict, description="scores: validation from training, test sets recorded by nmt-eval --record"
    )


class ModelsResponse(BaseModel):
    """`GET /v1/models`."""

    models: list[ModelOut]
    memory_budget_mb: float | None = Field(None, description="NMT_MAX_MODEL_MEMORY_MB: loaded models' memory limit")


class ReloadResponse(BaseModel):
    """`POST /v1/models/reload`: what the models directory holds now, against before."""

    added: list[str] = Field(description="ids of model directories new or changed on disk")
    removed: list[str] = Field(description="ids no longer there, or replaced by their changed files")
    models: list[str]


class Status(BaseModel):
    """Liveness and readiness answers."""

    status: str
    models: list[str] | None = None

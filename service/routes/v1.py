"""The service's own API: `POST /v1/translate` and `GET /v1/models`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from nmt.search import SearchOptions
from service.deps import Authenticated, InFlight, StateDep, arrival, ready_registry, until_disconnected
from service.errors import ApiError
from service.schemas import (
    AlignmentOut,
    AlternativeOut,
    ModelOut,
    ModelsResponse,
    TranslateRequest,
    TranslateResponse,
    TranslationOut,
)
from service.settings import Settings

router = APIRouter(prefix="/v1", tags=["translation"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "request body is not valid JSON"},
    401: {"description": "API key missing"},
    403: {"description": "API key invalid"},
    404: {"description": "unknown model"},
    413: {"description": "body too large"},
    422: {"description": "invalid request (too many texts, text too long, wrong types)"},
    503: {"description": "overloaded, loading or draining (see Retry-After)"},
    504: {"description": "request deadline exceeded"},
}


def check_texts(texts: list[str], settings: Settings) -> None:
    """422 for more texts or longer texts than the server allows."""
    if len(texts) > settings.max_texts:
        raise ApiError(422, f"too many texts: {len(texts)} > NMT_MAX_TEXTS={settings.max_texts}")
    for i, text in enumerate(texts):
        if len(text) > settings.max_chars:
            raise ApiError(422, f"text {i} has {len(text)} characters, over NMT_MAX_CHARS={settings.max_chars}")


def search_options(settings: Settings, beam_size: int | None, n_best: int, alignments: bool) -> SearchOptions:
    """Validated search options for one request (422 names the field)."""
    beam = beam_size or max(settings.beam_size, n_best)
    if beam > settings.max_beam_size:
        raise ApiError(422, f"beam_size {beam} is over the server's limit NMT_MAX_BEAM_SIZE={settings.max_beam_size}")
    if n_best > beam:
        raise ApiError(422, f"n_best ({n_best}) must not exceed beam_size ({beam})")
    return SearchOptions(beam_size=beam, n_best=n_best, return_attention=alignments)


@router.post("/translate", response_model=TranslateResponse, response_model_exclude_none=True, responses=ERRORS)
async def translate(
    body: TranslateRequest, request: Request, state: StateDep, _auth: None = Authenticated, _: None = InFlight
) -> TranslateResponse:
    """Translate texts; answers come in input order. Sentences and line breaks inside a text are kept."""
    registry = ready_registry(state)
    try:
        entry = registry.get(body.model)
    except KeyError as err:
        raise ApiError(404 if body.model else 422, str(err.args[0])) from None
    check_texts(body.texts, state.settings)
    options = search_options(state.settings, body.beam_size, body.n_best, body.return_alignments)
    results = await until_disconnected(request, state.engine.translate(entry, body.texts, options, arrival(request)))
    out = []
    for r in results:
        item = TranslationOut(text=r.text)
        if body.return_scores:
            item.score = r.score
        if body.n_best > 1:
            item.alternatives = [
                AlternativeOut(text=t, score=s if body.return_scores else None) for t, s in r.alternatives
            ]
        if body.return_alignments and r.alignment is not None:
            item.alignment = [AlignmentOut(**vars(a)) for a in r.alignment]
        out.append(item)
    return TranslateResponse(model=entry.id, translations=out)


@router.get("/models", response_model=ModelsResponse, tags=["models"])
async def models(state: StateDep) -> ModelsResponse:
    """The loaded models: ids, languages, size, device and validation scores."""
    registry = ready_registry(state)
    return ModelsResponse(
        models=[
            ModelOut(
                id=e.id,
                source_language=e.source_language,
                target_language=e.target_language,
                parameters=e.parameters,
                device=str(e.translator.device),
                metrics=e.translator.info.metrics if e.translator.info else {},
            )
            for e in registry.entries.values()
        ]
    )

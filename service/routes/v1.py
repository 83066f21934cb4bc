"""The service's own API: `POST /v1/translate` and `GET /v1/models`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from nmt.errors import InputError, ModelLoadError
from nmt.search import SearchOptions
from service.deps import Authenticated, InFlight, StateDep, arrival, ready_registry, until_disconnected
from service.errors import ApiError
from service.limits import check_texts, search_options
from service.schemas import (
    AlignmentOut,
    AlternativeOut,
    DetectedLanguage,
    ModelOut,
    ModelsResponse,
    ReloadResponse,
    TranslateRequest,
    TranslateResponse,
    TranslationOut,
)

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


@router.post("/translate", response_model=TranslateResponse, response_model_exclude_none=True, responses=ERRORS)
async def translate(
    body: TranslateRequest, request: Request, state: StateDep, _auth: None = Authenticated, _: None = InFlight
) -> TranslateResponse:
    """Translate texts; answers come in input order. Sentences and line breaks inside a text are kept."""
    registry = ready_registry(state)
    check_texts(body.texts, state.settings)
    options = search_options(state.settings, body.beam_size, body.n_best, body.return_alignments)
    if body.format == "html":
        return await _translate_html(body, request, state, options)
    detected: list[tuple[str, float]] = []
    if body.model is not None or body.target is None:
        if body.target is None and body.source is not None:
            raise InputError("source was given without target: name the target language too")
        entry = registry.get(body.model)
        source, target = (body.source or "auto").lower(), (body.target or entry.target_language).lower()
        if source not in ("auto", entry.source_language) or target != entry.target_language:
            raise InputError(
                f"model {entry.id} translates {entry.source_language}->{entry.target_language}, "
                f"not {source}->{target}: leave model out to be routed"
            )
        model_id = entry.id
        results = await until_disconnected(
            request, state.engine.translate(entry, body.texts, options, arrival(request))
        )
    else:
        source, target = (body.source or "auto").lower(), body.target.lower()
        pair = state.engine.translate_pair(registry, body.texts, source, target, options, arrival(request))
        results, detected = await until_disconnected(request, pair)
        sources = sorted({lang for lang, _ in detected}) if detected else [source]
        model_id = ",".join("+".join(e.id for e in registry.route(lang, target)) for lang in sources)
    out = []
    for i, r in enumerate(results):
        item = TranslationOut(text=r.text)
        if detected:
            item.detected_language = DetectedLanguage(language=detected[i][0], confidence=detected[i][1])
        if body.return_scores:
            item.score = r.score
        if body.n_best > 1:
            item.alternatives = [
                AlternativeOut(text=t, score=s if body.return_scores else None) for t, s in r.alternatives
            ]
        if body.return_alignments and r.alignment is not None:
            item.alignment = [AlignmentOut(**vars(a)) for a in r.alignment]
        if body.return_alignments:
            item.word_alignment = r.word_alignment
        out.append(item)
    return TranslateResponse(model=model_id, translations=out)


async def _translate_html(
    body: TranslateRequest, request: Request, state: StateDep, options: SearchOptions
) -> TranslateResponse:
    """`format: html`: each text is an HTML fragment, translated with its markup put back."""
    if body.n_best > 1 or body.return_scores or body.return_alignments:
        raise InputError("n_best, return_scores and return_alignments are not given for format html")
    registry = ready_registry(state)
    if body.target is None:
        entry = registry.get(body.model)
        source, target = (body.source or entry.source_language).lower(), entry.target_language
    else:
        source, target = (body.source or "auto").lower(), body.target.lower()
    markup = state.engine.translate_pair(registry, body.texts, source, target, options, arrival(request), True)
    pages, detected = await until_disconnected(request, markup)
    sources = sorted({lang for lang, _ in detected}) if detected else [source]
    found = [DetectedLanguage(language=lang, confidence=conf) for lang, conf in detected]
    out = [TranslationOut(text=p.text, detected_language=found[i] if found else None) for i, p in enumerate(pages)]
    model_id = ",".join("+".join(e.id for e in registry.route(lang, target)) for lang in sources)
    return TranslateResponse(model=model_id, translations=out)


@router.get("/models", response_model=ModelsResponse, response_model_exclude_none=True, tags=["models"])
async def models(state: StateDep) -> ModelsResponse:
    """Every servable model: ids, languages, size, whether it is loaded (then device, precision, memory), scores."""
    registry = ready_registry(state)
    out = []
    for e in registry.entries.values():
        t = e.translator
        out.append(
            ModelOut(
                id=e.id,
                source_language=e.source_language,
                target_language=e.target_language,
                parameters=e.parameters,
                loaded=t is not None,
                memory_mb=round(e.memory_bytes / 2**20, 1) if t is not None else None,
                device=str(t.device) if t is not None else None,
                precision=t.precision if t is not None else None,
                shortlist=t.shortlist is not None if t is not None else None,
                metrics=e.info.metrics,
            )
        )
    return ModelsResponse(models=out, memory_budget_mb=state.settings.max_model_memory_mb)


@router.post("/models/reload", response_model=ReloadResponse, tags=["models"], responses=ERRORS)
async def reload_models(state: StateDep, _auth: None = Authenticated) -> ReloadResponse:
    """Read the models directory again: new model directories become servable (loading on first use),
    removed ones leave once their requests end, changed ones load their new files on next use."""
    registry = ready_registry(state)
    try:
        added, removed = registry.rescan()
    except ModelLoadError as err:
        raise ApiError(422, f"the models directory was not reloaded: {err}") from None
    return ReloadResponse(added=added, removed=removed, models=list(registry.entries))

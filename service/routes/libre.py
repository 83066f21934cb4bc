"""LibreTranslate-compatible API: `POST /translate`, `GET /languages`, `POST /detect`.

Clients written for LibreTranslate work unchanged: parameters may come in a JSON body, a
form-encoded (or multipart) body, or the query string (a body value wins over the query),
`q` may be a string or a list, and errors are `{"error": message}` with 400, 401/403, 429/503.
`format=html` translates HTML fragments with their markup put back (see nmt.documents.html).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from service.deps import Authenticated, InFlight, StateDep, arrival, ready_registry, until_disconnected
from service.detect import LANGUAGE_NAMES, detect_language
from service.errors import ApiError
from service.limits import check_texts, search_options
from service.schemas import valid_unicode


def libre_errors(request: Request) -> None:
    """LibreTranslate answers every client error with 400: `service.errors` reads this mark."""
    request.state.libre = True


router = APIRouter(tags=["LibreTranslate compatible"], dependencies=[Depends(libre_errors)])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad or missing parameter, unsupported language pair or format"},
    401: {"description": "API key missing"},
    403: {"description": "API key invalid"},
    503: {"description": "overloaded, loading or draining (see Retry-After)"},
}


class Language(BaseModel):
    """One source language and the languages it translates into."""

    code: str
    name: str
    targets: list[str]
    loaded: list[str] = Field(
        default_factory=list, description="the targets whose models are in memory now (the others load on first use)"
    )


class Detection(BaseModel):
    """A candidate language with confidence 0-100."""

    language: str
    confidence: float


class DetectParams(BaseModel):
    """Parameters of `POST /detect` (JSON body, form or query string)."""

    q: str | list[str] = Field(description="text, or texts, to identify")
    api_key: str | None = Field(None, description="API key, when the server needs one")


class TranslateParams(DetectParams):
    """Parameters of `POST /translate` (JSON body, form or query string; a body value wins)."""

    q: str | list[str] = Field(description="text, or a list of texts, to translate")
    source: str = Field(description="source language code, or 'auto'")
    target: str = Field(description="target language code")
    format: Literal["text", "html"] = Field("text", description="html: q holds HTML, translated with its markup kept")
    alternatives: int = Field(0, ge=0, description="extra translations per text")


def _openapi(params: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a route that reads its parameters itself: the same fields as body, form or query."""
    schema = params.model_json_schema()
    query = [
        {"name": name, "in": "query", "required": False, "schema": field}
        for name, field in schema["properties"].items()
    ]
    body = {"schema": schema}
    return {
        "parameters": query,
        "requestBody": {
            "required": False,
            "content": {"application/json": body, "application/x-www-form-urlencoded": body},
        },
    }


async def read_params(request: Request) -> dict[str, Any]:
    """Parameters from the query string, then a JSON or form body (body values win)."""
    params: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        params[key] = values if len(values) > 1 else values[0]
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        for key in form:
            items = form.getlist(key)
            values = [v for v in items if isinstance(v, str)]
            if len(values) != len(items):
                raise ApiError(400, f"parameter {key} must be text, not a file")
            params[key] = values if len(values) > 1 else values[0]
    else:
        body = await request.body()
        if body.strip():
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "request body is not valid JSON") from None
            except RecursionError:
                raise ApiError(400, "request body is nested too deeply") from None
            if not isinstance(data, dict):
                raise ApiError(400, "request body must be a JSON object")
            params.update(data)
    for key, value in params.items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                try:
                    valid_unicode(text)
                except ValueError as err:
                    raise ApiError(400, f"Invalid request: {key} is {err}") from None
    return params


def _text_list(params: dict[str, Any]) -> tuple[list[str], bool]:
    """`q` as a list of texts and whether it was given as a list (400 when missing or mistyped)."""
    q = params.get("q")
    if q is None:
        raise ApiError(400, "Invalid request: missing q parameter")
    if isinstance(q, str):
        return [q], False
    if isinstance(q, list) and q and all(isinstance(t, str) for t in q):
        return q, True
    raise ApiError(400, "Invalid request: q must be a string or a non-empty list of strings")


def _str_param(params: dict[str, Any], name: str, default: str | None = None) -> str:
    value = params.get(name, default)
    if value is None:
        raise ApiError(400, f"Invalid request: missing {name} parameter")
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"Invalid request: {name} must be a language code")
    return value.strip().lower()


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    try:
        number = int(value)
        if isinstance(value, (float, bool)) or number < 0:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ApiError(400, f"Invalid request: {name} must be a non-negative integer") from None
    return number


@router.post("/translate", responses=ERRORS, openapi_extra=_openapi(TranslateParams))
async def translate(
    request: Request, state: StateDep, _auth: None = Authenticated, _: None = InFlight
) -> dict[str, Any]:
    """Translate `q` from `source` (or `auto`) to `target`; `alternatives` asks for extra translations."""
    params = await read_params(request)
    registry = ready_registry(state)
    texts, as_list = _text_list(params)
    source, target = _str_param(params, "source"), _str_param(params, "target")
    fmt = _str_param(params, "format", "text")
    if fmt not in ("text", "html"):
        raise ApiError(400, f"format {fmt} is not supported; use format=text or format=html")
    n_alt = _int_param(params, "alternatives", 0)
    check_texts(texts, state.settings)
    if fmt == "html":
        if n_alt:
            raise ApiError(400, "alternatives are not given for format=html")
        options = search_options(state.settings, None, 1, alignments=True)
        markup = state.engine.translate_pair(registry, texts, source, target, options, arrival(request), markup=True)
        pages, found = await until_disconnected(request, markup)
        return _answer([p.text for p in pages], [], found, as_list)
    options = search_options(state.settings, None, n_alt + 1, alignments=False)

    results, detected = await until_disconnected(
        request, state.engine.translate_pair(registry, texts, source, target, options, arrival(request))
    )
    alternatives = [[t for t, _ in r.alternatives] for r in results] if n_alt else []
    return _answer([r.text for r in results], alternatives, detected, as_list)


def _answer(
    translated: list[str], alternatives: list[list[str]], detected: list[tuple[str, float]], as_list: bool
) -> dict[str, Any]:
    """LibreTranslate's answer: one value per text, or a list where `q` was a list."""
    answer: dict[str, Any] = {"translatedText": translated if as_list else translated[0]}
    if alternatives:
        answer["alternatives"] = alternatives if as_list else alternatives[0]
    if detected:
        info = [{"language": lang, "confidence": conf} for lang, conf in detected]
        answer["detectedLanguage"] = info if as_list else info[0]
    return answer


@router.get("/languages", response_model=list[Language])
async def languages(state: StateDep) -> list[Language]:
    """Every source language with the targets it reaches, directly or through a pivot language."""
    registry = ready_registry(state)
    return [
        Language(
            code=code,
            name=LANGUAGE_NAMES.get(code, code),
            targets=targets,
            loaded=[t for t in targets if all(e.loaded for e in registry.route(code, t))],
        )
        for code, targets in registry.reachable().items()
    ]


@router.post("/detect", response_model=list[Detection], responses=ERRORS, openapi_extra=_openapi(DetectParams))
async def detect(request: Request, state: StateDep, _auth: None = Authenticated) -> list[Detection]:
    """Which loaded source language `q` is in, by counting function words (see service.detect)."""
    params = await read_params(request)
    registry = ready_registry(state)
    texts, _ = _text_list(params)
    ranked = detect_language(" ".join(texts), registry.source_languages())
    return [Detection(language=lang, confidence=conf) for lang, conf in ranked]

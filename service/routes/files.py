"""File translation, LibreTranslate's way: `POST /translate_file` answers `{"translatedFileUrl": ...}`,
the URL of `GET /download_file/{key}`, which serves the file until it expires (NMT_FILE_TTL_S).

The upload is a multipart form with `file`, `source` (or `auto`), `target` and optionally
`api_key`; `progress_id` (a client-chosen id) makes `GET /translate_file/progress/{id}` report
how many of the file's parts are done while it translates.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from nmt.documents import format_for, parse_document
from nmt.routing import UnsupportedPair
from service.deps import Authenticated, InFlight, StateDep, ready_registry, until_disconnected
from service.detect import detect_language
from service.engine import TextResult
from service.errors import ApiError
from service.limits import search_options
from service.routes.libre import ERRORS, libre_errors

router = APIRouter(tags=["LibreTranslate compatible"], dependencies=[Depends(libre_errors)])
downloads = APIRouter(tags=["LibreTranslate compatible"])

CHUNK_TEXTS = 64  # texts of a file per submission: the unit of progress and of the request deadline
DETECT_SAMPLE_CHARS = 5000


def _form_text(form: Any, name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"Invalid request: missing {name} parameter")
    return value.strip().lower()


@router.post(
    "/translate_file",
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "source", "target"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "source": {"type": "string"},
                            "target": {"type": "string"},
                            "api_key": {"type": "string"},
                            "progress_id": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def translate_file(
    request: Request, state: StateDep, _auth: None = Authenticated, _: None = InFlight
) -> dict[str, str]:
    """Translate an uploaded file (see nmt.documents for the formats); answers the URL to download it from."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "multipart/form-data":
        raise ApiError(400, "Invalid request: send the file as multipart/form-data with a 'file' field")
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "Invalid request: missing file parameter")
    source, target = _form_text(form, "source"), _form_text(form, "target")
    progress_id = form.get("progress_id")
    progress_id = progress_id if isinstance(progress_id, str) else None
    registry = ready_registry(state)
    data = await upload.read()
    doc = await asyncio.to_thread(
        parse_document, upload.filename, data, state.settings.max_file_chars, limit_name="NMT_MAX_FILE_CHARS"
    )
    if source == "auto":
        candidates = registry.source_languages(target)
        if not candidates:
            raise UnsupportedPair(f"no loaded model translates into {target}")
        source = detect_language(" ".join(doc.texts)[:DETECT_SAMPLE_CHARS], candidates)[0][0]
    route = registry.route(source, target)
    options = search_options(state.settings, None, 1, alignments=doc.aligned)
    translated: list[TextResult] = []
    total = len(doc.texts)
    try:
        for start in range(0, total, CHUNK_TEXTS):
            state.files.track(progress_id, start, total)
            chunk = doc.texts[start : start + CHUNK_TEXTS]
            results = await until_disconnected(request, state.engine.translate_route(route, chunk, options))
            translated.extend(results)
    finally:
        state.files.forget(progress_id)
    rendered = await asyncio.to_thread(doc.render, translated, target)
    key = state.files.put(doc.translated_name(target), rendered)
    return {"translatedFileUrl": str(request.url_for("download_file", key=quote(key, safe="")))}


@downloads.get("/translate_file/progress/{progress_id}")
async def file_progress(progress_id: str, state: StateDep) -> dict[str, int]:
    """Parts done and in all of a file being translated (404 before it starts and after it ends)."""
    found = state.files.progress.get(progress_id)
    if found is None:
        raise ApiError(404, "no file is being translated under this progress id")
    return {"done": found[0], "total": found[1]}


@downloads.get("/download_file/{key}", name="download_file", responses={404: {"description": "unknown or expired"}})
async def download_file(key: str, state: StateDep) -> FileResponse:
    """A translated file, as an attachment named like the upload with the target language added."""
    stored = state.files.get(key)
    if stored is None:
        raise ApiError(404, "no such file: translated files are kept for NMT_FILE_TTL_S seconds")
    return FileResponse(stored.path, filename=stored.name, media_type=format_for(stored.name).media_type)

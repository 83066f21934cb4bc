"""The translation page at `/` (static HTML, CSS and JavaScript from `service/web`) and its settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from nmt.documents import SUFFIXES
from service.deps import StateDep
from service.detect import LANGUAGE_NAMES

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

router = APIRouter(tags=["web page"])


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The translation page."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8")


@router.get("/frontend/settings")
async def frontend_settings(state: StateDep) -> dict[str, Any]:
    """What a front end needs to know (LibreTranslate's route, with this server's extra limits)."""
    s = state.settings
    return {
        "charLimit": s.max_chars,
        "frontendTimeout": 500,
        "keyRequired": bool(s.api_keys),
        "suggestions": False,
        "filesTranslation": True,
        "supportedFilesFormat": list(SUFFIXES),
        "language": {"source": {"code": "auto", "name": "Auto Detect"}, "target": {"code": "en", "name": "English"}},
        "beamSize": s.beam_size,
        "maxBeamSize": s.max_beam_size,
        "fileCharLimit": s.max_file_chars,
        "fileBytesLimit": s.max_body_bytes,
        "languageNames": LANGUAGE_NAMES,
    }


def mount_static(app: FastAPI) -> None:
    """Serve the page's scripts and styles under /static."""
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

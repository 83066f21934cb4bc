"""File translation (LibreTranslate's /translate_file and /download_file) and the documents it reads."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.nmt.test_documents import BAD_FILES
from tests.office import make_docx, make_epub, make_odp, make_odt, make_pptx


def v1(client: TestClient, texts: list[str]) -> list[str]:
    r = client.post("/v1/translate", json={"texts": texts, "model": "de-en"})
    return [t["text"] for t in r.json()["translations"]]


def upload(client: TestClient, name: str, data: bytes, **form: str):
    return client.post("/translate_file", files={"file": (name, data)}, data={"source": "de", "target": "en", **form})


def download(client: TestClient, response) -> tuple[str, str]:
    assert response.status_code == 200, response.text
    url = response.json()["translatedFileUrl"]
    got = client.get(url)
    assert got.status_code == 200, got.text
    return got.text, got.headers["content-disposition"]


def test_a_text_file_round_trip_keeps_its_lines(client: TestClient) -> None:
    lines = ["a b c", "", "d e f g", "  ", "h i"]
    body = "\r\n".join(lines) + "\r\n"
    text, disposition = download(client, upload(client, "notes.txt", body.encode()))
    expected = v1(client, ["a b c", "d e f g", "h i"])
    assert text == "\r\n".join([expected[0], "", expected[1], "  ", expected[2]]) + "\r\n"
    assert 'filename="notes.en.txt"' in disposition


def test_subtitles_keep_index_and_timing(client: TestClient) -> None:
    srt = "1\n00:00:01,000 --> 00:00:02,500\na b c\nd e\n\n2\n00:00:03,000 --> 00:00:04,000\nf g\n"
    text, _ = download(client, upload(client, "film.srt", srt.encode("utf-8-sig")))
    out = text.split("\n")
    assert out[:2] == ["1", "00:00:01,000 --> 00:00:02,500"]
    assert out[out.index("2") + 1] == "00:00:03,000 --> 00:00:04,000"
    first, second = v1(client, ["a b c d e", "f g"])
    cue = out[2 : out.index("")]
    assert " ".join(cue).split() == first.split() and len(cue) <= 2
    assert out[out.index("2") + 2] == second


def test_auto_source_and_a_non_ascii_name(client: TestClient) -> None:
    text, disposition = download(client, upload(client, "Bücher.txt", b"der Hund und die Frau\n", source="auto"))
    assert text == v1(client, ["der Hund und die Frau"])[0] + "\n"
    assert "B%C3%BCcher.en.txt" in disposition


SERVICE_ONLY = [
    ("a", b"text", "unsupported file type"),
    ("a.txt", b" \n\n", "is empty"),
    ("a.srt", b"just text, no cues\n", "no subtitle cues"),
    ("a.txt", b"x" * 2000, "NMT_MAX_FILE_CHARS=1000"),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD_FILES + SERVICE_ONLY)
def test_files_it_cannot_translate_get_400(
    make_client: Callable[..., TestClient], name: str, data: bytes, message: str
) -> None:
    client = make_client(max_file_chars=1000)
    r = upload(client, name, data)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_bad_uploads_get_400_or_413(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=4096)
    assert client.post("/translate_file", data={"source": "de", "target": "en"}).status_code == 400
    r = client.post("/translate_file", files={"file": ("a.txt", b"a b")}, data={"source": "de", "target": "cs"})
    assert r.status_code == 400 and "not supported" in r.json()["error"]
    r = client.post("/translate_file", files={"file": ("a.txt", b"a b")}, data={"target": "en"})
    assert r.status_code == 400 and "missing source" in r.json()["error"]
    r = client.post("/translate_file", json={"file": "a b", "source": "de", "target": "en"})
    assert r.status_code == 400 and "multipart" in r.json()["error"]
    r = upload(client, "big.txt", b"a b c\n" * 2000)
    assert r.status_code == 413


def test_downloads_expire_and_unknown_keys_are_404(make_client: Callable[..., TestClient]) -> None:
    client = make_client(file_ttl_s=0.3)
    r = upload(client, "a.txt", b"a b\n")
    url = r.json()["translatedFileUrl"]
    assert client.get(url).status_code == 200
    time.sleep(0.5)
    gone = client.get(url)
    assert gone.status_code == 404 and "NMT_FILE_TTL_S" in gone.json()["error"]
    for key in ("nothing", "0" * 32 + ".a.txt", "..%2F..%2Fetc%2Fpasswd"):
        assert client.get(f"/download_file/{key}").status_code == 404


def test_the_api_key_guards_file_translation(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_keys=["k1"])
    assert upload(client, "a.txt", b"a b\n").status_code == 401
    assert upload(client, "a.txt", b"a b\n", api_key="nope").status_code == 403
    assert upload(client, "a.txt", b"a b\n", api_key="k1").status_code == 200


def test_progress_is_reported_while_a_file_translates(client: TestClient) -> None:
    state = client.app.state.service  # type: ignore[attr-defined]
    seen: list[tuple[int, int]] = []
    track = state.files.track
    state.files.track = lambda pid, done, total: (seen.append((done, total)), track(pid, done, total))
    r = upload(client, "a.txt", ("a b c\n" * 150).encode(), progress_id="abcdef0123456789")
    assert r.status_code == 200
    assert seen == [(0, 150), (64, 150), (128, 150)]
    assert client.get("/translate_file/progress/abcdef0123456789").status_code == 404  # finished: forgotten


def test_frontend_settings_say_what_the_page_needs(make_client: Callable[..., TestClient]) -> None:
    s = make_client(max_chars=123, api_keys=["k"]).get("/frontend/settings").json()
    assert s["charLimit"] == 123 and s["keyRequired"] is True
    assert {".txt", ".srt", ".html", ".po", ".pot", ".xliff", ".docx", ".odt"} <= set(s["supportedFilesFormat"])
    assert s["languageNames"]["de"] == "German"


DATA = Path(__file__).resolve().parents[1] / "nmt" / "data"


def _binary(client: TestClient, response) -> tuple[bytes, str, str]:
    assert response.status_code == 200, response.text
    got = client.get(response.json()["translatedFileUrl"])
    assert got.status_code == 200, got.text
    return got.content, got.headers["content-disposition"], got.headers["content-type"]


def test_every_format_comes_back_in_its_structure(client: TestClient) -> None:
    import docx
    import lxml.html
    import polib
    from lxml import etree
    from odf.opendocument import load

    page = (DATA / "page.html").read_bytes()
    out, disposition, ctype = _binary(client, upload(client, "page.html", page))
    assert "page.en.html" in disposition and ctype.startswith("text/html")
    tags = [str(e.tag) for e in lxml.html.document_fromstring(out).iter()]
    assert sorted(tags) == sorted(str(e.tag) for e in lxml.html.document_fromstring(page).iter())

    out, disposition, _ = _binary(client, upload(client, "app.pot", (DATA / "app.pot").read_bytes()))
    assert "app.en.po" in disposition
    catalog = polib.pofile(out.decode())
    assert len(catalog) == len(polib.pofile((DATA / "app.pot").read_text())) and all(e.fuzzy for e in catalog)

    for name in ("strings.xlf", "strings.xliff"):
        out, _, ctype = _binary(client, upload(client, name, (DATA / name).read_bytes()))
        assert ctype.startswith("application/xliff+xml") and etree.fromstring(out).find(".//{*}target") is not None

    word = make_docx()
    out, disposition, ctype = _binary(client, upload(client, "Bericht.docx", word))
    assert "Bericht.en.docx" in disposition and "wordprocessingml" in ctype
    assert len(docx.Document(io.BytesIO(out)).paragraphs) == len(docx.Document(io.BytesIO(word)).paragraphs)

    out, _, ctype = _binary(client, upload(client, "Bericht.odt", make_odt()))
    assert ctype == "application/vnd.oasis.opendocument.text" and load(io.BytesIO(out)).text is not None

    from pptx import Presentation

    out, disposition, ctype = _binary(client, upload(client, "Vortrag.pptx", make_pptx()))
    assert "Vortrag.en.pptx" in disposition and "presentationml" in ctype
    assert len(Presentation(io.BytesIO(out)).slides) == 1
    out, _, ctype = _binary(client, upload(client, "Vortrag.odp", make_odp()))
    assert ctype == "application/vnd.oasis.opendocument.presentation" and load(io.BytesIO(out)).presentation
    out, disposition, ctype = _binary(client, upload(client, "Buch.epub", make_epub()))
    assert "Buch.en.epub" in disposition and ctype == "application/epub+zip"
    assert zipfile.ZipFile(io.BytesIO(out)).namelist()[0] == "mimetype"


def test_a_zip_bomb_is_refused_without_unpacking_it(client: TestClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b" " * (300 * 2**20))  # 300 MiB of spaces in about 300 KiB
    r = upload(client, "bomb.docx", buffer.getvalue())
    assert r.status_code == 400 and "zip bomb" in r.json()["error"]

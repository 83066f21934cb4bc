"""The LibreTranslate-compatible routes, in the three parameter encodings its clients use."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient


def v1(client: TestClient, texts: list[str], model: str = "de-en") -> list[str]:
    r = client.post("/v1/translate", json={"texts": texts, "model": model})
    return [t["text"] for t in r.json()["translations"]]


@pytest.mark.parametrize("encoding", ["json", "form", "query", "multipart"])
def test_translate_in_every_parameter_encoding(client: TestClient, encoding: str) -> None:
    params = {"q": "a b c", "source": "de", "target": "en", "format": "text"}
    if encoding == "json":
        r = client.post("/translate", json=params)
    elif encoding == "form":
        r = client.post("/translate", data=params)
    elif encoding == "multipart":
        r = client.post("/translate", files={k: (None, v) for k, v in params.items()})
    else:
        r = client.post("/translate", params=params)
    assert r.status_code == 200, r.text
    assert r.json() == {"translatedText": v1(client, ["a b c"])[0]}


def test_list_alternatives_and_auto_detection(client: TestClient) -> None:
    r = client.post("/translate", json={"q": ["a b", "c d e"], "source": "de", "target": "en", "alternatives": 2})
    body = r.json()
    assert body["translatedText"] == v1(client, ["a b", "c d e"])
    assert len(body["alternatives"]) == 2 and all(len(a) <= 2 for a in body["alternatives"])
    r = client.post("/translate", json={"q": "le chien et la femme", "source": "auto", "target": "en"})
    assert r.json()["detectedLanguage"]["language"] == "fr"
    assert r.json()["translatedText"] == v1(client, ["le chien et la femme"], "fr-en")[0]
    r = client.post("/translate", data={"q": ["der Hund", "le chien"], "source": "auto", "target": "en"})
    assert [d["language"] for d in r.json()["detectedLanguage"]] == ["de", "fr"]


def test_languages_and_detect(client: TestClient) -> None:
    assert client.get("/languages").json() == [
        {"code": "de", "name": "German", "targets": ["en"], "loaded": ["en"]},
        {"code": "fr", "name": "French", "targets": ["en"], "loaded": ["en"]},
    ]
    r = client.post("/detect", data={"q": "Ein Mann und eine Frau sitzen auf der Bank"})
    assert r.status_code == 200
    best = r.json()[0]
    assert best["language"] == "de" and 50 < best["confidence"] <= 100


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"source": "de", "target": "en"}, "missing q"),
        ({"q": "a", "target": "en"}, "missing source"),
        ({"q": "a", "source": "de"}, "missing target"),
        ({"q": "a", "source": "de", "target": "fr"}, "not supported"),
        ({"q": "a", "source": "de", "target": "en", "format": "xml"}, "format xml"),
        ({"q": "a", "source": "de", "target": "en", "format": "html", "alternatives": 1}, "format=html"),
        ({"q": "a", "source": "de", "target": "en", "alternatives": "many"}, "alternatives"),
        ({"q": "a", "source": "de", "target": "en", "alternatives": 50}, "beam"),
        ({"q": 5, "source": "de", "target": "en"}, "q must be"),
        ({"q": [], "source": "de", "target": "en"}, "q must be"),
    ],
)
def test_errors_are_400_with_an_error_field(client: TestClient, params: dict, message: str) -> None:
    r = client.post("/translate", json=params)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_bad_bodies(client: TestClient) -> None:
    r = client.post("/translate", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = client.post("/translate", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 400
    # form data with invalid UTF-8 is decoded with replacement characters, then translated
    r = client.post(
        "/translate",
        content=b"q=%ff%fe+a&source=de&target=en",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    r = client.post(
        "/translate", files={"q": ("x.txt", b"a b", "text/plain"), "source": (None, "de"), "target": (None, "en")}
    )
    assert r.status_code == 400


def test_api_key_parameter(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_keys=["secret"])
    params = {"q": "a", "source": "de", "target": "en"}
    assert client.post("/translate", json=params).status_code == 401
    assert client.post("/translate", json={**params, "api_key": "nope"}).status_code == 403
    assert client.post("/translate", json={**params, "api_key": "secret"}).status_code == 200
    assert client.post("/translate", data={**params, "api_key": "secret"}).status_code == 200
    assert client.post("/translate", params={**params, "api_key": "secret"}).status_code == 200
    assert client.post("/detect", json={"q": "a"}).status_code == 401


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/translate", '{"q": "\\ud800", "source": "de", "target": "en"}'),  # lone surrogates in every field
        ("/translate", '{"q": ["a", "\\udc00"], "source": "de", "target": "en"}'),
        ("/translate", '{"q": "a", "source": "\\ud800", "target": "en"}'),
        ("/translate", '{"q": "a", "source": "de", "target": "\\ud800"}'),
        ("/translate", '{"q": "a", "source": "de", "target": "en", "format": "\\ud800"}'),
        ("/translate", '{"q": "a", "source": "de", "target": "en", "api_key": "\\ud800"}'),
        ("/translate", '{"q": "a", "source": "de", "target": "en", "alternatives": 1e999}'),
        ("/translate", '{"q": "a", "source": "de", "target": "en", "alternatives": -1e999}'),
        ("/translate", "[" * 100_000 + "]" * 100_000),
        ("/detect", "[" * 100_000 + "]" * 100_000),
        ("/detect", '{"q": "\\ud800"}'),
        ("/detect", '{"q": {"a": 1}}'),
    ],
)
def test_hostile_parameters_get_a_json_400_never_a_500(client: TestClient, path: str, raw: str) -> None:
    r = client.post(path, content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert isinstance(r.json()["error"], str)


def test_surrogates_in_the_query_string_and_in_a_key(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_keys=["secret"])
    r = client.post("/translate?q=a&source=de&target=en&api_key=%ED%A0%80")  # UTF-8 bytes of a surrogate
    assert r.status_code == 403 and "error" in r.json()
    raw = b'{"q": "a", "source": "de", "target": "en", "api_key": "\\ud800"}'
    r = client.post("/translate", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 403


def _tags(html: str) -> list[str]:
    import lxml.html

    return sorted(str(e.tag) for e in lxml.html.fragment_fromstring(html, create_parent="div").iter())


def test_format_html_keeps_the_markup_of_each_text(client: TestClient) -> None:
    pages = ['a <b>b c</b> d <a href="/x?y=1" title="e f">g</a>', "<p>a b</p><p>c <i>d</i></p>", "plain a b"]
    r = client.post("/translate", json={"q": pages, "source": "de", "target": "en", "format": "html"})
    assert r.status_code == 200, r.text
    out = r.json()["translatedText"]
    assert len(out) == 3
    for page, translated in zip(pages, out, strict=True):
        assert _tags(translated) == _tags(page)
    assert 'href="/x?y=1"' in out[0]
    one = client.post("/translate", data={"q": pages[0], "source": "auto", "target": "en", "format": "html"}).json()
    assert isinstance(one["translatedText"], str) and one["detectedLanguage"]["language"] in ("de", "fr")


def test_format_html_in_our_own_api(client: TestClient) -> None:
    r = client.post("/v1/translate", json={"texts": ["<p>a <b>b</b></p>", ""], "model": "de-en", "format": "html"})
    assert r.status_code == 200, r.text
    texts = [t["text"] for t in r.json()["translations"]]
    assert _tags(texts[0]) == _tags("<p>a <b>b</b></p>") and texts[1] == ""
    bad = client.post("/v1/translate", json={"texts": ["<b>a</b>"], "target": "en", "format": "html", "n_best": 2})
    assert bad.status_code == 422 and "format html" in bad.text

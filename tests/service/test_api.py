"""The service's own API, health routes, limits and errors, against the ASGI app."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch
from fastapi.testclient import TestClient

from nmt.precision import auto_precision
from nmt.translator import Translator
from tests.synthetic import tiny_config

TEXTS = ["a b c d", "e f", "g h i j k l", ""]
_CONFIG = tiny_config(16)  # the architecture of the conftest's models (an LSTM)


def test_translate_matches_the_library_in_input_order(client: TestClient, models_dir) -> None:
    r = client.post("/v1/translate", json={"texts": TEXTS, "model": "de-en", "return_scores": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "de-en"
    expected = Translator.from_dir(models_dir / "de-en", device="cpu").translate(TEXTS)
    assert [t["text"] for t in body["translations"]] == [e.text for e in expected]
    for got, want in zip(body["translations"][:3], expected, strict=False):
        assert got["score"] == pytest.approx(want.score, abs=1e-4)
    assert body["translations"][3]["text"] == ""


def test_int8_serves_the_same_answers_alone_or_batched(make_client: Callable[..., TestClient], models_dir) -> None:
    """NMT_PRECISION=int8: requests batched together get the answers int8 gives each alone."""
    client = make_client(precision="int8")
    body = client.post("/v1/translate", json={"texts": TEXTS, "model": "de-en", "return_scores": True}).json()
    alone = Translator.from_dir(models_dir / "de-en", device="cpu", precision="int8")
    expected = [alone.translate([t])[0] for t in TEXTS]
    assert [(t["text"], t["score"]) for t in body["translations"]] == [(e.text, e.score) for e in expected]


def test_sentences_and_line_breaks_are_kept(client: TestClient) -> None:
    one = [
        t["text"]
        for t in client.post("/v1/translate", json={"texts": ["a bc.", "De f!"], "model": "de-en"}).json()[
            "translations"
        ]
    ]
    r = client.post("/v1/translate", json={"texts": ["a bc. De f!\n\nDe f!"], "model": "de-en"})
    assert r.json()["translations"][0]["text"] == f"{one[0]} {one[1]}\n\n{one[1]}"


def test_n_best_scores_and_alignments(client: TestClient) -> None:
    r = client.post(
        "/v1/translate",
        json={
            "texts": ["a b c"],
            "model": "fr-en",
            "beam_size": 4,
            "n_best": 3,
            "return_scores": True,
            "return_alignments": True,
        },
    )
    assert r.status_code == 200, r.text
    t = r.json()["translations"][0]
    assert len(t["alternatives"]) == 2
    scores = [t["score"]] + [a["score"] for a in t["alternatives"]]
    assert scores == sorted(scores, reverse=True)
    (align,) = t["alignment"]
    assert len(align["weights"]) == len(align["target_tokens"])
    assert all(len(row) == len(align["source_tokens"]) for row in align["weights"])
    assert all(abs(sum(row) - 1) < 1e-3 for row in align["weights"])


def test_models_health_ready_and_metrics(client: TestClient) -> None:
    models = client.get("/v1/models").json()["models"]
    assert {m["id"] for m in models} == {"de-en", "fr-en"}
    assert all(m["device"] == "cpu" and m["parameters"] > 0 for m in models)
    # what NMT_PRECISION=auto picked, and whether a shortlist is searched (these tiny models have none)
    assert {(m["precision"], m["shortlist"]) for m in models} == {(auto_precision(torch.device("cpu"), _CONFIG), False)}
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    client.post("/v1/translate", json={"texts": ["a b"], "model": "de-en"})
    text = client.get("/metrics").text
    for name in (
        "nmt_http_requests_total",
        "nmt_http_request_seconds_bucket",
        "nmt_queue_sentences",
        "nmt_batch_sentences_bucket",
        "nmt_translated_sentences_total",
        "nmt_target_tokens_total",
    ):
        assert name in text
    assert 'route="/v1/translate"' in text and 'status="200"' in text
    precision = auto_precision(torch.device("cpu"), _CONFIG)
    assert f'nmt_model_info{{device="cpu",model="de-en",precision="{precision}",shortlist="no"}} 1.0' in text


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/translate",
        "/v1/models",
        "/healthz",
        "/readyz",
        "/metrics",
        "/translate",
        "/languages",
        "/detect",
    ):
        assert path in paths
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"texts": []}, 422),
        ({"texts": "a b"}, 422),
        ({"texts": [1, 2]}, 422),
        ({"texts": ["a"], "model": "xx-yy"}, 404),
        ({"texts": ["a"]}, 422),  # two models loaded: the model must be named
        ({"texts": ["a"], "model": "de-en", "beam_size": 0}, 422),
        ({"texts": ["a"], "model": "de-en", "beam_size": 100}, 422),
        ({"texts": ["a"], "model": "de-en", "beam_size": 2, "n_best": 3}, 422),
        ({"texts": ["a"], "model": "de-en", "unknown": 1}, 422),
        ({"texts": ["a"] * 129, "model": "de-en"}, 422),
        ({"texts": ["a " * 3000], "model": "de-en"}, 422),
    ],
)
def test_bad_requests_get_a_json_4xx(client: TestClient, body: object, status: int) -> None:
    r = client.post("/v1/translate", json=body)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str)


def test_malformed_and_odd_bodies(client: TestClient) -> None:
    r = client.post("/v1/translate", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = client.post("/v1/translate", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    r = client.post("/v1/translate", json={"texts": ["\x00\x07 a\u202eb 😀 " + "x" * 500], "model": "de-en"})
    assert r.status_code == 200
    assert client.get("/nowhere").status_code == 404 and "error" in client.get("/nowhere").json()
    assert client.get("/v1/translate").status_code == 405


def test_body_limit(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=2048)
    r = client.post("/v1/translate", json={"texts": ["a " * 2000], "model": "de-en"})
    assert r.status_code == 413 and "NMT_MAX_BODY_BYTES" in r.json()["error"]

    def chunks():
        yield b'{"texts": ["'
        yield b"a " * 2000
        yield b'"], "model": "de-en"}'

    r = client.post("/v1/translate", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_api_keys(make_client: Callable[..., TestClient], header: str) -> None:
    client = make_client(api_keys=["k1", "k2"])
    body = {"texts": ["a"], "model": "de-en"}
    assert client.post("/v1/translate", json=body).status_code == 401
    value = "Bearer wrong" if header == "Authorization" else "wrong"
    assert client.post("/v1/translate", json=body, headers={header: value}).status_code == 403
    value = "Bearer k2" if header == "Authorization" else "k2"
    assert client.post("/v1/translate", json=body, headers={header: value}).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_the_search_budget_defaults_to_the_device_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset NMT_BATCH_TOKENS means the budget of the device models run on; a set one is kept as given."""
    from nmt.batching import BATCH_TOKENS
    from service.settings import load_settings

    monkeypatch.setenv("NMT_DEVICE", "cpu")
    assert load_settings().search_tokens == BATCH_TOKENS["cpu"]
    monkeypatch.setenv("NMT_DEVICE", "cuda")
    assert load_settings().search_tokens == BATCH_TOKENS["cuda"]
    monkeypatch.setenv("NMT_BATCH_TOKENS", "1000")
    assert load_settings().search_tokens == 1000


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.settings import SettingsError, load_settings

    monkeypatch.setenv("NMT_API_KEYS", "a, b")
    monkeypatch.setenv("NMT_MAX_WAIT_MS", "7.5")
    s = load_settings()
    assert s.api_keys == ["a", "b"] and s.max_wait_ms == 7.5
    monkeypatch.setenv("NMT_QUANTIZE", "int4")
    with pytest.raises(SettingsError, match="NMT_QUANTIZE"):
        load_settings()
    monkeypatch.setenv("NMT_QUANTIZE", "int8")
    assert load_settings().precision == "int8"  # the variable of earlier versions still means what it meant
    monkeypatch.setenv("NMT_PRECISION", "fp32")
    assert load_settings().precision == "fp32"  # the new one wins
    monkeypatch.setenv("NMT_PRECISION", "int4")
    with pytest.raises(SettingsError, match="NMT_PRECISION"):
        load_settings()
    monkeypatch.setenv("NMT_PRECISION", "auto")
    monkeypatch.setenv("NMT_BEAM_SIZE", "zero")
    with pytest.raises(SettingsError, match="NMT_BEAM_SIZE"):
        load_settings()


def test_not_ready_while_loading_and_failed_load(make_client: Callable[..., TestClient], tmp_path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    client = make_client(ready=False, models_dir=tmp_path)
    for _ in range(200):
        r = client.get("/readyz")
        if r.json()["status"] == "failed":
            break
    assert r.status_code == 503 and r.json()["status"] == "failed"
    r = client.post("/v1/translate", json={"texts": ["a"]})
    assert r.status_code == 503 and "failed to load" in r.json()["error"]
    assert client.get("/healthz").status_code == 200


LONG = [" ".join("abcdefghijkl"[(i + j) % 12] for j in range(150)) for i in range(100)]


def test_deadline_gives_504(make_client: Callable[..., TestClient]) -> None:
    client = make_client(request_timeout_s=0.05)
    r = client.post("/v1/translate", json={"texts": LONG, "model": "de-en", "beam_size": 8})
    assert r.status_code in (503, 504) and "deadline" in r.json()["error"]
    batcher = client.app.state.service.batcher  # type: ignore[attr-defined]
    assert batcher.queued == 0
    end = time.monotonic() + 5
    while batcher.running:  # its running sentences leave at the next step
        assert time.monotonic() < end, "the expired request's sentences kept running"
        time.sleep(0.01)


def test_full_queue_gives_503_with_retry_after(make_client: Callable[..., TestClient]) -> None:
    import threading

    client = make_client(queue_limit=10, batch_tokens=256, request_timeout_s=300)
    first: dict[str, int] = {}
    worker = threading.Thread(
        target=lambda: first.update(
            status=client.post("/v1/translate", json={"texts": LONG[:30], "model": "de-en", "beam_size": 2}).status_code
        )
    )
    worker.start()
    state = client.app.state.service  # type: ignore[attr-defined]
    while state.batcher.queued == 0:
        pass
    r = client.post("/v1/translate", json={"texts": ["a b"], "model": "de-en"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    worker.join()
    assert first["status"] == 200


def test_cors_origins(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origins=["https://app.example"])
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    r = client.options("/v1/translate", headers=preflight)
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    r = client.options("/v1/translate", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    "raw",
    [
        '{"texts": ["\\ud800"], "model": "de-en"}',  # a lone surrogate, written as a JSON escape
        '{"texts": ["ok", "a \\udfff b"], "model": "de-en"}',
        '{"texts": ["a"], "model": "\\ud800"}',
        '{"texts": ["a"], "model": "de-en", "api_key": "\\ud800"}',
        '{"texts": ["a"], "model": "de-en", "return_alignments": 0}',  # not a boolean
        '{"texts": ["a"], "model": "de-en", "beam_size": 1e999}',
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_hostile_bodies_get_a_json_4xx_never_a_500(client: TestClient, raw: str) -> None:
    r = client.post("/v1/translate", content=raw.encode(), headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert isinstance(r.json()["error"], str)


def test_api_key_in_query_or_body_and_authentication_before_validation(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(api_keys=["secret"])
    body = {"texts": ["a"], "model": "de-en"}
    assert client.post("/v1/translate", json=body, params={"api_key": "secret"}).status_code == 200
    assert client.post("/v1/translate", json={**body, "api_key": "secret"}).status_code == 200
    assert client.post("/v1/translate", json={**body, "api_key": "nope"}).status_code == 403
    r = client.post("/v1/translate", json={})  # invalid, and no key: the schema is not for strangers
    assert r.status_code == 401 and "texts" not in r.json()["error"]
    r = client.post("/v1/translate", content=b'{"api_key": "\\ud800"}', headers={"content-type": "application/json"})
    assert r.status_code == 403


def test_health_routes_answer_head(client: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        r = client.head(path)
        assert r.status_code == 200 and r.content == b""


def test_openapi_describes_parameters_and_errors(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "400" in paths["/v1/translate"]["post"]["responses"]
    for path, names in (("/translate", {"q", "source", "target", "format", "alternatives", "api_key"}),
                        ("/detect", {"q", "api_key"})):  # fmt: skip
        operation = paths[path]["post"]
        assert {p["name"] for p in operation["parameters"]} == names
        assert set(operation["requestBody"]["content"]) >= {"application/json", "application/x-www-form-urlencoded"}


def test_a_worker_that_fails_is_restarted_and_readiness_says_so(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    state = client.app.state.service  # type: ignore[attr-defined]
    batcher = state.batcher
    failed = 0
    real_step = batcher._step

    async def broken_step(loop):  # type: ignore[no-untyped-def]
        nonlocal failed
        if not failed and batcher.running:  # a request is in the running search
            failed += 1
            raise RuntimeError("a bug in the worker")
        await real_step(loop)

    batcher._step = broken_step
    batcher.restart_delay_s = 0.5  # long enough to watch readiness turn false
    body = {"texts": ["a b"], "model": "de-en"}
    r = client.post("/v1/translate", json=body)
    assert r.status_code == 500 and "server log" in r.json()["error"]
    assert client.get("/readyz").status_code == 503  # cannot translate now: the worker is restarting
    end = time.monotonic() + 5
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < end, "the worker did not come back"
        time.sleep(0.02)
    assert client.post("/v1/translate", json=body).status_code == 200
    assert "nmt_worker_restarts_total 1.0" in client.get("/metrics").text

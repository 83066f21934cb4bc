"""Models load on first use, leave least recently used under a memory budget, and come and go on reload."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

Client = Callable[..., TestClient]


def _models(client: TestClient) -> dict[str, dict[str, object]]:
    return {m["id"]: m for m in client.get("/v1/models").json()["models"]}


def _translate(client: TestClient, model: str, text: str = "a b c") -> str:
    r = client.post("/v1/translate", json={"texts": [text], "model": model})
    assert r.status_code == 200, r.text
    return r.json()["translations"][0]["text"]  # type: ignore[no-any-return]


def _loads(client: TestClient, model: str) -> float:
    found = re.search(rf'nmt_model_loads_total{{model="{model}"}} ([\d.]+)', client.get("/metrics").text)
    return float(found.group(1)) if found else 0.0


def test_without_preloading_every_model_is_listed_and_loads_on_first_use(make_client: Client) -> None:
    client = make_client(preload=False)
    models = _models(client)
    assert {i: m["loaded"] for i, m in models.items()} == {"de-en": False, "fr-en": False}
    assert all(m["parameters"] > 0 and "precision" not in m for m in models.values())
    languages = client.get("/languages").json()
    assert all(lang["loaded"] == [] and lang["targets"] == ["en"] for lang in languages)
    _translate(client, "de-en")
    models = _models(client)
    assert models["de-en"]["loaded"] and not models["fr-en"]["loaded"]
    assert models["de-en"]["memory_mb"] > 0 and models["de-en"]["device"] == "cpu"
    assert [lang["loaded"] for lang in client.get("/languages").json()] == [["en"], []]


def test_concurrent_first_requests_load_a_model_once_and_all_get_its_answer(
    make_client: Client, client: TestClient
) -> None:
    lazy = make_client(preload=False)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _translate(lazy, "fr-en", "d e f"), range(8)))
    assert answers == [_translate(client, "fr-en", "d e f")] * 8
    assert _loads(lazy, "fr-en") == 1


def test_under_a_memory_budget_the_least_recently_used_model_is_unloaded(
    make_client: Client, client: TestClient
) -> None:
    """A budget smaller than two models: each request loads its model, unloading the other; answers unchanged."""
    expected = {m: _translate(client, m) for m in ("de-en", "fr-en")}
    tight = make_client(max_model_memory_mb=0.01)
    for model in ("de-en", "fr-en", "de-en", "fr-en"):
        assert _translate(tight, model) == expected[model]
        loaded = [i for i, m in _models(tight).items() if m["loaded"]]
        assert loaded == [model]
    body = tight.get("/v1/models").json()
    assert body["memory_budget_mb"] == pytest.approx(0.01)
    assert _loads(tight, "de-en") >= 2 and "nmt_model_unloads_total" in tight.get("/metrics").text


def _serving_de_en_alone(make_client: Client, models_dir: Path, root: Path) -> TestClient:
    """A client of a service started on a folder holding only a copy of the de-en model."""
    shutil.copytree(models_dir / "de-en", root / "de-en")
    return make_client(models_dir=root)


def test_a_model_directory_added_or_removed_while_serving_is_found_by_a_reload(
    make_client: Client, models_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    client = _serving_de_en_alone(make_client, models_dir, root)
    assert list(_models(client)) == ["de-en"]
    assert client.post("/v1/translate", json={"texts": ["a"], "model": "fr-en"}).status_code == 404
    shutil.copytree(models_dir / "fr-en", root / "fr-en")
    reload = client.post("/v1/models/reload")
    assert reload.status_code == 200, reload.text
    assert reload.json() == {"added": ["fr-en"], "removed": [], "models": ["de-en", "fr-en"]}
    _translate(client, "fr-en")
    shutil.rmtree(root / "de-en")
    assert client.post("/v1/models/reload").json()["removed"] == ["de-en"]
    assert client.post("/v1/translate", json={"texts": ["a"], "model": "de-en"}).status_code == 404
    assert client.post("/v1/models/reload").json() == {"added": [], "removed": [], "models": ["fr-en"]}


def test_a_broken_model_added_later_gets_503_naming_it_and_the_others_go_on(
    make_client: Client, models_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    client = _serving_de_en_alone(make_client, models_dir, root)
    shutil.copytree(models_dir / "fr-en", root / "fr-en")
    (root / "fr-en" / "model.safetensors").write_bytes(b"not safetensors")
    assert client.post("/v1/models/reload").status_code == 200
    for _ in range(2):  # the failure is remembered: no reload attempt per request
        r = client.post("/v1/translate", json={"texts": ["a"], "model": "fr-en"})
        assert r.status_code == 503 and "fr-en" in r.json()["error"] and "Retry-After" in r.headers
    _translate(client, "de-en")
    assert client.get("/readyz").status_code == 200
    # an invalid config.json: the reload is refused, the models served stay as they were
    (root / "bad").mkdir()
    (root / "bad" / "config.json").write_text(json.dumps({"format_version": "x"}))
    r = client.post("/v1/models/reload")
    assert r.status_code == 422 and "format_version" in r.json()["error"]
    assert set(_models(client)) == {"de-en", "fr-en"}
    _translate(client, "de-en")


def test_reloading_needs_the_api_key_where_keys_are_set(make_client: Client) -> None:
    client = make_client(api_keys=["k1"])
    assert client.post("/v1/models/reload").status_code == 401
    assert client.post("/v1/models/reload", headers={"Authorization": "Bearer k1"}).status_code == 200

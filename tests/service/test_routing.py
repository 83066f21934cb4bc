"""Language pairs: a request names source and target, the service finds a model or a pivot chain."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from nmt.model import build_model
from nmt.model_dir import ModelInfo, save_model_dir
from nmt.tokenizer import Tokenizer
from service.app import create_app
from service.settings import Settings
from tests.service.conftest import wait_ready
from tests.synthetic import tiny_config


@pytest.fixture(scope="module")
def pivot_client(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, tokenizer: Tokenizer) -> TestClient:
    """de-en and fr-en (the shared tiny models) plus en-de: fr reaches de only through en."""
    root = tmp_path_factory.mktemp("pivot_models")
    for name in ("de-en", "fr-en"):
        (root / name).symlink_to(models_dir / name)
    torch.manual_seed(2)
    model = build_model(tiny_config(tokenizer.src_vocab_size)).eval()
    save_model_dir(root / "en-de", model, ModelInfo(model.config, "en", "de"), tokenizer)
    client = TestClient(create_app(Settings(models_dir=root, device="cpu", max_wait_ms=2.0)))
    with client:
        wait_ready(client)
        yield client


def texts_of(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [t["text"] for t in r.json()["translations"]]


def test_languages_lists_every_reachable_pair(pivot_client: TestClient) -> None:
    assert pivot_client.get("/languages").json() == [
        {"code": "de", "name": "German", "targets": ["en"], "loaded": ["en"]},
        {"code": "en", "name": "English", "targets": ["de"], "loaded": ["de"]},
        {"code": "fr", "name": "French", "targets": ["de", "en"], "loaded": ["de", "en"]},
    ]


def test_source_and_target_pick_the_model(pivot_client: TestClient) -> None:
    by_model = pivot_client.post("/v1/translate", json={"texts": ["a b c"], "model": "en-de"})
    by_pair = pivot_client.post("/v1/translate", json={"texts": ["a b c"], "source": "en", "target": "de"})
    assert texts_of(by_pair) == texts_of(by_model) and by_pair.json()["model"] == "en-de"


def test_a_pivot_chains_two_models_through_english(pivot_client: TestClient) -> None:
    texts = ["a b c", "d e"]
    english = texts_of(pivot_client.post("/v1/translate", json={"texts": texts, "model": "fr-en"}))
    german = texts_of(pivot_client.post("/v1/translate", json={"texts": english, "model": "en-de"}))
    r = pivot_client.post(
        "/v1/translate", json={"texts": texts, "source": "fr", "target": "de", "return_scores": True, "n_best": 2}
    )
    assert texts_of(r) == german
    assert r.json()["model"] == "fr-en+en-de"
    assert all(len(t["alternatives"]) <= 2 for t in r.json()["translations"])
    libre = pivot_client.post("/translate", json={"q": texts, "source": "fr", "target": "de"})
    assert libre.json()["translatedText"] == german
    # the attention of two models relates pieces of two vocabularies: none is given for a chain
    r = pivot_client.post(
        "/v1/translate", json={"texts": texts, "source": "fr", "target": "de", "return_alignments": True}
    )
    assert all("alignment" not in t for t in r.json()["translations"])


def test_auto_source_detects_each_text(pivot_client: TestClient) -> None:
    r = pivot_client.post(
        "/v1/translate",
        json={"texts": ["le chien et la femme", "the dog and the woman"], "source": "auto", "target": "de"},
    )
    assert r.status_code == 200, r.text
    found = [t["detected_language"]["language"] for t in r.json()["translations"]]
    assert found == ["fr", "en"]
    assert r.json()["model"] == "en-de,fr-en+en-de"


@pytest.mark.parametrize("body", [{"target": ""}, {"source": "", "target": "de"}, {"target": "x" * 33}])
def test_empty_or_overlong_language_codes_are_422(pivot_client: TestClient, body: dict) -> None:
    r = pivot_client.post("/v1/translate", json={"texts": ["a"], **body})
    assert r.status_code == 422 and ("source" in r.json()["error"] or "target" in r.json()["error"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"source": "de", "target": "cs"}, "de->cs is not supported"),
        ({"source": "de", "target": "de"}, "de->de is not supported"),
        ({"source": "de"}, "without target"),
        ({"source": "de", "target": "en", "model": "fr-en"}, "model fr-en translates fr->en"),
        ({"source": "auto", "target": "cs"}, "no loaded model translates into cs"),
    ],
)
def test_pairs_nobody_serves_get_422_naming_what_is_available(
    pivot_client: TestClient, body: dict, message: str
) -> None:
    r = pivot_client.post("/v1/translate", json={"texts": ["a"], **body})
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]
    if "target" in body and "model" not in body:  # LibreTranslate's API answers 400 for the same pairs
        libre = pivot_client.post("/translate", json={"q": "a", **body})
        assert libre.status_code == 400 and message in libre.json()["error"]

"""The translation page at `/`, in a real headless Chromium against a real server.

The server serves the shipped German->English model and a tiny random English->German one
(so that swapping has somewhere to go). Skipped, with a message, where no browser is installed.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from nmt.model import build_model
from nmt.model_dir import ModelInfo, save_model_dir
from nmt.tokenizer import Tokenizer
from tests.office import make_docx
from tests.service.browser import chromium, wait_for
from tests.service.server import Server, running
from tests.synthetic import tiny_config

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "de-en"
GERMAN = "Ein Mann fährt mit dem Fahrrad."


@pytest.fixture(scope="module")
def page_models(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer) -> Path:
    root = tmp_path_factory.mktemp("page_models")
    (root / "de-en").symlink_to(SHIPPED)
    torch.manual_seed(3)
    model = build_model(tiny_config(tokenizer.src_vocab_size)).eval()
    save_model_dir(root / "en-de", model, ModelInfo(model.config, "en", "de"), tokenizer)
    return root


@pytest.fixture(scope="module")
def server(page_models: Path) -> Iterator[Server]:
    with running(page_models, NMT_MAX_CHARS="300", NMT_BEAM_SIZE="2") as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = chromium()
    yield driver
    driver.quit()


def by_id(driver: Any, element_id: str) -> Any:
    return driver.find_element("id", element_id)


def open_page(driver: Any, url: str) -> None:
    driver.get(url + "/")
    wait_for(
        lambda: driver.find_element("tag name", "body").get_attribute("data-ready") == "true", message="page ready"
    )
    driver.get_log("browser")  # start each test with an empty console


def type_text(driver: Any, text: str) -> None:
    box = by_id(driver, "source-text")
    box.clear()
    box.send_keys(text)


def translation(driver: Any) -> str:
    return str(by_id(driver, "target-text").get_attribute("value"))


def severe_console(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_the_page_loads_offline_with_no_console_errors(browser: Any, server: Server) -> None:
    browser.get(server.url + "/")
    wait_for(lambda: browser.find_element("tag name", "body").get_attribute("data-ready") == "true")
    assert severe_console(browser) == []
    assert browser.title.startswith("NMT")
    sources = [o.get_attribute("value") for o in by_id(browser, "source").find_elements("tag name", "option")]
    assert sources == ["auto", "de", "en"]
    summary = by_id(browser, "model-summary").text
    assert "image captions" in summary
    assert re.search(r"Model: German→English \(BLEU \d+\.\d on test 2016 flickr", summary), summary
    # nothing comes from another host: every script, style and image is served by the app itself
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(server.url) for r in resources)
    # every control has a name a screen reader can announce
    for element_id in ("source", "target", "beam", "alternatives", "source-text", "target-text", "swap", "file"):
        el = by_id(browser, element_id)
        assert el.accessible_name.strip(), element_id


def test_typing_german_shows_english_and_its_heat_map(browser: Any, server: Server) -> None:
    open_page(browser, server.url)
    type_text(browser, GERMAN)
    wait_for(lambda: "bike" in translation(browser) or "bicycle" in translation(browser), message="English text")
    api = httpx.post(
        server.url + "/v1/translate",
        json={"texts": [GERMAN], "model": "de-en", "beam_size": 2, "return_alignments": True},
    ).json()["translations"][0]
    assert translation(browser) == api["text"]
    alignment = api["alignment"][0]
    table = wait_for(lambda: browser.find_elements("css selector", "#heatmaps table.heatmap"))[0]
    sources = table.find_elements("css selector", "th.src")
    targets = table.find_elements("css selector", "th.tgt")
    assert [s.text for s in sources] == alignment["source_tokens"]
    assert len(targets) == len(alignment["target_tokens"])
    assert len(table.find_elements("tag name", "td")) == len(alignment["source_tokens"]) * len(
        alignment["target_tokens"]
    )
    assert by_id(browser, "char-count").text.startswith(f"{len(GERMAN)} / 300")
    assert severe_console(browser) == []


def test_hover_highlights_both_ways(browser: Any, server: Server) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    open_page(browser, server.url)
    type_text(browser, GERMAN)
    table = wait_for(lambda: browser.find_elements("css selector", "#heatmaps table.heatmap"))[0]
    weights = httpx.post(
        server.url + "/v1/translate",
        json={"texts": [GERMAN], "model": "de-en", "beam_size": 2, "return_alignments": True},
    ).json()["translations"][0]["alignment"][0]["weights"]
    first_target = table.find_elements("css selector", "th.tgt")[0]
    ActionChains(browser).move_to_element(first_target).perform()
    lit = [int(th.get_attribute("data-col")) for th in table.find_elements("css selector", "th.src.lit")]
    strongest = max(range(len(weights[0])), key=lambda s: weights[0][s])
    assert strongest in lit  # the source piece the first target piece looked at most
    assert "active" in first_target.get_attribute("class")
    source = table.find_elements("css selector", "th.src")[strongest]
    ActionChains(browser).move_to_element(source).perform()
    lit_rows = [int(th.get_attribute("data-row")) for th in table.find_elements("css selector", "th.tgt.lit")]
    assert 0 in lit_rows and not table.find_elements("css selector", "th.src.lit")


def test_detect_then_swap(browser: Any, server: Server) -> None:
    from selenium.webdriver.support.ui import Select

    open_page(browser, server.url)
    Select(by_id(browser, "source")).select_by_value("auto")
    type_text(browser, "Eine Frau und ein Hund sitzen auf der Bank.")
    wait_for(lambda: by_id(browser, "detected").text.startswith("Detected: German"), message="detected German")
    english = wait_for(lambda: translation(browser))
    by_id(browser, "swap").click()
    wait_for(lambda: by_id(browser, "source").get_attribute("value") == "en", message="swapped source")
    assert by_id(browser, "target").get_attribute("value") == "de"
    assert by_id(browser, "source-text").get_attribute("value") == english
    wait_for(lambda: translation(browser) and translation(browser) != english, message="translated back")


def test_a_file_round_trip(browser: Any, server: Server, tmp_path: Path) -> None:
    open_page(browser, server.url)
    lines = ["Zwei Hunde spielen im Schnee.", "", "Ein Kind isst ein Eis."]
    path = tmp_path / "Beispiel.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    by_id(browser, "file").send_keys(str(path))
    by_id(browser, "file-go").click()
    link = wait_for(lambda: (a := by_id(browser, "file-download")).is_displayed() and a, message="download link")
    assert "Beispiel.en.txt" in link.text
    got = httpx.get(link.get_attribute("href")).text
    expected = httpx.post(server.url + "/v1/translate", json={"texts": [lines[0], lines[2]], "model": "de-en"}).json()
    assert got == "\n".join([expected["translations"][0]["text"], "", expected["translations"][1]["text"]]) + "\n"
    assert by_id(browser, "file-progress").get_attribute("value") == by_id(browser, "file-progress").get_attribute(
        "max"
    )


def test_a_word_document_uploaded_on_the_page_comes_back_translated(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    import docx

    open_page(browser, server.url)
    path = tmp_path / "Bericht.docx"
    path.write_bytes(make_docx())
    by_id(browser, "file").send_keys(str(path))
    by_id(browser, "file-go").click()
    link = wait_for(lambda: (a := by_id(browser, "file-download")).is_displayed() and a, message="download link")
    assert "Bericht.en.docx" in link.text
    got = docx.Document(io.BytesIO(httpx.get(link.get_attribute("href")).content))
    source = docx.Document(io.BytesIO(path.read_bytes()))
    assert len(got.paragraphs) == len(source.paragraphs)
    assert got.paragraphs[0].text and got.paragraphs[0].text != source.paragraphs[0].text  # translated
    assert any(r.bold for r in got.paragraphs[1].runs) and any(r.italic for r in got.paragraphs[1].runs)


def test_an_over_long_text_shows_its_error(browser: Any, server: Server) -> None:
    open_page(browser, server.url)
    type_text(browser, "Ein Hund. " * 31)
    error = wait_for(lambda: (e := by_id(browser, "error")).is_displayed() and e, message="error shown")
    assert "at most 300" in error.text
    assert "over" in by_id(browser, "char-count").get_attribute("class")


def test_errors_from_the_server_are_shown_in_words(browser: Any, page_models: Path) -> None:
    with running(page_models, NMT_API_KEYS="secret") as keyed:
        open_page(browser, keyed.url)
        assert by_id(browser, "key-box").is_displayed()
        type_text(browser, GERMAN)
        error = wait_for(lambda: (e := by_id(browser, "error")).is_displayed() and e, message="401 shown")
        assert "needs an API key" in error.text
        by_id(browser, "api-key").send_keys("secret")
        type_text(browser, GERMAN + " ")
        wait_for(lambda: "bike" in translation(browser) or "bicycle" in translation(browser), message="translated")
        assert not by_id(browser, "error").is_displayed()


def test_phone_width_has_no_horizontal_scrolling(server: Server) -> None:
    phone = chromium(390, 844)
    try:
        open_page(phone, server.url)
        type_text(phone, GERMAN)
        wait_for(lambda: translation(phone), message="translation")
        width = phone.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert width <= 0
        boxes = [by_id(phone, i).rect for i in ("source-text", "target-text")]
        assert boxes[1]["y"] > boxes[0]["y"]  # the panes stack
    finally:
        phone.quit()

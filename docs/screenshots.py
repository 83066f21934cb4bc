"""Screenshots of the translation page for the docs and the README (desktop and phone width).

Run from the repository root with the browser tests' Chromium installed:
    .venv/bin/python docs/screenshots.py
It serves models/ on a free port, types a German sentence, points at a target piece of the
heat-map, and writes docs/images/page-desktop.png and docs/images/page-phone.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402

from tests.service.browser import chromium, wait_for  # noqa: E402
from tests.service.server import running  # noqa: E402

TEXT = "Ein Mann mit einem roten Helm fährt mit dem Fahrrad durch den Park."


def shoot(url: str, width: int, height: int, out: Path) -> None:
    driver = chromium(width, height)
    try:
        driver.get(url + "/")
        wait_for(lambda: driver.find_element("tag name", "body").get_attribute("data-ready") == "true")
        driver.find_element("id", "source-text").send_keys(TEXT)
        table = wait_for(lambda: driver.find_elements("css selector", "#heatmaps table.heatmap"))[0]
        targets = table.find_elements("css selector", "th.tgt")
        ActionChains(driver).move_to_element(targets[min(3, len(targets) - 1)]).perform()
        full = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, max(height, full + 120))
        driver.execute_script("window.scrollTo(0, 0)")
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
        print(f"wrote {out.relative_to(ROOT)}")
    finally:
        driver.quit()


def main() -> None:
    with running(ROOT / "models") as server:
        shoot(server.url, 1280, 900, ROOT / "docs" / "images" / "page-desktop.png")
        shoot(server.url, 390, 844, ROOT / "docs" / "images" / "page-phone.png")


if __name__ == "__main__":
    main()

"""A headless Chromium driven by Selenium, from the system's packages (Debian: chromium, chromium-driver).

Nothing is downloaded: without the browser or its driver, `chromium()` skips the calling test
with a message that says what to install.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "install Debian's chromium and chromium-driver packages (.ci/run does) to run the browser tests"


def chromium(width: int = 1280, height: int = 900) -> Any:
    """A new headless Chromium session at the given window size, or a skip naming what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra has it)")
    from selenium.webdriver.chrome.service import Service

    browser = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    driver_path = shutil.which("chromedriver")
    if browser is None or driver_path is None:
        pytest.skip(f"no {'Chromium' if browser is None else 'chromedriver'} on this machine: {INSTALL_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--lang=en-US"):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    except Exception as err:  # a broken install is the machine's problem, reported as a skip
        pytest.skip(f"Chromium did not start ({type(err).__name__}: {str(err).splitlines()[0]}): {INSTALL_HINT}")


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, message: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail the test naming `message` after `timeout`."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(None, timeout, poll_frequency=0.05).until(lambda _: condition(), message)

"""The service's web pages in a real browser: headless Chromium, driven through
chromedriver's W3C WebDriver HTTP interface with plain urllib (no client library).

Debian's chromium and chromium-driver provide both (bin/ocvo setup installs them);
without them the tests skip.  Screenshots go to $OCVO_SCREENSHOT_DIR (default: the
test's tmp dir) so that a person can look at them.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("headless-browser tests need the Debian packages chromium and "
                "chromium-driver (bin/ocvo setup installs them)", allow_module_level=True)

# Headless, isolated, and quiet: no sandbox (root in a container), no GPU, and nothing
# that would contact anything beyond the loopback service.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,1024"]
WEBDRIVER_ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element key
WAIT_SECONDS = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Browser:
    """One headless Chromium session: the few WebDriver commands these tests need."""

    def __init__(self, driver_url: str, profile: Path):
        self.driver_url = driver_url
        options = {"binary": CHROMIUM, "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]}
        session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = f"/session/{session['sessionId']}"

    def _call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None and method == "GET" else json.dumps(body or {}).encode()
        request = urllib.request.Request(self.driver_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"WebDriver {method} {path}: {exc.read()[:500]!r}") from exc

    def go(self, url: str) -> None:
        self._call("POST", f"{self.session}/url", {"url": url})

    def find_all(self, css: str, within: str | None = None) -> list[str]:
        """Ids of the elements matching css, in the page or inside the element within."""
        scope = self.session if within is None else f"{self.session}/element/{within}"
        found = self._call("POST", f"{scope}/elements", {"using": "css selector", "value": css})
        return [element[WEBDRIVER_ELEMENT] for element in found]

    def wait_for(self, css: str) -> list[str]:
        """The elements matching css, once there are any (pages load asynchronously)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while not (found := self.find_all(css)):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {css!r} on {self.title()!r} within {WAIT_SECONDS} s")
            time.sleep(0.2)
        return found

    def type_into(self, css: str, text: str) -> None:
        element = self.wait_for(css)[0]
        self._call("POST", f"{self.session}/element/{element}/clear")
        self._call("POST", f"{self.session}/element/{element}/value", {"text": text})

    def click(self, css: str) -> None:
        self._call("POST", f"{self.session}/element/{self.wait_for(css)[0]}/click")

    def text(self, element: str) -> str:
        return self._call("GET", f"{self.session}/element/{element}/text")

    def title(self) -> str:
        return self._call("GET", f"{self.session}/title")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._call("GET", f"{self.session}/screenshot")))
        return path

    def quit(self) -> None:
        self._call("DELETE", self.session)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium with a fresh profile, through its own chromedriver."""
    port = _free_port()
    profile = Path(tempfile.mkdtemp(prefix="ocvo-chromium-"))
    driver = subprocess.Popen([CHROMEDRIVER, f"--port={port}", "--allowed-ips=127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    session = None
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                urllib.request.urlopen(url + "/status", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or driver.poll() is not None:
                    raise AssertionError(f"chromedriver did not start on port {port}")
                time.sleep(0.2)
        session = Browser(url, profile)
        yield session
    finally:
        if session is not None:
            session.quit()
        driver.terminate()
        driver.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("OCVO_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _is_a_rendered_page(png: Path) -> None:
    """A screenshot of a drawn page, not of a blank window."""
    from PIL import Image

    pixels = np.asarray(Image.open(png).convert("L"))
    assert pixels.shape[0] >= 500 and pixels.shape[1] >= 800
    assert pixels.std() > 10, f"{png} looks blank"


def _cells(browser: Browser, table_css: str) -> list[list[str]]:
    """The text of the data cells of the table, row by row (header rows have none)."""
    rows = browser.wait_for(f"{table_css} tbody tr")
    cells = [[browser.text(cell) for cell in browser.find_all("td", within=row)]
             for row in rows]
    return [row for row in cells if row]


def test_cone_search_form_in_chromium(browser, service, richest, shots):
    """Type a position into the cluster cone form, press Go, read the HTML result table."""
    browser.go(f"{service.url}/ocvo/q/cone/form")
    browser.type_into("#genForm-hscs_pos", f"{richest['ra']:.5f}, {richest['dec']:.5f}")
    browser.type_into("#genForm-hscs_sr", "30")
    browser.click("#genForm-action-submit")
    rows = _cells(browser, "table.results")
    assert any(richest["cluster_name"] in cell for row in rows for cell in row)
    _is_a_rendered_page(browser.screenshot(shots / "cone_form_result.png"))


def test_tap_example_runs_from_the_examples_page(browser, service, shots):
    """Read the first TAP example off the examples page as rendered, run it in DaCHS's
    ADQL form, and get its rows in the result table."""
    browser.go(f"{service.url}/tap/examples")
    examples = browser.wait_for("div[typeof='example'] pre[property='query']")
    assert len(examples) >= 10
    query = browser.text(examples[0])
    assert query.startswith("SELECT")
    _is_a_rendered_page(browser.screenshot(shots / "tap_examples.png"))

    browser.go(f"{service.url}/__system__/adql/query/form")
    browser.type_into("#genForm-query", query)
    browser.click("#genForm-MAXREC option[value='1000']")  # the form's default is 100 rows
    browser.click("#genForm-action-submit")
    rows = _cells(browser, "table.results")
    expected = service.query_value(
        "SELECT count(*) FROM ocvo.cluster WHERE n_flag12 >= 3 AND r_gc BETWEEN 5 AND 18")
    assert len(rows) == int(expected) > 0
    _is_a_rendered_page(browser.screenshot(shots / "tap_example_result.png"))

"""The playground page in a real browser: headless Chromium, driven by Selenium, against a live
`pycvnn playground` server.

It skips where Chromium, its driver or Selenium is missing, unless PYCVNN_REQUIRE_BROWSER=1
(CI sets it, so there a missing browser fails instead of skipping).
"""

import json
import os
import shutil
import urllib.request

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
REQUIRED = os.environ.get("PYCVNN_REQUIRE_BROWSER") == "1"
WIDTH, HEIGHT = 1280, 800


def _missing():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            return f"{path} not found (apt-get install chromium chromium-driver)"
    for module in ("selenium", "starlette", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            return f"the Python package {module} is not installed (pip install '.[test]')"
    return None


if _missing():
    if REQUIRED:
        raise RuntimeError(f"PYCVNN_REQUIRE_BROWSER=1 but {_missing()}")
    pytest.skip(_missing(), allow_module_level=True)

from playhelpers import chromium, live_server  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def server():
    """A live `pycvnn playground` on a free port; its URL."""
    with live_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(CHROMIUM, CHROMEDRIVER, WIDTH, HEIGHT) as driver:
        yield driver


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def _epoch(driver):
    return int(_text(driver, "epoch").replace(",", ""))


def _no_error(driver):
    error = driver.find_element(By.ID, "error")
    assert not error.is_displayed(), f"the page shows an error: {error.text}"


def _wait(driver, condition, timeout, what):
    """Wait for condition(driver), failing at once if the page shows an error."""

    def check(d):
        _no_error(d)
        return condition(d)

    WebDriverWait(driver, timeout, poll_frequency=0.1).until(check, message=what)


def _accuracy(driver):
    text = _text(driver, "test-acc")
    try:
        return float(text)
    except ValueError:
        return 0.0


def _session(driver, url):
    session_id = driver.find_element(By.TAG_NAME, "body").get_attribute("data-session")
    return _get(f"{url}api/sessions/{session_id}")


def _png_colours(driver, png):
    """The PNG decoded by the browser: (width, height, distinct colours, share of the
    playground's orange and blue pixels)."""
    import base64

    script = """
    const [data, done] = arguments;
    const img = new Image();
    img.onload = () => {
      const c = document.createElement("canvas");
      c.width = img.width; c.height = img.height;
      const ctx = c.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const px = ctx.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      let orange = 0, blue = 0;
      for (let i = 0; i < px.length; i += 4) {
        const [r, g, b] = [px[i], px[i + 1], px[i + 2]];
        seen.add((r << 16) | (g << 8) | b);
        if (r > g + 30 && g > b + 30) orange++;
        if (b > g + 20 && g > r + 30) blue++;
      }
      const n = px.length / 4;
      done([c.width, c.height, seen.size, orange / n, blue / n]);
    };
    img.onerror = () => done(null);
    img.src = "data:image/png;base64," + data;
    """
    return driver.execute_async_script(script, base64.b64encode(png).decode())


def test_play_circle_then_change_activation_and_optimizer(server, browser, tmp_path):
    driver = browser
    driver.set_script_timeout(20)
    driver.get(server)
    options = _get(server + "api/options")

    # The page builds its controls from /api/options and draws the default network.
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".node.hidden-unit"), 20, "page load")
    activations = [
        o.get_attribute("value") for o in Select(driver.find_element(By.ID, "activation")).options
    ]
    assert activations == options["activations"]
    hidden = options["defaults"]["hidden"]
    assert len(driver.find_elements(By.CSS_SELECTOR, ".node.hidden-unit")) == sum(hidden)
    n_features = len(options["defaults"]["features"])
    sizes = [n_features, *hidden, 1]
    links = sum(a * b for a, b in zip(sizes, sizes[1:]))
    assert len(driver.find_elements(By.CSS_SELECTOR, "#links path.link")) == links

    # One screen at 1280x800: nothing scrolls.
    page = driver.execute_script(
        "const e = document.documentElement;"
        "return [e.scrollWidth, e.scrollHeight, window.innerWidth, window.innerHeight];"
    )
    assert page == [WIDTH, HEIGHT, WIDTH, HEIGHT]

    driver.find_element(By.ID, "dataset-circle").click()
    _wait(driver, lambda d: _session(d, server)["config"]["dataset"] == "circle", 10, "circle")
    driver.find_element(By.ID, "play").click()
    _wait(driver, lambda d: _accuracy(d) >= 0.95, 30, "test accuracy >= 0.95 on circle")
    driver.find_element(By.ID, "play").click()  # pause
    assert _epoch(driver) > 0

    # Hovering a connection shows its weight, as the server has it.
    link = driver.find_elements(By.CSS_SELECTOR, "#links path.hit")[0]
    ActionChains(driver).move_to_element(link).perform()
    tip = driver.find_element(By.ID, "tooltip")
    _wait(driver, lambda d: tip.is_displayed(), 5, "the weight's tooltip")
    assert tip.text.startswith("w = ")
    w = _session(driver, server)["layers"][0]["W"][0][0]
    shown = lambda d: float(tip.text.split()[2]) == pytest.approx(w, abs=1e-3)  # noqa: E731
    _wait(driver, shown, 5, f"the tooltip shows w = {w:.3f}, not {tip.text}")

    # A new activation is a new session (epoch 0); a new optimizer keeps its weights.
    Select(driver.find_element(By.ID, "activation")).select_by_value("sigmoid")
    _wait(driver, lambda d: _session(d, server)["config"]["activation"] == "sigmoid", 10, "sigmoid")
    Select(driver.find_element(By.ID, "optimizer")).select_by_visible_text("RMSProp")
    _wait(
        driver,
        lambda d: _session(d, server)["config"]["optimizer"]["name"] == "rmsprop",
        10,
        "rmsprop",
    )
    assert _epoch(driver) == 0
    assert driver.find_element(By.ID, "opt-rho").get_attribute("value") == "0.9"

    driver.find_element(By.ID, "play").click()
    _wait(driver, lambda d: _epoch(d) >= 50, 20, "the epoch counter moves")
    _wait(driver, lambda d: _accuracy(d) >= 0.9, 30, "test accuracy >= 0.9 with the new settings")
    driver.find_element(By.ID, "play").click()
    _no_error(driver)
    # Nor did anything fail out of sight: no script error, no failed request.
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []

    png = driver.get_screenshot_as_png()
    path = tmp_path / "playground.png"
    path.write_bytes(png)
    width, height, colours, orange, blue = _png_colours(driver, png)
    assert (width, height) == (WIDTH, HEIGHT)
    assert path.stat().st_size > 30_000
    assert colours > 500
    # The heat map shows both classes' colours over a visible share of the screen.
    assert orange > 0.005 and blue > 0.005

"""Take the README's picture of the playground: a live `pycvnn playground` in headless Chromium
at 1280x800, the spiral with sin features and three hidden layers trained until the page shows
test accuracy >= 0.97 (or a minute has passed), one weight's tooltip open.

    python scripts/playground_screenshot.py [docs/playground.png]

Needs pycvnn[playground], selenium, Pillow (the picture is stored with a palette of 256
colours, a third of the size) and Chromium with its driver (Debian: apt-get install chromium
chromium-driver).
"""

import io
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from PIL import Image  # noqa: E402
from playhelpers import chromium, live_server  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

NEURONS = [8, 6, 4]


def click(driver, selector, index=0):
    """Click the index-th match, found afresh (a change of network rebuilds the diagram)."""
    driver.find_elements(By.CSS_SELECTOR, selector)[index].click()
    time.sleep(0.3)


def neurons(driver, layer):
    return int(driver.find_elements(By.CSS_SELECTOR, ".layer-ctl span")[layer].text.split()[0])


def main(out):
    with (
        live_server() as url,
        chromium("/usr/bin/chromium", "/usr/bin/chromedriver", 1280, 800) as d,
    ):
        d.get(url)
        time.sleep(1)
        click(d, "#dataset-spiral")
        click(d, "#feature-sin\\(x1\\)")
        click(d, "#feature-sin\\(x2\\)")
        click(d, "#layer-add")
        for layer, target in enumerate(NEURONS):
            while neurons(d, layer) < target:
                click(d, ".layer-ctl button[title='Add a neuron']", layer)
        lr = d.find_element(By.ID, "lr")
        lr.clear()
        lr.send_keys("0.01\n")
        click(d, "#show-test")
        click(d, "#play")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = d.find_element(By.ID, "test-acc").text
            if text[:1].isdigit() and float(text) >= 0.97:
                break
            time.sleep(0.2)
        click(d, "#play")
        time.sleep(0.5)
        link = d.find_elements(By.CSS_SELECTOR, "#links path.hit")[5]
        ActionChains(d).move_to_element(link).perform()
        time.sleep(0.3)
        error = d.find_element(By.ID, "error")
        if error.is_displayed():
            raise SystemExit(f"the page shows an error: {error.text}")
        png = d.get_screenshot_as_png()
    Image.open(io.BytesIO(png)).quantize(256, dither=Image.Dither.NONE).save(out, optimize=True)
    print(f"{out}: {out.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "docs/playground.png"))

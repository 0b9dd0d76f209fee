"""Frames per second the playground's page draws while it plays the default circle, in headless
Chromium against a live `pycvnn playground` (needs the test extra and Debian's chromium and
chromium-driver).

Run: python bench/playground_page.py [--seconds 5] [--windows 3]

A frame is one train call of "epochs / frame" epochs and one boundary (64x64 and every hidden
neuron), so frames/s = epochs/s / epochs a frame, read off the page's epoch counter.
"""

import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from cli_options import parse  # noqa: E402
from playhelpers import chromium, live_server  # noqa: E402


def main():
    args = parse(__doc__, sys.argv[1:], seconds=5.0, windows=3)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def epoch(driver):
        return int(driver.find_element(By.ID, "epoch").text.replace(",", ""))

    with (
        live_server() as url,
        chromium("/usr/bin/chromium", "/usr/bin/chromedriver", 1280, 800) as d,
    ):
        d.get(url)
        deadline = time.monotonic() + 20
        while not d.find_elements(By.CSS_SELECTOR, ".node.hidden-unit"):
            if time.monotonic() > deadline:
                sys.exit("playground_page: the page did not draw its network within 20 s")
            time.sleep(0.1)
        speed = Select(d.find_element(By.ID, "speed")).first_selected_option
        per_frame = int(speed.get_attribute("value"))
        d.find_element(By.ID, "play").click()
        time.sleep(2)  # past the first frames' warm-up
        for _ in range(args.windows):
            e0, t0 = epoch(d), time.perf_counter()
            time.sleep(args.seconds)
            e1, t1 = epoch(d), time.perf_counter()
            rate = (e1 - e0) / (t1 - t0)
            print(f"{rate / per_frame:.1f} frames/s ({rate:.0f} epochs/s at {per_frame} a frame)")


if __name__ == "__main__":
    main()

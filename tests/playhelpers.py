"""A live `pycvnn playground` and a headless Chromium for the tests that need a real server or
browser, and for scripts/playground_screenshot.py. Not collected by pytest (the name does not
start with test_)."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_playground(port, stderr=subprocess.STDOUT):
    """The `pycvnn playground` command on `port`, its output piped (stderr into stdout unless
    told otherwise)."""
    command = [sys.executable, "-m", "pycvnn", "playground", "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)


@contextlib.contextmanager
def live_server(timeout=30):
    """Runs `pycvnn playground` on a free port until the block ends (then Ctrl-C); yields its
    URL once /api/health answers, or raises with the server's output if it never does."""
    port = free_port()
    proc = start_playground(port)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "api/health", timeout=1) as r:
                    assert json.load(r)["ok"] is True
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError(f"the server did not start: {proc.stdout.read()}") from None
                time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def chromium(binary, driver_path, width, height):
    """A Selenium driver of headless Chromium with a width x height viewport."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    # The browser gets no preloaded libraries (a sanitizer run preloads them for Python only).
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS")}
    driver = webdriver.Chrome(service=Service(driver_path, env=env), options=options)
    try:
        # The viewport itself at width x height (the window's frame would take some of it).
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()

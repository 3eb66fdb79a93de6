#!/usr/bin/env python3
"""Checks ``snn-asr demo`` in a real browser: headless Chromium loads the page, uploads a file,
presses Transcribe, waits for the transcript and the spike raster, and saves a screenshot.

Needs Debian's ``chromium`` and ``chromium-driver`` and ``pip install selenium`` (not in CI: the
suite drives the same server through ``gradio_client``, tests/test_web_demo.py).

Run::

    python tools/browser_check_demo.py pretrained/snn-digits tests/data/fsdd/recordings/3_george_0.wav \\
        --screenshot docs/web_demo.png
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("audio", type=Path)
    parser.add_argument("--screenshot", type=Path, default=Path("web_demo.png"))
    parser.add_argument("--port", type=int, default=7865)
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    server = subprocess.Popen(
        [sys.executable, "-m", "snn_asr.inference.cli", "demo", args.model_dir, "--port", str(args.port)]
    )
    try:
        for _ in range(240):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", args.port)) == 0:
                    break
            time.sleep(0.5)
        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1300"):
            options.add_argument(flag)
        browser = webdriver.Chrome(options=options)
        try:
            browser.get(f"http://127.0.0.1:{args.port}/")
            wait = WebDriverWait(browser, 60)
            upload = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")))
            upload.send_keys(str(args.audio.resolve()))
            time.sleep(2)  # the upload reaches the server
            button = wait.until(
                ready.element_to_be_clickable((By.XPATH, "//button[contains(., 'Transcribe')]"))
            )
            button.click()
            try:
                wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "textarea").get_attribute("value"))
            except Exception:
                browser.save_screenshot(str(args.screenshot))
                raise SystemExit(
                    f"error: no transcript appeared; the page as it was: {args.screenshot}"
                ) from None
            wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "img[src*='spike_raster']")))
            time.sleep(1)
            text = browser.find_element(By.CSS_SELECTOR, "textarea").get_attribute("value")
            browser.save_screenshot(str(args.screenshot))
            print(f"transcript shown: {text!r}; screenshot: {args.screenshot}")
        finally:
            browser.quit()
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

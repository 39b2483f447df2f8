"""Headless Chromium through Selenium (Debian's chromium + chromium-driver), for the console's
tests and `vidpipe bench --suite service`."""
from __future__ import annotations

import shutil


def chromium_paths() -> tuple[str | None, str | None]:
    return shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")


def launch(width: int = 1280, height: int = 900):
    """A headless Chromium WebDriver; raises RuntimeError when Chromium or its driver is missing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService
    browser, driver = chromium_paths()
    if not (browser and driver):
        raise RuntimeError("chromium and chromium-driver are not installed (bash scripts/setup.sh --test)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
              f"--window-size={width},{height}", "--disable-extensions", "--disable-background-timer-throttling",
              "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"):
        opts.add_argument(a)
    return webdriver.Chrome(service=DriverService(executable_path=driver), options=opts)

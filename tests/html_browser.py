"""Headless Chromium (Debian's chromium and chromium-driver, installed by `make setup`) driven by selenium,
and the check that every page rog.report.html built loads with its figures.

`chromium()` yields a driver, or skips the test when Chromium or selenium is missing, except where the
browser test is required: ROG_BROWSER=require (set by `make test`) or CI=true, where it fails instead, so
that CI cannot pass without having opened the pages. ROG_CHROMIUM / ROG_CHROMEDRIVER name the binaries
(default: Debian's paths).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rog.report.html import Page

CHROMIUM = os.environ.get("ROG_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ROG_CHROMEDRIVER", "/usr/bin/chromedriver")
# no network here: without these Chromium's background connections (updates, sync, QUIC probes) are refused
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1024")

PAGE_STATE = """
const heading = Array.from(document.querySelectorAll('h1, h2, h3, h4, h5, h6')).map(h => h.textContent.replace(/\\u00b6/g, '').trim());
return {
  ready: document.readyState,
  title: document.title,
  headings: heading,
  error_page: document.querySelector('#main-frame-error, .neterror, .error-code') !== null,
  images: Array.from(document.images).map(i => ({src: i.src.slice(0, 60), complete: i.complete,
                                                  width: i.naturalWidth, height: i.naturalHeight})),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
};
"""


def required() -> bool:
    return os.environ.get("ROG_BROWSER") == "require" or os.environ.get("CI") == "true"


def missing(reason: str):
    if required():
        pytest.fail(f"{reason}; the browser test is required here (ROG_BROWSER=require or CI=true): "
                    "`make setup` installs Debian's chromium and chromium-driver")
    pytest.skip(f"{reason} (`make setup` installs it; `make test` requires it)")


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium WebDriver with a fresh profile, quit on exit."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            missing(f"no Chromium: {path} is not an executable")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing("selenium is not installed")
    with tempfile.TemporaryDirectory(prefix="rog-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(120)
        try:
            yield driver
        finally:
            driver.quit()


def page_problems(driver, url: str, page: Page | None) -> tuple[list[str], dict]:
    """Open `url`; what is wrong with it: not loaded, an error page, the title or heading missing, an
    image not decoded (naturalWidth 0), fewer images than the notebook's image outputs."""
    driver.get(url)
    state = driver.execute_script(PAGE_STATE)
    problems = []
    if state["ready"] != "complete":
        problems.append(f"document.readyState {state['ready']}")
    if state["error_page"]:
        problems.append("Chromium's error page")
    if page is not None:
        if page.title not in state["title"]:
            problems.append(f"<title> {state['title']!r} lacks {page.title!r}")
        if page.headed and page.title not in state["headings"]:
            problems.append(f"no heading {page.title!r} (found {state['headings'][:5]})")
        if len(state["images"]) < page.images:
            problems.append(f"{len(state['images'])} <img> for {page.images} image outputs")
    for image in state["images"]:
        if not image["complete"] or image["width"] <= 0:
            problems.append(f"image not shown (naturalWidth {image['width']}): {image['src']}")
    return problems, state


def check_site(driver, out: Path, pages: list[Page]) -> list[str]:
    """Open index.html and every page in `out`; return every problem as 'PAGE: what'."""
    problems = []
    index_url = (out / "index.html").resolve().as_uri()
    found, state = page_problems(driver, index_url, None)
    problems += [f"index.html: {p}" for p in found]
    pages_url = {(out / page.href).resolve().as_uri(): page for page in pages}
    linked = set(state["links"])
    problems += [f"index.html: no link to {page.href}" for url, page in pages_url.items() if url not in linked]
    for url, page in pages_url.items():
        found, state = page_problems(driver, url, page)
        if index_url not in state["links"]:
            found.append("no link back to index.html")
        problems += [f"{page.href}: {p}" for p in found]
    return problems

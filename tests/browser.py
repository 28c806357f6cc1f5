"""Headless Chromium (Debian's ``chromium``) driven by Playwright, as the tests' one browser.

Tests skip when Chromium is missing on a developer's machine, but fail in CI (``CI`` set), where
``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


@contextmanager
def browser_page(offline: bool = True):
    """A page, with every request to the network refused when ``offline``; collects page errors and dialogs."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.errors, page.dialogs = [], []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        if offline:
            page.route(
                "http*://**",
                lambda route: (
                    route.abort() if not route.request.url.startswith("http://127.0.0.1") else route.continue_()
                ),
            )
        try:
            yield page
        finally:
            browser.close()

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


AXE = os.path.join(os.path.dirname(__file__), "vendor", "axe", "axe.min.js")
"""axe-core (npm ``axe-core``, MPL-2.0, licence beside it), vendored for the accessibility checks."""


def axe_violations(page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """axe-core's WCAG 2 A/AA violations of the page at the given impacts (each with its nodes)."""
    with open(AXE, encoding="utf-8") as handle:
        page.evaluate(handle.read())
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in impacts
    ]


SCREENSHOTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "screenshots")
"""Where the browser tests leave the screenshots committed with the docs."""

"""The `carroyage serve` page in Chromium: DSFR, legend, 360 px layout, accessibility (axe-core)."""

import os
import sys

import pytest
from browser import SCREENSHOTS, axe_violations, browser_page
from servers import free_port, process

from carroyage.data import BAN_FIXTURE

WIDTHS = {"mobile": (360, 780), "bureau": (1280, 860)}


@pytest.fixture(scope="module")
def base_url():
    port = free_port()
    command = [sys.executable, "-m", "carroyage", "serve", "--port", str(port), "--ban", str(BAN_FIXTURE)]
    with process(command, port, timeout=60):
        yield f"http://127.0.0.1:{port}"


def ask(page, address):
    page.fill("#adresse", address)
    page.click("#formulaire button[type=submit]")
    page.wait_for_selector("#resultat .statut")
    page.wait_for_selector("path.leaflet-interactive")


def test_page_is_dsfr_offline_and_tells_official_from_candidate(base_url):
    requests = []
    with browser_page(offline=True) as page:
        page.on("request", lambda request: requests.append(request.url))
        page.goto(base_url)
        assert page.locator("header.fr-header").count() == 1 and page.locator("footer.fr-footer").count() == 1
        font = page.evaluate("getComputedStyle(document.body).fontFamily")
        assert font.startswith("Marianne")
        page.wait_for_function("document.fonts.check('16px Marianne')")
        legend = page.locator(".legende").inner_text()
        assert "QPV officiel (ANCT)" in legend and "Quartier candidat (calculé, non officiel)" in legend
        ask(page, "1 rue des Tilleuls, Amiens")
        assert "QPV officiel QN08003M Amiens Nord" in page.locator("#resultat").inner_text()
        assert page.errors == []
    # the page asks nothing of the network but its own API (tiles, which fail offline, aside)
    assert all(url.startswith(base_url) or "tile.openstreetmap.org" in url for url in requests)


def test_candidate_is_never_called_a_qpv(base_url):
    with browser_page(offline=True) as page:
        page.goto(base_url)
        named = page.evaluate(
            "[nomDeType({type: 'qpv', code: 'QC003'}), nomDeType({type: 'qpv', code: 'QN08003M'}),"
            " genre({type: 'qpv', code: 'QC003'}), COULEURS[genre({type: 'qpv', code: 'QC003'})]]"
        )
        assert named == ["Quartier candidat (calculé)", "QPV officiel", "candidat", "#5b2c83"]


@pytest.mark.parametrize("name", list(WIDTHS))
def test_layout_keyboard_and_accessibility_at_each_width(base_url, name):
    width, height = WIDTHS[name]
    with browser_page(offline=True) as page:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(base_url)
        assert axe_violations(page) == []
        page.keyboard.press("Tab")  # the skip links come first
        assert page.evaluate("document.activeElement.textContent") == "Contenu"
        page.focus("#adresse")
        page.keyboard.type("1 rue des Tilleuls, Amiens")
        page.keyboard.press("Enter")  # the form answers from the keyboard
        page.wait_for_selector("#resultat .statut")
        page.wait_for_selector("path.leaflet-interactive")
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen
        box = page.locator("#carte").bounding_box()
        assert box["width"] >= width * (0.85 if width < 500 else 0.5) and box["height"] >= 300
        assert axe_violations(page) == []
        page.wait_for_timeout(300)
        os.makedirs(SCREENSHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOTS, f"page_{name}.png"), full_page=True)
        assert page.errors == []

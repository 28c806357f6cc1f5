"""The `carroyage serve` page in Chromium: DSFR, legend, 360 px layout, accessibility (axe-core)."""

import os
import sys

import pytest
from browser import SCREENSHOTS, axe_violations, browser_page
from servers import free_port, process, serving

from carroyage.data import BAN_FIXTURE

WIDTHS = {"mobile": (360, 780), "bureau": (1280, 860)}


@pytest.fixture(scope="module")
def base_url():
    port = free_port()
    command = [sys.executable, "-m", "carroyage", "serve", "--port", str(port), "--ban", str(BAN_FIXTURE)]
    with process(command, port, timeout=60, ready="/openapi.json"):
        yield f"http://127.0.0.1:{port}"


CSP_WATCH = (
    "window.violations = []; document.addEventListener('securitypolicyviolation',"
    " e => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));"
)
"""Collects what the page's Content-Security-Policy blocked (nothing, when the page is right)."""


def ask(page, address):
    page.fill("#adresse", address)
    page.click("#formulaire button[type=submit]")
    page.wait_for_selector("#resultat .statut")
    page.wait_for_selector("path.leaflet-interactive")


def test_page_is_dsfr_offline_and_tells_official_from_candidate(base_url):
    requests = []
    with browser_page(offline=True) as page:
        page.on("request", lambda request: requests.append(request.url))
        page.add_init_script(CSP_WATCH)
        page.goto(base_url)
        assert page.locator("header.fr-header").count() == 1 and page.locator("footer.fr-footer").count() == 1
        font = page.evaluate("getComputedStyle(document.body).fontFamily")
        assert font.startswith("Marianne")
        page.wait_for_function("() => document.fonts.check('16px Marianne')")  # a string would be eval()
        legend = page.locator(".legende").inner_text()
        assert "QPV officiel (ANCT)" in legend and "Quartier candidat (calculé, non officiel)" in legend
        ask(page, "1 rue des Tilleuls, Amiens")
        assert "QPV officiel QN08003M Amiens Nord" in page.locator("#resultat").inner_text()
        assert page.errors == [] and page.evaluate("window.violations") == []  # the CSP lets the page work
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


HOSTILE = '<script>window.pwned = 1</script><!-- "guillemets" \'apostrophes\' <img src=x onerror="window.pwned = 2">'


@pytest.fixture(scope="module")
def hostile_url():
    """A server whose zone's code and name, and an uploaded file's name, are markup."""
    import geopandas as gpd
    from shapely.geometry import box

    from carroyage.address.check import Checker
    from carroyage.address.lookup import ZoneSet
    from carroyage.address.server import create_app

    layer = gpd.GeoDataFrame(
        {"code_qp": ['QN<b>1</b>"'], "lib_qp": [HOSTILE]}, geometry=[box(2.29, 49.90, 2.32, 49.92)], crs=4326
    )
    zones = ZoneSet.from_layers([("qpv", layer, "<script>.geojson")])
    with serving(create_app(Checker(zones), max_upload_bytes=1000)) as url:
        yield url


def test_text_from_zones_and_file_names_is_shown_as_text(hostile_url):
    with browser_page(offline=True) as page:
        posted = []
        page.on("request", lambda request: posted.append(request.url) if request.method == "POST" else None)
        page.add_init_script(CSP_WATCH)
        page.goto(hostile_url)
        page.click("details.coordonnees summary")
        page.fill("#lon", "2,3046")
        page.fill("#lat", "49,9103")
        page.click("#formulaire button[type=submit]")
        page.wait_for_selector("#resultat .statut")
        assert (
            HOSTILE in page.locator("#resultat").inner_text()
            and 'QN<b>1</b>"' in page.locator("#resultat").inner_text()
        )
        assert set(page.evaluate("[...document.querySelectorAll('#resultat *')].map(e => e.tagName)")) == {"P"}
        page.wait_for_selector("path.leaflet-interactive")
        page.evaluate("couche.eachLayer(l => l.eachLayer && l.eachLayer(f => f.openTooltip()))")
        tooltip = page.locator(".leaflet-tooltip")
        assert HOSTILE in tooltip.inner_text()
        assert set(page.evaluate("[...document.querySelectorAll('.leaflet-tooltip *')].map(e => e.tagName)")) == {
            "SPAN"
        }
        name = "<img src=x onerror=window.pwned=3> l'<!--.csv"  # browsers send a '"' in a file name as %22
        page.set_input_files("#csv", files=[{"name": name, "mimeType": "text/csv", "buffer": b"id;x\n1;2\n"}])
        page.click("#fichier button[type=submit]")
        page.wait_for_function("() => document.querySelector('#fichier-resultat').innerText.includes('.csv')")
        assert name in page.locator("#fichier-resultat").inner_text()  # the server's 400 names the file
        assert page.evaluate("document.querySelectorAll('#fichier-resultat img, #resultat img').length") == 0
        # over the limit: refused by the page itself, before any upload
        page.set_input_files("#csv", files=[{"name": "gros.csv", "mimeType": "text/csv", "buffer": b"x" * 2000}])
        page.click("#fichier button[type=submit]")
        assert page.locator("#fichier-resultat").inner_text() == "Fichier trop volumineux : 0,001 Mo au plus."
        assert len(posted) == 1
        assert page.evaluate("window.pwned") is None and page.errors == [] and page.evaluate("window.violations") == []

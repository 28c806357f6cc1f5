import numpy as np
import pytest
import shapely
from browser import browser_page
from conftest import carroyage
from matplotlib.image import imread

from carroyage import delimit, read_grid
from carroyage.around.zones import quartier_vecu, veille_active
from carroyage.data import AMIENS_2019, AMIENS_COMMUNES, QPV_2024
from carroyage.layers import read_layer, read_official
from carroyage.publish.maps import interactive_map, save_map, static_map

HOSTILE = "<script>alert(1)</script>"
HOSTILE_IMG = '<img src=x onerror="alert(2)">'


@pytest.fixture(scope="module")
def amiens():
    geo = delimit(read_grid(AMIENS_2019), "decree-2014", national_median=22_040)
    geo.layers["quartier_vecu"] = quartier_vecu(geo.qpv, clip=read_layer(AMIENS_COMMUNES))
    geo.layers["veille_active"] = veille_active(geo, previous=read_official(QPV_2024))
    return geo


@pytest.fixture(scope="module")
def page_file(amiens, tmp_path_factory):
    geo = amiens
    geo.qpv["name"] = [HOSTILE, HOSTILE_IMG, *[f"Quartier {i}" for i in range(2, len(geo.qpv))]]
    official = read_official(QPV_2024)
    path = tmp_path_factory.mktemp("maps") / "amiens.html"
    save_map(interactive_map(geo, official, "Géographie prioritaire — Amiens"), path, self_contained=True)
    return path, geo


def shapes(page):
    return page.locator("path.leaflet-interactive").count()


def test_self_contained_map_draws_offline_with_legend_and_controls(page_file, tmp_path):
    path, geo = page_file
    html = path.read_text(encoding="utf-8")
    assert "cdn.jsdelivr" not in html and '<html lang="fr">' in html
    assert '<script type="application/json" id="carroyage-manifest">' in html  # how the map was made
    with browser_page(offline=True) as page:
        page.goto(path.as_uri())
        page.wait_for_selector("path.leaflet-interactive")
        official = read_official(QPV_2024).to_crs(3035)
        official_near = official[official.intersects(shapely.box(*geo.cells.total_bounds))]
        expected = (
            len(geo.qpv) + len(geo.layers["quartier_vecu"]) + len(geo.layers["veille_active"]) + len(official_near)
        )
        assert shapes(page) == expected
        assert page.locator("#carroyage-legende").inner_text().startswith("Géographie prioritaire")
        assert "Quartiers prioritaires (calculés)" in page.locator(".leaflet-control-layers").inner_text()
        assert page.locator(".leaflet-control-scale").count() == 1
        page.screenshot(path=str(tmp_path / "amiens.png"))
        assert page.errors == [] and page.dialogs == []


def test_popup_shows_the_right_values_and_hostile_names_stay_text(page_file):
    path, geo = page_file
    with browser_page() as page:
        page.goto(path.as_uri())
        page.wait_for_selector("path.leaflet-interactive")
        for label in ("Quartiers vécus", "Veille active", "QPV officiels"):  # leave only the quartiers on
            page.get_by_label(label).uncheck()
        assert shapes(page) == len(geo.qpv)
        for index, row in geo.qpv.iterrows():
            page.locator("path.leaflet-interactive").nth(index).click(force=True)
            popup = page.locator(".leaflet-popup-content").last.inner_text()
            assert row["code"] in popup and f"{round(row['population'])}" in popup and "estimés" in popup
            if index == 0:
                assert HOSTILE in popup  # shown as text...
            if row["code"] == "QC002":
                assert "QPV officiel recouvert" in popup and "QN08003M Amiens Nord" in popup
        assert page.locator(".leaflet-popup-content script").count() == 0
        assert page.locator(".leaflet-popup-content img").count() == 0
        assert page.dialogs == [] and page.errors == []  # ...and never run


def test_layers_toggle(page_file):
    path, geo = page_file
    with browser_page() as page:
        page.goto(path.as_uri())
        page.wait_for_selector("path.leaflet-interactive")
        before = shapes(page)
        page.get_by_label("Quartiers prioritaires (calculés)").uncheck()
        assert shapes(page) == before - len(geo.qpv)
        page.get_by_label("Carreaux 200 m : part sous le seuil").check()
        assert shapes(page) == before - len(geo.qpv) + int((geo.cells["population"] > 0).sum())


def test_static_map_for_reports(amiens, tmp_path):
    png, pdf = static_map(amiens, tmp_path / "amiens.png"), static_map(amiens, tmp_path / "amiens.pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    blank_rows = np.concatenate([[0], (imread(png)[..., :3] > 0.97).all(axis=(1, 2)), [0]]).astype(int)
    starts, ends = np.flatnonzero(np.diff(blank_rows) == 1), np.flatnonzero(np.diff(blank_rows) == -1)
    assert (ends - starts).max() < 0.1 * (len(blank_rows) - 2)  # no empty band across the image


def test_map_command_is_reproducible_and_self_contained(tmp_path):
    out = tmp_path / "a.gpkg"

    run = carroyage
    assert run("delimit", AMIENS_2019, "--national-median", "22040", "--out", out, "-q").returncode == 0
    pages = []
    for name in ("one.html", "two.html"):
        result = run("map", out, "--out", tmp_path / name, "--self-contained", "--png", tmp_path / "m.png")
        assert result.returncode == 0, result.stderr
        pages.append((tmp_path / name).read_bytes())
    assert pages[0] == pages[1]
    assert (tmp_path / "m.png").exists()
    wrong = run("map", out, "--out", tmp_path / "three.html", "--png", tmp_path / "m.webpx")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "m.webpx: unknown static map format; expected a .png or .pdf name" in wrong.stderr
    assert not (tmp_path / "three.html").exists() and not (tmp_path / "m.webpx").exists()

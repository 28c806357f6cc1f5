import os

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from browser import SCREENSHOTS, axe_violations, browser_page
from conftest import carroyage
from matplotlib.image import imread

from carroyage import delimit, labels, read_grid
from carroyage.around.zones import quartier_vecu, veille_active
from carroyage.data import AMIENS_2019, AMIENS_COMMUNES, QPV_2024
from carroyage.geography import read_geography
from carroyage.layers import read_layer, read_official
from carroyage.publish.maps import interactive_map, save_map, static_map
from carroyage.publish.output import export_geography, write_geography

HOSTILE = "<script>alert(1)</script>"
HOSTILE_IMG = '<img src=x onerror="alert(2)">'
HOSTILE_GRID = "data/filosofi2019_200m_amiens<!--<script>.csv"


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
    # the audit's grid name that blanked the page (issue #13): the embedded manifest must not break it
    geo.manifest["inputs"]["grid"]["path"] = HOSTILE_GRID
    official = read_official(QPV_2024)
    path = tmp_path_factory.mktemp("maps") / "amiens.html"
    save_map(interactive_map(geo, official, "Géographie prioritaire — Amiens"), path, self_contained=True)
    return path, geo


def shapes(page):
    return page.locator("path.leaflet-interactive").count()


NNBSP = "\u202f"


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
        # the official outlines and the communes are drawn but never interactive
        assert shapes(page) == len(geo.qpv) + len(geo.layers["quartier_vecu"]) + len(geo.layers["veille_active"])
        assert page.locator(".leaflet-officiels-pane path").count() == len(official_near)
        assert page.locator(".leaflet-contexte-pane path").count() > 0  # communes: readable with no tiles
        assert "Amiens" in page.locator(".carroyage-commune").all_inner_texts()
        title = page.locator("#carroyage-titre").inner_text()
        assert title.startswith("Géographie prioritaire — Amiens") and "carroyage Filosofi 2019" in title
        assert "règle decree-2014" in title and labels.french_date(str(geo.manifest["date"])) in title
        legend = page.locator("#carroyage-legende").inner_text()
        for entry in ("Quartiers candidats (calculés, non officiels)", "QPV officiels (ANCT)", "Quartiers vécus"):
            assert entry in legend
        assert "Veille active" in legend and "Limites et noms des communes" in legend
        assert f"0{NNBSP}%" in legend and f"50{NNBSP}%" in legend and f"100{NNBSP}%" in legend  # colour bar
        assert labels.euros(geo.manifest["threshold"]["value"]) in legend  # the threshold, French style
        control = page.locator(".leaflet-control-layers")
        assert "leaflet-control-layers-expanded" not in (control.get_attribute("class") or "")  # collapsed
        assert page.locator(".leaflet-control-scale").count() == 1
        manifest = page.evaluate("() => JSON.parse(document.getElementById('carroyage-manifest').textContent)")
        assert manifest["inputs"]["grid"]["path"] == HOSTILE_GRID
        assert page.errors == [] and page.dialogs == []


def test_every_computed_quartier_is_in_view_and_clear_of_title_and_legend(page_file):
    path, geo = page_file
    with browser_page(offline=True) as page:
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(path.as_uri())
        page.wait_for_selector("path.leaflet-interactive")
        legend = page.locator("#carroyage-legende").bounding_box()
        title = page.locator("#carroyage-titre div").bounding_box()
        for index in range(len(geo.qpv)):
            box = page.locator(".leaflet-quartiers-pane path").nth(index).bounding_box()
            assert (
                box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= 1280 and box["y"] + box["height"] <= 800
            )
            assert box["x"] + box["width"] <= legend["x"] or box["y"] + box["height"] <= legend["y"]
            assert box["y"] >= title["y"] + title["height"]


def test_a_computed_quartier_under_the_official_layer_opens_its_fiche(page_file):
    """Every layer ticked again (so drawn last), a click on a quartier still opens its fiche."""
    path, geo = page_file
    with browser_page() as page:
        page.goto(path.as_uri())
        page.wait_for_selector("path.leaflet-interactive")
        page.locator(".leaflet-control-layers").hover()
        for label in ("Quartiers candidats (calculés, non officiels)", "Quartiers vécus", "Veille active"):
            page.get_by_label(label).uncheck()
            page.get_by_label(label).check()
        for label in ("QPV officiels (ANCT)", "Quartiers vécus", "Veille active"):  # drawn over the quartiers now
            page.get_by_label(label).uncheck()
            page.get_by_label(label).check()
        page.mouse.move(5, 400)
        index = int(np.flatnonzero(geo.qpv["code"].to_numpy() == "QC002")[0])
        row = geo.qpv.iloc[index]
        point = row.geometry.representative_point()
        from pyproj import Transformer

        lon, lat = Transformer.from_crs(3035, 4326, always_xy=True).transform(point.x, point.y)
        xy = page.evaluate(
            "([lat, lon]) => { for (const k in window) { if (k.startsWith('map_') && window[k].latLngToContainerPoint)"
            " { const p = window[k].latLngToContainerPoint([lat, lon]); return [p.x, p.y]; } } }",
            [lat, lon],
        )
        page.mouse.click(xy[0], xy[1])  # a real click at that spot: whatever is on top receives it
        page.wait_for_selector(".leaflet-popup-content")
        popup = page.locator(".leaflet-popup-content").inner_text()
        assert "Quartier candidat QC002" in popup and "QPV officiel recouvert" in popup
        assert "QN08003M Amiens Nord" in popup
        assert f"Habitants\t{labels.integer(row['population'])}" in popup and NNBSP in labels.integer(row["population"])
        assert labels.percent(row["low_income_share"]) in popup and "," in labels.percent(row["low_income_share"])
        assert labels.euros(row["median_income"]) in popup and "estimés" in popup


def test_popup_shows_the_right_values_and_hostile_names_stay_text(page_file):
    path, geo = page_file
    with browser_page() as page:
        page.goto(path.as_uri())
        page.wait_for_selector("path.leaflet-interactive")
        page.locator(".leaflet-control-layers").hover()
        for label in ("Quartiers vécus", "Veille active", "QPV officiels (ANCT)"):  # leave only the quartiers on
            page.get_by_label(label).uncheck()
        assert shapes(page) == len(geo.qpv)
        seen = set()
        for index in range(len(geo.qpv)):  # shapes are drawn in their own order: match by code
            page.locator("path.leaflet-interactive").nth(index).click(force=True)
            popup = page.locator(".leaflet-popup-content").last.inner_text()
            row = next(r for _, r in geo.qpv.iterrows() if f"Quartier candidat {r['code']}\n" in popup + "\n")
            assert labels.integer(row["population"]) in popup and "estimés" in popup
            seen.add(row["code"])
            if row["code"] == geo.qpv["code"].iloc[0]:
                assert HOSTILE in popup  # shown as text...
        # a forced click lands at a shape's centre, where a neighbouring quartier may lie on top
        assert len(seen) >= len(geo.qpv) - 1 and geo.qpv["code"].iloc[0] in seen
        assert page.locator(".leaflet-popup-content script").count() == 0
        assert page.locator(".leaflet-popup-content img").count() == 0
        assert page.dialogs == [] and page.errors == []  # ...and never run


def test_cell_popup_fits_and_speaks_french(page_file):
    path, geo = page_file
    with browser_page() as page:
        page.set_viewport_size({"width": 360, "height": 740})
        page.goto(path.as_uri())
        page.wait_for_selector("path.leaflet-interactive")
        page.locator(".leaflet-control-layers").click()
        page.get_by_label("Carreaux 200 m : part sous le seuil").check()
        for label in ("Quartiers candidats (calculés, non officiels)", "Quartiers vécus", "Veille active"):
            page.get_by_label(label).uncheck()
        page.mouse.click(5, 400)
        page.locator(".leaflet-overlay-pane path.leaflet-interactive").nth(0).click(force=True)
        content = page.locator(".leaflet-popup-content").last
        assert "CRS3035RES200m" in content.inner_text() and NNBSP + "%" in content.inner_text()
        assert (
            page.evaluate("document.querySelector('.leaflet-popup-content').scrollWidth")
            <= content.bounding_box()["width"] + 1
        )  # the long cell id wraps inside the popup


@pytest.mark.parametrize("width,height,name", [(360, 740, "mobile"), (1280, 800, "bureau")])
def test_map_screenshots_and_accessibility(page_file, width, height, name):
    path, _ = page_file
    with browser_page(offline=True) as page:
        page.set_viewport_size({"width": width, "height": height})
        page.goto(path.as_uri())
        page.wait_for_selector("path.leaflet-interactive")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert axe_violations(page) == []
        page.wait_for_timeout(300)
        os.makedirs(SCREENSHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOTS, f"carte_{name}.png"))


def test_layers_toggle(page_file):
    path, geo = page_file
    with browser_page() as page:
        page.goto(path.as_uri())
        page.wait_for_selector("path.leaflet-interactive")
        before = shapes(page)
        page.locator(".leaflet-control-layers").hover()
        page.get_by_label("Quartiers candidats (calculés, non officiels)").uncheck()
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
    again_png, again_pdf = static_map(amiens, tmp_path / "b.png"), static_map(amiens, tmp_path / "b.pdf")
    assert again_png.read_bytes() == png.read_bytes() and again_pdf.read_bytes() == pdf.read_bytes()  # reproducible
    date = str(amiens.manifest["date"]).replace("-", "")
    assert f"/CreationDate (D:{date}000000Z)".encode() in pdf.read_bytes()


def test_map_command_is_reproducible_and_self_contained(tmp_path):
    out = tmp_path / "a.gpkg"

    run = carroyage
    assert run("delimit", AMIENS_2019, "--national-median", "22040", "--out", out, "-q").returncode == 0
    pages = []
    for name, flag in (("one.html", ["--self-contained"]), ("two.html", ["--self-contained", "true"])):
        result = run("map", out, "--out", tmp_path / name, *flag, "--png", tmp_path / "m.png")
        assert result.returncode == 0, result.stderr
        assert "(autonome, sans réseau)" in result.stdout
        pages.append((tmp_path / name).read_bytes())
    assert pages[0] == pages[1]
    assert b"cdn.jsdelivr" not in pages[0]
    assert (tmp_path / "m.png").exists()
    cdn = run("map", out, "--out", tmp_path / "cdn.html", "--self-contained", "non")
    assert cdn.returncode == 0 and b"cdn.jsdelivr" in (tmp_path / "cdn.html").read_bytes()
    wrong = run("map", out, "--out", tmp_path / "three.html", "--png", tmp_path / "m.webpx")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "m.webpx : format de carte statique inconnu ; attendu un nom en .png ou .pdf" in wrong.stderr
    assert not (tmp_path / "three.html").exists() and not (tmp_path / "m.webpx").exists()


def test_a_map_named_like_a_picture_is_a_picture(tmp_path, amiens):
    out = tmp_path / "a.gpkg"
    write_geography(amiens, out)
    picture = carroyage("map", out, "--out", tmp_path / "x.png")
    assert picture.returncode == 0 and (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = carroyage("map", out, "--out", tmp_path / "x.pdf")
    assert pdf.returncode == 0 and (tmp_path / "x.pdf").read_bytes()[:5] == b"%PDF-"
    unknown = carroyage("map", out, "--out", tmp_path / "x.txt")
    assert unknown.returncode == 2 and "format de carte inconnu" in unknown.stderr and not (tmp_path / "x.txt").exists()


def test_version_and_help_without_placeholders():
    from importlib.metadata import version

    shown = carroyage("--version")
    assert shown.returncode == 0 and shown.stdout.strip() == f"carroyage {version('carroyage')}"
    helped = carroyage("map", "--help").stdout
    assert "--self-contained" in helped and "FICHIER" in helped
    for option in ("--self-contained", "--out", "--official", "--png", "--context", "--title"):
        line = next(text for text in helped.splitlines() if option in text)
        assert "<bool>" not in line and "<path>" not in line and "<str>" not in line


def test_geopackage_as_a_qgis_user_opens_it(tmp_path, amiens):
    """Lambert-93 layers (cells too), QGIS's layer_styles table, official names, integer residents, NULLs."""
    working = tmp_path / "a.gpkg"
    from carroyage.geography import Geography

    plain = Geography(
        amiens.cell_table, amiens.qpv.drop(columns="name", errors="ignore"), amiens.manifest, amiens.layers
    )
    write_geography(plain, working)
    gis = export_geography(working, tmp_path / "sig.gpkg", crs="2154", official=read_official(QPV_2024))
    layers = dict(pyogrio.list_layers(gis))
    assert {"cells", "qpv", "quartier_vecu", "veille_active", "official", "manifest", "layer_styles"} <= set(layers)
    for name in ("cells", "qpv", "quartier_vecu", "veille_active", "official"):  # one CRS, as INSEE ships it
        assert pyogrio.read_info(gis, layer=name)["crs"] == "EPSG:2154"
    styles = pyogrio.read_dataframe(gis, layer="layer_styles", read_geometry=False)
    assert list(styles.columns) == [
        "f_table_catalog",
        "f_table_schema",
        "f_table_name",
        "f_geometry_column",
        "styleName",
        "styleQML",
        "styleSLD",
        "useAsDefault",
        "description",
        "owner",
        "ui",
        "update_time",
    ]
    assert set(styles["f_table_name"]) == {"cells", "qpv", "quartier_vecu", "veille_active", "official"}
    assert styles["useAsDefault"].all() and styles["styleQML"].str.startswith("<!DOCTYPE qgis").all()
    for table, column in zip(styles["f_table_name"], styles["f_geometry_column"], strict=True):
        assert pyogrio.read_info(gis, layer=table)["geometry_name"] == column  # how QGIS finds the style
    qml = styles.set_index("f_table_name").at["qpv", "styleQML"]
    assert "91,44,131,255" in qml and 'fieldName="code"' in qml  # violet like the web map, codes as labels
    assert "graduatedSymbol" in styles.set_index("f_table_name").at["cells", "styleQML"]
    info = pyogrio.read_info(gis, layer="qpv")
    fields = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert fields["population"] == "int64" and {"code_qp", "lib_qp"} <= set(fields)
    qpv = pyogrio.read_dataframe(gis, layer="qpv").set_index("code")
    assert qpv.at["QC002", "code_qp"] == "QN08003M" and qpv.at["QC002", "lib_qp"] == "Amiens Nord"
    assert qpv["name"].isna().all()  # absent values are NULL, not ''
    watch = pyogrio.read_dataframe(gis, layer="veille_active")
    assert str(watch["population"].dtype) == "int64"
    # and every carroyage command still reads it back, in the grid's CRS
    back = read_geography(gis)
    assert back.qpv.crs.to_epsg() == 3035 and back.layers["quartier_vecu"].crs.to_epsg() == 3035
    assert len(back.cells) == len(amiens.cells) and (back.cell_table["x"] % 200 == 0).all()
    assert back.qpv["population"].sum() == pytest.approx(amiens.qpv["population"].sum(), abs=len(amiens.qpv))
    assert carroyage("map", gis, "--out", tmp_path / "sig.html").returncode == 0
    zones = carroyage("zones", gis)
    assert zones.returncode == 0, zones.stderr
    assert pyogrio.read_info(gis, layer="quartier_vecu")["crs"] == "EPSG:2154"  # zones keeps Lambert-93


def test_demo_echoes_commands_that_can_be_pasted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import shutil
    from pathlib import Path

    from carroyage.data import DATA_DIR

    shutil.copytree(DATA_DIR, tmp_path / "data", ignore=shutil.ignore_patterns("validation", "ban"))
    monkeypatch.setattr("carroyage.data.DATA_DIR", tmp_path / "data")
    for name in ("AMIENS_2019", "AMIENS_COMMUNES", "QPV_2024", "QPV_2024_STATS"):
        monkeypatch.setattr(
            f"carroyage.data.{name}", tmp_path / "data" / Path(getattr(__import__("carroyage.data").data, name)).name
        )
    result = carroyage("demo", "-q")
    assert result.returncode == 0, result.stderr
    steps = [line[3:] for line in result.stdout.splitlines() if line.startswith("== carroyage ")]
    assert len(steps) == 7
    assert "delimit data/filosofi2019_200m_amiens.csv" in steps[0] and "--out out/amiens_2019.gpkg" in steps[0]
    assert "--clip data/communes_amiens_metropole.geojson --previous data/qpv2024_france.geojson" in steps[2]
    assert "export out/amiens_2019.gpkg --out out/amiens_2019_sig.gpkg --out-crs EPSG:2154" in steps[5]
    assert pyogrio.read_info(tmp_path / "out" / "amiens_2019_sig.gpkg", layer="qpv")["crs"] == "EPSG:2154"
    assert "layer_styles" in dict(pyogrio.list_layers(tmp_path / "out" / "amiens_2019_sig.gpkg"))
    for step in steps[1:]:  # pasted as they are, from the same folder, they run
        words = step.split()[1:]
        if words[0] in ("map", "export", "validate", "indicators"):
            rerun = carroyage(*words)
            assert rerun.returncode == 0, (step, rerun.stderr)


def test_a_fiche_links_to_its_official_qpvs_row_in_the_tableau(tmp_path):
    from carroyage.data import QPV_2024_STATS

    geo, page, tableau = tmp_path / "a.gpkg", tmp_path / "carte.html", tmp_path / "tableaux" / "t.html"
    assert carroyage("delimit", AMIENS_2019, "--national-median", "22040", "--out", geo, "-q").returncode == 0
    made = carroyage(
        "indicators", QPV_2024, "--grid", AMIENS_2019, "--stats", QPV_2024_STATS,
        "--out", tmp_path / "tableaux" / "t.csv", "--html", tableau, "-q",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    drawn = carroyage("map", geo, "--out", page, "--official", QPV_2024, "--tableau", tableau)
    assert drawn.returncode == 0, drawn.stderr
    with browser_page() as browser:
        browser.goto(page.as_uri())
        browser.wait_for_selector("path.leaflet-interactive")
        links = browser.evaluate(
            """() => {
                const map = Object.values(window).find((v) => v instanceof L.Map);
                const found = [];
                map.eachLayer((layer) => {
                    if (!layer.feature || !layer.feature.properties._tableau) { return; }
                    layer.openPopup();  // each fiche in turn, wherever its shape lies
                    const link = layer.getPopup().getElement().querySelector("a.carroyage-fiche-tableau");
                    if (link) { found.push([link.getAttribute("href"), link.textContent]); }
                });
                return found;
            }"""
        )
        href, text = next((h, t) for h, t in links if h.endswith("#qpv-QN08003M"))
        assert href == "tableaux/t.html#qpv-QN08003M" and "Tableau de bord de QN08003M" in text
        browser.goto(tableau.as_uri() + "#qpv-QN08003M")
        assert "Amiens Nord" in browser.locator("#qpv-QN08003M").inner_text()


HOSTILE_TEXT = '</script><!--<script>alert("x")</script>&amp;\'"'


def small_geography(tmp_path, grid_name, name):
    """A one-quartier geography near Amiens from a grid file named ``grid_name``, with named zones."""
    from conftest import filosofi_frame

    grid = tmp_path / grid_name
    filosofi_frame({(c, r) for c in range(2, 6) for r in range(2, 5)}, size=10).to_csv(grid, index=False)
    geo = delimit(read_grid(grid), "decree-2014", national_median=22_040)
    geo.qpv["name"] = name
    geo.layers["quartier_vecu"] = quartier_vecu(geo.qpv).assign(name=name)
    geo.manifest["command"] = f"carroyage delimit {grid_name} --title {name}"
    return geo


def script_structure(page):
    lower = page.lower()
    return [lower.count(marker) for marker in ("<script", "</script", "<!--", "-->")]


def test_no_text_reaching_the_map_changes_the_pages_structure(tmp_path):
    """Grid file name, manifest values, zone, commune and title text: escaped wherever they land."""
    import json
    import re

    pages = []
    for folder, grid_name, name in (("plain", "grid.csv", "Nord"), ("hostile", "grid<!--<script>.csv", HOSTILE_TEXT)):
        (tmp_path / folder).mkdir()
        geo = small_geography(tmp_path / folder, grid_name, name)
        communes = gpd.GeoDataFrame({"code": ["80021"], "name": [name]}, geometry=[geo.cells.union_all()], crs=3035)
        communes.to_crs(4326).to_file(tmp_path / folder / "communes.geojson")
        fmap = interactive_map(geo, title=f"Titre {name}", context=tmp_path / folder / "communes.geojson")
        path = save_map(fmap, tmp_path / folder / "carte.html", self_contained=False)
        pages.append((path.read_text(encoding="utf-8"), geo))
    (plain, _), (hostile, geo) = pages
    assert script_structure(hostile) == script_structure(plain)  # no script closed, opened or commented out
    tag = re.search(r'<script type="application/json" id="carroyage-manifest">(.*?)</script>', hostile, re.S)
    assert json.loads(tag.group(1))["command"] == geo.manifest["command"]  # the same text, escaped
    assert "grid<!--<script>.csv" in json.loads(tag.group(1))["inputs"]["grid"]["path"]


def test_static_map_shows_dollars_and_hostile_text_as_text(tmp_path):
    geo = small_geography(tmp_path, "grid.csv", "Cité $\\frac{$ 10 $")
    path = static_map(geo, tmp_path / "s.png", title="Coût $\\frac{$ 14 500 $")  # mathtext would refuse it
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_tableau_link_is_a_relative_url_whatever_the_file_is_called(tmp_path):
    from carroyage.jobs import map_file

    geo = small_geography(tmp_path, "grid.csv", "Nord")
    written = tmp_path / "geo.gpkg"
    write_geography(geo, written)
    official = gpd.GeoDataFrame(
        {"code_qp": ["QN08099Z"], "lib_qp": ["Essai"]}, geometry=[geo.qpv.union_all()], crs=3035
    ).to_crs(4326)
    official.to_file(tmp_path / "official.geojson")
    tableau = tmp_path / "javascript:alert(1)#x.html"
    page = map_file(written, tmp_path / "carte.html", official=tmp_path / "official.geojson", tableau=tableau)[0]
    html = page.read_text(encoding="utf-8")
    assert '"javascript%3Aalert%281%29%23x.html#qpv-QN08099Z"' in html and "javascript:alert" not in html

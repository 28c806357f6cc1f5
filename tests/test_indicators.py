"""Tableaux de bord: indicators per zone against figures computed by hand, and the outputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from browser import browser_page
from conftest import X0, Y0, carroyage, cell_ids

from carroyage.around.indicators import read_indicator_grid, read_stats, read_zones, tableau, territories
from carroyage.data import AMIENS_2019, AMIENS_COMMUNES, QPV_2024, QPV_2024_STATS, VALIDATION_DIR
from carroyage.jobs import indicators_file

AGES = ("0_3", "4_5", "6_10", "11_17", "18_24", "25_39", "40_54", "55_64", "65_79", "80p")
AMIENS_QPV = ["QN08001M", "QN08002M", "QN08003M", "QN08004M", "QN08005M", "QN08006M", "QN08010N"]
HOSTILE = "<script>alert(1)</script>"
HAS_OPENPYXL = importlib.util.find_spec("openpyxl") is not None


@pytest.fixture(autouse=True)
def fixed_date(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def grid_frame(full: bool = True) -> pd.DataFrame:
    """Four cells in a row, west to east; the second is the one a zone cuts in half."""
    frame = pd.DataFrame(
        {
            "idcar_200m": cell_ids(np.arange(4), np.zeros(4, dtype=int)),
            "i_est_200": [0, 0, 1, 1],
            "ind": [100.0, 60.0, 30.0, 20.0],
            "men": [40.0, 20.0, 8.0, 6.0],
            "men_pauv": [10.0, 2.0, 1.0, 0.0],
            "men_1ind": [10.0, 6.0, 2.0, 1.0],
            "men_5ind": [4.0, 0.0, 1.0, 1.0],
            "men_fmp": [6.0, 2.0, 1.0, 0.0],
            "men_prop": [8.0, 10.0, 4.0, 5.0],
            "men_coll": [36.0, 12.0, 0.0, 0.0],
            "ind_snv": [1_500_000.0, 1_260_000.0, 700_000.0, 500_000.0],
        }
    )
    return frame if full else frame[["idcar_200m", "i_est_200", "ind", "ind_snv"]].assign(ind=[110.0, 60.0, 30.0, 20.0])


def age_frame() -> pd.DataFrame:
    """The four cells with Filosofi's ten age groups and ``ind_inc`` (unknown age), summing to ``ind``."""
    groups = np.array(
        [
            [4, 3, 6, 10, 8, 20, 22, 12, 10, 4],
            [2, 2, 4, 6, 6, 14, 12, 6, 6, 2],
            [1, 1, 2, 3, 3, 6, 6, 3, 3, 2],
            [0, 1, 1, 2, 2, 4, 4, 2, 2, 1],
        ],
        dtype=float,
    )
    frame = grid_frame().assign(**{f"ind_{group}": groups[:, i] for i, group in enumerate(AGES)})
    return frame.assign(ind_inc=frame["ind"] - groups.sum(axis=1))  # 1, 0, 0, 1


def zone_layer(path: Path, boxes: list[tuple[float, float]], codes: list[str], names: list[str] | None = None) -> Path:
    """Zones spanning ``x0..x1`` cell widths along the row of cells, in EPSG:3035."""
    shapes = [shapely.box(X0 + a * 200, Y0, X0 + b * 200, Y0 + 200) for a, b in boxes]
    frame = {"code": codes, "name": names or [f"zone {c}" for c in codes]}
    gpd.GeoDataFrame(frame, geometry=shapes, crs="EPSG:3035").to_file(path)
    return path


@pytest.fixture
def hand_grid(write_csv) -> Path:
    return write_csv(grid_frame(), "grid2019.csv")


def run(zones: Path, grids: list[Path], stats: Path | None = None) -> pd.DataFrame:
    loaded = [read_indicator_grid(path, f"g{i}") for i, path in enumerate(grids)]
    places = territories(read_zones(zones), loaded[0].extent, loaded[0].crs)
    return tableau(places, loaded, read_stats(stats) if stats else None)


def test_a_zone_cutting_a_cell_in_half_counts_half_of_it(hand_grid, tmp_path):
    zones = zone_layer(tmp_path / "z.gpkg", [(0, 1.5)], ["Z1"])
    table = run(zones, [hand_grid]).set_index("code")
    zone = table.loc["Z1"]
    # by hand: cell 0 whole, cell 1 half
    assert zone["residents"] == pytest.approx(100 + 60 / 2)
    assert zone["households"] == pytest.approx(40 + 20 / 2)
    assert zone["one_person_share"] == pytest.approx(round((10 + 3) / 50, 4))
    assert zone["owner_share"] == pytest.approx(round((8 + 5) / 50, 4))
    assert zone["mean_living_standard"] == pytest.approx(round((1_500_000 + 630_000) / 130))
    assert zone["household_poverty_rate"] == pytest.approx(round(11 / 50, 4))
    assert zone["method"] == "area-weighted" and zone["low_income_method"] == "estimated"
    assert 0 < zone["low_income_share"] < 1
    whole = table.loc["grid"]
    assert whole["method"] == "counted" and whole["residents"] == pytest.approx(210)
    assert not any(column.startswith("age_") for column in table.columns)  # the grid has no age groups


def test_few_households_or_imputed_cells_make_figures_fragile(hand_grid, tmp_path):
    zones = zone_layer(tmp_path / "z.gpkg", [(0, 1), (2, 3), (3, 4), (2, 4)], ["OK", "SMALL", "TINY", "IMPUTED"])
    table = run(zones, [hand_grid]).set_index("code")
    assert not table.at["OK", "fragile"]
    assert table.at["SMALL", "fragile_reason"] == "few households;mostly imputed"  # 8 households, imputed cell
    assert table.at["IMPUTED", "fragile_reason"] == "mostly imputed"  # 14 households, all imputed
    assert table.at["IMPUTED", "imputed_share"] == 1.0 and table.at["OK", "imputed_share"] == 0.0


def test_two_vintages_give_the_change_and_leave_missing_columns_empty(hand_grid, write_csv, tmp_path):
    new = write_csv(grid_frame(full=False), "grid2021.csv")
    zones = zone_layer(tmp_path / "z.gpkg", [(0, 1.5)], ["Z1"])
    result = indicators_file(zones, [hand_grid, new], tmp_path / "t.csv")
    zone = result.table.set_index("code").loc["Z1"]
    assert zone["residents_2019"] == pytest.approx(130) and zone["residents_2021"] == pytest.approx(140)
    assert zone["residents_change"] == pytest.approx(10)
    assert np.isnan(zone["households_2021"]) and np.isnan(zone["households_change"])  # never zero
    assert zone["households_2019"] == pytest.approx(50)
    written = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False).set_index("code")
    assert written.at["Z1", "households_2021"] == "" and written.at["Z1", "households_change"] == ""
    assert written.at["Z1", "residents_change"] == "10.0"


def test_no_change_where_the_two_grids_cover_a_territory_differently(hand_grid, write_csv, tmp_path):
    new = write_csv(grid_frame().iloc[:3], "grid2021.csv")  # the eastern cell is cut off
    zones = zone_layer(tmp_path / "z.gpkg", [(0, 1.5), (2.5, 4)], ["INSIDE", "EDGE"])
    table = indicators_file(zones, [hand_grid, new], tmp_path / "t.csv").table.set_index("code")
    assert table.at["INSIDE", "residents_change"] == 0 and table.at["INSIDE", "grid_coverage_2021"] == 1
    assert table.at["EDGE", "grid_coverage_2021"] == pytest.approx(1 / 3, abs=1e-4)
    assert table.at["grid", "grid_coverage_2019"] == 1 and table.at["grid", "grid_coverage_2021"] == 0.75
    assert table.loc[["EDGE", "grid"], ["residents_change", "households_change"]].isna().all().all()
    assert table.at["grid", "residents_2021"] == pytest.approx(190)  # shown, just not compared


def test_insee_figures_stand_beside_the_grid_with_their_ratio(hand_grid, tmp_path):
    stats = tmp_path / "stats.csv"
    stats.write_text(
        "COG,codeQPV,lib_qp,popMuniQPV,nombre_menages,taux_pauvrete_60%\n"
        "1,QN00001M,Two communes,150,60,50\n"
        "2,QN00001M,Two communes,50,20,30\n"
        "3,QN00002M,Elsewhere,999,400,40\n",
        encoding="utf-8",
    )
    zones = zone_layer(tmp_path / "z.gpkg", [(0, 1.5), (2, 4)], ["QN00001M", "OTHER"])
    table = run(zones, [hand_grid], stats).set_index("code")
    qpv = table.loc["QN00001M"]
    assert qpv["zone_type"] == "qpv" and table.at["OTHER", "zone_type"] == "zone"
    assert qpv["insee_population"] == 200 and qpv["insee_households"] == 80  # one row per commune, summed
    assert qpv["insee_poverty_rate"] == pytest.approx((150 * 0.5 + 50 * 0.3) / 200)
    assert qpv["population_ratio"] == pytest.approx(round(130 / 200, 3))
    assert qpv["poverty_ratio"] == pytest.approx(round(0.22 / 0.45, 3), abs=1e-3)
    assert np.isnan(table.at["OTHER", "insee_population"]) and np.isnan(table.at["OTHER", "population_ratio"])


@pytest.fixture(scope="module")
def amiens(tmp_path_factory):
    """The Amiens tableau, written twice, each run in its own folder with the same relative names."""
    base = tmp_path_factory.mktemp("tableau")
    args = [QPV_2024, "--grid", AMIENS_2019, "--stats", QPV_2024_STATS, "--reference", AMIENS_COMMUNES]
    runs = []
    for name in ("run1", "run2"):
        (base / name).mkdir()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SOURCE_DATE_EPOCH", "1700000000")
            patch.chdir(base / name)
            runs.append(carroyage("indicators", *args, "--out", "tableau.csv", "--html", "tableau.html", "-q"))
    return base / "run1", runs


def test_the_amiens_tableau_has_a_row_per_official_qpv_and_reference(amiens):
    out, runs = amiens
    assert runs[0].returncode == 0, runs[0].stderr
    table = pd.read_csv(out / "tableau.csv", dtype={"code": str, "communes": str})
    zones = table[table["kind"] == "zone"]
    assert zones["code"].tolist() == AMIENS_QPV
    assert table.loc[table["kind"] != "zone", ["kind", "code"]].values.tolist() == [
        ["commune", "80021"],
        ["epci", "epci"],
        ["grid", "grid"],
    ]
    assert zones["population_ratio"].between(0.5, 0.92).all()  # the gap with INSEE, shown
    assert table.set_index("code").at["QN08003M", "insee_population"] == 14_747
    assert zones["low_income_method"].eq("estimated").all() and zones["method"].eq("area-weighted").all()
    manifest = json.loads((out / "tableau.csv.manifest.json").read_text(encoding="utf-8"))
    assert manifest["stage"] == "indicators" and manifest["grids"][0]["threshold"] > 0
    for name in ("tableau.csv", "tableau.csv.manifest.json", "tableau.html"):  # same inputs, same bytes
        assert (out / name).read_bytes() == (out.parent / "run2" / name).read_bytes()


def test_the_html_tableau_renders_in_french_in_chromium(amiens, tmp_path):
    out, _ = amiens
    text = (out / "tableau.html").read_text(encoding="utf-8")
    assert "<link" not in text and "src=" not in text  # self-contained
    with browser_page() as page:
        page.goto((out / "tableau.html").as_uri())
        section = page.locator("#qpv-QN08003M")
        residents = section.locator("tbody tr").first.locator("td").first.inner_text()
        assert residents == "11\u202f186"
        assert "%" in section.locator("tbody tr").nth(2).locator("td").first.inner_text()
        manifest = json.loads(page.locator("#manifest").text_content())
        assert manifest["stage"] == "indicators"
        page.set_viewport_size({"width": 1200, "height": 1400})
        page.screenshot(path="/tmp/tableau.png")
        assert page.errors == []


def test_hostile_zone_names_are_shown_not_run(hand_grid, tmp_path):
    zones = zone_layer(tmp_path / "z.gpkg", [(0, 2)], ["Z<1>"], [HOSTILE])
    html = tmp_path / "t.html"
    indicators_file(zones, [hand_grid], tmp_path / "t.csv", html=html)
    text = html.read_text(encoding="utf-8")
    assert HOSTILE not in text
    with browser_page() as page:
        page.goto(html.as_uri())
        assert HOSTILE in page.locator("h2").first.inner_text()
        assert page.dialogs == [] and page.errors == []


@pytest.mark.skipif(not HAS_OPENPYXL, reason="openpyxl is not installed")
def test_the_workbook_has_french_headers_and_is_reproducible(hand_grid, tmp_path):
    import openpyxl

    zones = zone_layer(tmp_path / "z.gpkg", [(0, 1.5), (2, 3)], ["Z1", "SMALL"])
    for name in ("a", "b"):
        indicators_file(zones, [hand_grid], tmp_path / "t.csv", xlsx=tmp_path / f"{name}.xlsx")
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    sheet = openpyxl.load_workbook(tmp_path / "a.xlsx")["Tableau"]
    assert sheet["G1"].value == "Habitants" and sheet["G2"].value == pytest.approx(130)
    header = [cell.value for cell in sheet[1]]
    row = dict(zip(header, [cell.value for cell in sheet[3]], strict=True))  # SMALL, its words in French
    assert row["Territoire"] == "zone" and row["Méthode"] == "compté"
    assert row["Motif de fragilité"] == "moins de 11 ménages, carreaux majoritairement imputés"
    assert sheet["A4"].value == "Ensemble du carroyage"


@pytest.mark.skipif(HAS_OPENPYXL, reason="openpyxl is installed")
def test_xlsx_without_openpyxl_fails_in_one_line(hand_grid, tmp_path):
    zones = zone_layer(tmp_path / "z.gpkg", [(0, 1)], ["Z1"])
    ran = carroyage(
        "indicators", zones, "--grid", hand_grid, "--out", tmp_path / "t.csv", "--xlsx", tmp_path / "t.xlsx"
    )
    assert ran.returncode == 2 and "openpyxl est nécessaire" in ran.stderr and len(ran.stderr.splitlines()) == 1
    assert not (tmp_path / "t.csv").exists()


def test_bad_inputs_get_one_line_naming_the_file(hand_grid, write_csv, tmp_path):
    zones = zone_layer(tmp_path / "z.gpkg", [(0, 1)], ["Z1"])
    far = tmp_path / "far.gpkg"
    gpd.GeoDataFrame({"code": ["F"]}, geometry=[shapely.box(0, 0, 10, 10)], crs="EPSG:3035").to_file(far)
    points = tmp_path / "points.gpkg"
    gpd.GeoDataFrame({"code": ["P"]}, geometry=[shapely.Point(X0, Y0)], crs="EPSG:3035").to_file(points)
    stats = write_csv(pd.DataFrame({"code": ["Z1"], "pop": [1]}), "stats.csv")
    negative = write_csv(grid_frame().assign(men_1ind=[1.0, -2.0, 0.0, 0.0]), "negative.csv")
    text = tmp_path / "text.gpkg"  # counts stored as text fields, one with a decimal comma
    x = X0 + np.arange(4) * 200
    squares = shapely.box(x, Y0, x + 200, Y0 + 200)
    frame = grid_frame().assign(men_1ind=["10", "6,5", "2", "1"])
    gpd.GeoDataFrame(frame, geometry=squares, crs="EPSG:3035").to_file(text)
    cases = [
        ([far, "--grid", hand_grid], "far.gpkg : aucune zone ne rencontre l'emprise du carroyage"),
        ([points, "--grid", hand_grid], "points.gpkg : l'entité 1 est un Point ; attendu des polygones"),
        ([zones, "--grid", hand_grid, "--stats", stats], "stats.csv : pas de colonne codeqpv, popmuniqpv"),
        ([zones, "--grid", negative], "negative.csv : ligne 3 : la colonne 'men_1ind' vaut -2 ; attendu un nombre ≥ 0"),
        ([zones, "--grid", text], "text.gpkg : entité 2 : la colonne 'men_1ind' contient '6,5' ; attendu un nombre"),
        ([zones, "--grid", tmp_path / "none.csv"], "none.csv : fichier introuvable"),
    ]
    for args, message in cases:
        ran = carroyage("indicators", *args, "--out", tmp_path / "t.csv", "-q")
        assert ran.returncode == 2, (args, ran.stderr)
        assert message in ran.stderr and len(ran.stderr.splitlines()) == 1, ran.stderr
    assert not (tmp_path / "t.csv").exists()


def test_age_groups_of_a_zone_cutting_a_cell_in_half_are_area_weighted_and_sum_to_one(write_csv, tmp_path):
    grid = write_csv(age_frame(), "grid2019.csv")
    zones = zone_layer(tmp_path / "z.gpkg", [(0, 1.5)], ["Z1"])
    html, xlsx = tmp_path / "t.html", tmp_path / "t.xlsx"
    result = indicators_file(zones, [grid], tmp_path / "t.csv", html=html, xlsx=xlsx if HAS_OPENPYXL else None)
    zone = result.table.set_index("code").loc["Z1"]
    # by hand: cell 0 whole (100 residents), cell 1 half (30 of its 60)
    assert zone["age_0_3_share"] == pytest.approx(round((4 + 2 / 2) / 130, 4))
    assert zone["age_25_39_share"] == pytest.approx(round((20 + 14 / 2) / 130, 4))
    assert zone["age_80p_share"] == pytest.approx(round((4 + 2 / 2) / 130, 4))
    assert zone["age_unknown_share"] == pytest.approx(round(1 / 130, 4))
    shares = [f"age_{group}_share" for group in (*AGES, "unknown")]
    assert result.table[shares].sum(axis=1).to_numpy() == pytest.approx([1, 1], abs=6e-4)  # 11 rounded shares
    assert zone["method"] == "area-weighted"
    text = html.read_text(encoding="utf-8")
    assert '<tr><th>Part des 0-3 ans</th><td class="zone">3,8\u202f%</td>' in text  # 5 / 130
    assert "<th>Part des habitants d&#x27;âge inconnu</th>" in text
    if HAS_OPENPYXL:
        import openpyxl

        sheet = openpyxl.load_workbook(xlsx)["Tableau"]
        header = [cell.value for cell in sheet[1]]
        column = header.index("Part des 0-3 ans") + 1
        assert sheet.cell(2, column).value == pytest.approx(5 / 130) and sheet.cell(2, column).number_format == "0.0%"


def test_the_same_grid_gives_the_same_tableau_from_csv_geopackage_shapefile_and_parquet(write_csv, tmp_path):
    frame = age_frame()
    x = X0 + np.arange(len(frame)) * 200
    cells = gpd.GeoDataFrame(frame, geometry=shapely.box(x, Y0, x + 200, Y0 + 200), crs="EPSG:3035")
    cells = cells.to_crs("EPSG:2154")  # as INSEE ships them; the readers go by the cell ids
    paths = [write_csv(frame, "grid.csv"), write_csv(frame, "grid_semicolon.csv", sep=";")]
    cells.to_file(paths[-1].with_name("grid.gpkg"))
    cells.rename(columns=str.upper).rename(columns={"GEOMETRY": "geometry"}).to_file(tmp_path / "grid.shp")
    cells.to_parquet(tmp_path / "grid.parquet")
    frame.rename(columns={"men_1ind": "Men_1ind", "ind_0_3": "Ind_0_3"}).to_parquet(tmp_path / "plain.parquet")
    paths += [tmp_path / name for name in ("grid.gpkg", "grid.shp", "grid.parquet", "plain.parquet")]
    zones = zone_layer(tmp_path / "z.gpkg", [(0, 1.5), (1.5, 4)], ["Z1", "Z2"])
    tables = [run(zones, [path]) for path in paths]
    assert tables[0][["one_person_share", "collective_share", "age_0_3_share", "age_unknown_share"]].notna().all().all()
    for path, table in zip(paths[1:], tables[1:], strict=True):
        pd.testing.assert_frame_equal(table, tables[0], obj=path.name)


def test_real_amiens_cells_under_real_perimeters_match_an_independent_overlay(write_csv, tmp_path):
    """The shipped 2019 grid has no age columns: synthetic ones (seeded) are added to its real cells."""
    frame = pd.read_csv(AMIENS_2019, dtype={"idcar_200m": str, "lcog_geo": str})
    fractions = np.random.default_rng(17).dirichlet(np.ones(len(AGES) + 1), size=len(frame))
    ages = {f"ind_{group}": frame["ind"] * fractions[:, i] for i, group in enumerate(AGES)}
    frame = frame.assign(**ages, ind_inc=frame["ind"] * fractions[:, -1])
    grid, zones = write_csv(frame, "filosofi2019.csv"), VALIDATION_DIR / "amiens" / "qpv2024.gpkg"
    ran = carroyage("indicators", zones, "--grid", grid, "--out", tmp_path / "t.csv", "-q")
    assert ran.returncode == 0, ran.stderr
    table = pd.read_csv(tmp_path / "t.csv", dtype={"code": str}).set_index("code")
    # independently: squares from the ids, geopandas' overlay, each piece weighted by its area
    corner = frame["idcar_200m"].str.extract(r"N(?P<y>\d+)E(?P<x>\d+)").astype(float)
    squares = shapely.box(corner["x"], corner["y"], corner["x"] + 200, corner["y"] + 200)
    cells = gpd.GeoDataFrame(frame, geometry=squares, crs="EPSG:3035")
    pieces = gpd.overlay(cells, gpd.read_file(zones)[["code_qp", "geometry"]], how="intersection")
    weighted = pieces.drop(columns="geometry").select_dtypes("number").mul(pieces.area / 200**2, axis=0)
    sums = weighted.groupby(pieces["code_qp"]).sum()
    assert sorted(sums.index) == AMIENS_QPV == table.index[table["kind"] == "zone"].tolist()
    expected = pd.DataFrame(
        {
            "residents": sums["ind"],
            "age_0_3_share": sums["ind_0_3"] / sums["ind"],
            "age_80p_share": sums["ind_80p"] / sums["ind"],
            "age_unknown_share": sums["ind_inc"] / sums["ind"],
            "one_person_share": sums["men_1ind"] / sums["men"],
            "single_parent_share": sums["men_fmp"] / sums["men"],
        }
    )
    got = table.loc[AMIENS_QPV, expected.columns]
    assert got["residents"].to_numpy() == pytest.approx(expected.loc[AMIENS_QPV, "residents"].to_numpy(), abs=0.06)
    shares = expected.columns[1:]
    assert got[shares].to_numpy() == pytest.approx(expected.loc[AMIENS_QPV, shares].to_numpy(), abs=6e-5)

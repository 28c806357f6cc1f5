"""Files as a GIS user opens them: one CRS per file (Lambert-93 by default), QGIS styles, NULLs.

Every command that writes a GeoPackage or GeoParquet takes ``--out-crs``; every command that reads
a carroyage file reads it back in whatever CRS it holds (the grid's CRS in memory).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from conftest import X0, Y0, carroyage, filosofi_frame
from pyproj import CRS, Transformer

from carroyage.engine.grid import format_ids, parse_ids
from carroyage.geography import read_geography
from carroyage.publish.output import _distinct, projected_squares

POOR = {(c, r) for c in range(2, 6) for r in range(2, 5)}  # 1,200 residents: one quartier
DELIMIT = ("--national-median", "22040", "-q")


def epsg_of(path, layer):
    return CRS.from_user_input(pyogrio.read_info(path, layer=layer)["crs"]).to_epsg()


def spatial_layers(path):
    return [name for name, kind in pyogrio.list_layers(path) if kind is not None]


@pytest.fixture
def grid(write_csv):
    return write_csv(filosofi_frame(POOR, size=10))


@pytest.fixture
def delimited(grid, tmp_path):
    out = tmp_path / "geo.gpkg"
    ran = carroyage("delimit", grid, "--out", out, *DELIMIT)
    assert ran.returncode == 0, ran.stderr
    return out


def test_delimit_writes_what_qgis_expects(delimited):
    """Read back as QGIS does: CRS, layer_styles rows matching table and geometry column, NULLs."""
    assert set(spatial_layers(delimited)) == {"cells", "qpv"}
    assert {epsg_of(delimited, layer) for layer in spatial_layers(delimited)} == {2154}
    styles = pyogrio.read_dataframe(delimited, layer="layer_styles", read_geometry=False)
    assert set(styles["f_table_name"]) == {"cells", "qpv"} and styles["useAsDefault"].all()
    for row in styles.itertuples():  # QGIS looks a default style up by table *and* geometry column
        assert row.f_geometry_column == pyogrio.read_info(delimited, layer=row.f_table_name)["geometry_name"]
        assert row.f_table_schema == "" and row.styleQML.startswith("<!DOCTYPE qgis")
    cells = pyogrio.read_dataframe(delimited, layer="cells")
    inside = cells["qpv"].notna()
    assert 0 < inside.sum() < len(cells) and not (cells["qpv"] == "").any()  # NULL outside, never ''
    info = pyogrio.read_info(delimited, layer="qpv")
    assert dict(zip(info["fields"], info["dtypes"], strict=True))["population"] == "int64"


def test_cells_in_lambert93_are_inspire_cells_that_still_tile(delimited):
    cells = gpd.read_file(delimited, layer="cells")
    corners = shapely.get_coordinates(cells.geometry.to_numpy()).reshape(len(cells), 5, 2)
    back = Transformer.from_crs(2154, 3035, always_xy=True)
    x, y = back.transform(corners[:, 0, 0], corners[:, 0, 1])  # each ring starts at its lower-left corner
    named = parse_ids(cells["idcar_200m"].to_numpy())
    assert np.abs(x - named.x).max() < 1e-3 and np.abs(y - named.y).max() < 1e-3
    areas = shapely.area(cells.geometry.to_numpy())
    union = shapely.union_all(cells.geometry.to_numpy())
    assert union.geom_type == "Polygon" and len(union.interiors) == 0  # no gap between neighbours...
    assert union.area == pytest.approx(areas.sum(), rel=1e-9)  # ...and no overlap
    assert areas.min() > 39_000 and areas.max() < 41_000  # 200 m squares, slightly scaled by Lambert-93


def test_projected_corners_are_transformed_once_and_exactly():
    x = np.array([0, 200, 0, 600, 5000]) + X0
    y = np.array([0, 0, 200, 0, 5000]) + Y0
    transformer = Transformer.from_crs(3035, 2154, always_xy=True)
    rings = shapely.get_coordinates(shapely.from_wkb(projected_squares(x, y, 200, transformer).to_numpy(False)))
    rings = rings.reshape(len(x), 5, 2)
    offsets = [(0, 0), (200, 0), (200, 200), (0, 200), (0, 0)]
    for position, (dx, dy) in enumerate(offsets):
        expected = np.column_stack(transformer.transform(x + dx, y + dy))
        assert np.array_equal(rings[:, position], expected)
    assert np.array_equal(rings[0, 1], rings[1, 0]) and np.array_equal(rings[0, 3], rings[2, 0])  # shared corners
    keys = np.array([7, 3, 3, 0, 9, 7])
    for frame in (10, 10_000):  # both ways of finding distinct corners agree
        distinct, index = _distinct(keys, frame)
        assert distinct.tolist() == [0, 3, 7, 9] and np.array_equal(distinct[index], keys)


@pytest.mark.parametrize("crs", ["EPSG:3035"])
def test_out_crs_chooses_the_crs_of_every_layer(grid, tmp_path, crs):
    out = tmp_path / "x.gpkg"
    assert carroyage("delimit", grid, "--out", out, "--out-crs", crs, *DELIMIT).returncode == 0
    expected = int(crs.removeprefix("EPSG:"))
    assert {epsg_of(out, layer) for layer in spatial_layers(out)} == {expected}
    back = read_geography(out)
    assert back.cells.crs.to_epsg() == 3035 and (back.cell_table["x"] % 200 == 0).all()


def test_an_out_crs_for_another_territory_is_written_with_a_warning(grid, tmp_path):
    ran = carroyage("delimit", grid, "--out", tmp_path / "x.gpkg", "--out-crs", "5490", *DELIMIT)
    assert ran.returncode == 0 and epsg_of(tmp_path / "x.gpkg", "qpv") == 5490
    warning = [line for line in ran.stderr.splitlines() if line.startswith("carroyage : avertissement :")]
    assert len(warning) == 1 and "EPSG:5490" in warning[0] and "faute de frappe" in warning[0], ran.stderr


def test_a_wrong_out_crs_is_one_line_before_anything_is_read(tmp_path):
    grid = tmp_path / "grid.csv"
    grid.write_text("not a grid\n")  # never read: the CRS is refused first
    for command in (
        ("delimit", grid, "--out", tmp_path / "x.gpkg", "--out-crs", "EPSG:99999"),
        ("compare", grid, grid, "--out", tmp_path / "c.gpkg", "--out-crs", "lambert"),
        ("export", grid, "--out", tmp_path / "e.gpkg", "--crs", "99999"),
    ):
        ran = carroyage(*command)
        lines = ran.stderr.strip().splitlines()
        assert ran.returncode == 2 and len(lines) == 1 and "système de coordonnées inconnu" in lines[0], ran.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.csv"]


def test_an_overseas_grid_stays_in_its_own_crs(write_csv, tmp_path):
    frame = filosofi_frame(POOR, size=10)
    corner = parse_ids(frame["idcar_200m"].to_numpy())
    # the same cells moved to La Réunion, in the local CRS INSEE builds its grid in (UTM 40S)
    frame["idcar_200m"] = format_ids(corner.x - X0 + 340_000, corner.y - Y0 + 7_650_000, 200, 2975)
    out = tmp_path / "reunion.gpkg"
    ran = carroyage("delimit", write_csv(frame), "--out", out, *DELIMIT)
    assert ran.returncode == 0, ran.stderr
    assert {epsg_of(out, layer) for layer in spatial_layers(out)} == {2975}


def test_every_reader_takes_a_lambert93_geography(grid, delimited, tmp_path):
    official = official_layer(delimited, tmp_path / "official.geojson")
    geo = read_geography(delimited)
    assert geo.cells.crs.to_epsg() == 3035 and geo.qpv.crs.to_epsg() == 3035
    named = parse_ids(geo.cell_table["idcar_200m"].to_numpy())
    assert np.array_equal(geo.cell_table["x"], named.x) and np.array_equal(geo.cell_table["y"], named.y)
    for command in (
        ("validate", delimited, "--official", official),
        ("zones", delimited),
        ("compare", official, delimited, "--out", tmp_path / "c.gpkg"),
        ("map", delimited, "--out", tmp_path / "m.html"),
        ("export", delimited, "--out", tmp_path / "e.gpkg"),
        ("indicators", delimited, "--grid", grid, "--out", tmp_path / "i.csv", "-q"),
    ):
        ran = carroyage(*command)
        assert ran.returncode == 0, (command[0], ran.stderr)
    assert {epsg_of(delimited, layer) for layer in spatial_layers(delimited)} == {2154}  # zones kept it
    inside = geo.qpv.to_crs(4326).geometry.iloc[0].representative_point()
    located = carroyage("locate", "--lon", f"{inside.x:.6f}", "--lat", f"{inside.y:.6f}", "--zones", delimited)
    assert located.returncode == 0 and "DANS la zone" in located.stdout, located.stderr
    assert "QC001" in located.stdout


def test_zones_with_another_out_crs_rewrites_the_whole_file(delimited):
    assert carroyage("zones", delimited, "--out-crs", "3035").returncode == 0
    assert set(spatial_layers(delimited)) == {"cells", "qpv", "quartier_vecu", "veille_active"}
    assert {epsg_of(delimited, layer) for layer in spatial_layers(delimited)} == {3035}
    styles = pyogrio.read_dataframe(delimited, layer="layer_styles", read_geometry=False)
    assert set(styles["f_table_name"]) == set(spatial_layers(delimited))


def official_layer(geography, path):
    """An ANCT-style layer: one QPV over the computed quartier, one touching it only at an edge."""
    quartier = read_geography(geography).qpv.union_all()
    west, south, east, north = quartier.bounds
    touching = shapely.box(east - 10, south, east + 2000, north)  # overlaps the quartier by a 10 m strip
    layer = gpd.GeoDataFrame(
        {"code_qp": ["QN08098Z", "QN08099Z"], "lib_qp": ["Dessus", "Voisin"]}, geometry=[quartier, touching], crs=3035
    )
    layer.to_crs(4326).to_file(path)
    return path


def test_compare_names_official_qpv_and_counts_whole_residents(delimited, tmp_path):
    out = tmp_path / "c.gpkg"
    ran = carroyage("compare", official_layer(delimited, tmp_path / "official.geojson"), delimited, "--out", out)
    assert ran.returncode == 0, ran.stderr
    assert {epsg_of(out, layer) for layer in spatial_layers(out)} == {2154}
    styles = pyogrio.read_dataframe(out, layer="layer_styles", read_geometry=False)
    assert set(styles["f_table_name"]) == {"new", "modified", "unchanged", "left"}
    tables = {}
    for layer in spatial_layers(out):
        info = pyogrio.read_info(out, layer=layer)
        fields = dict(zip(info["fields"], info["dtypes"], strict=True))
        assert {"code_qp", "lib_qp"} <= set(fields) and fields["residents_gained"] == "int64"
        tables[layer] = pyogrio.read_dataframe(out, layer=layer, read_geometry=False)
        assert not (tables[layer] == "").any().any()  # absent text is NULL
    # the quartier matches the QPV under it, not the one it only touches; the one it left keeps its own
    assert tables["unchanged"][["code", "code_qp", "lib_qp"]].values.tolist() == [["QC001", "QN08098Z", "Dessus"]]
    assert tables["left"][["code", "code_qp"]].values.tolist() == [["QN08099Z", "QN08099Z"]]
    assert tables["unchanged"]["detail"].isna().all()


def test_parquet_cells_carry_their_crs_and_tight_bbox(grid, tmp_path):
    out = tmp_path / "x.parquet"
    assert carroyage("delimit", grid, "--out", out, *DELIMIT).returncode == 0
    meta = json.loads(pq.read_schema(tmp_path / "x.cells.parquet").metadata[b"geo"])["columns"]["geometry"]
    assert CRS.from_json_dict(meta["crs"]).to_epsg() == 2154
    cells = gpd.read_parquet(tmp_path / "x.cells.parquet")
    assert meta["bbox"] == pytest.approx(list(cells.total_bounds), abs=1e-6)
    assert cells["qpv"].isna().any() and not (cells["qpv"] == "").any()
    assert gpd.read_parquet(tmp_path / "x.qpv.parquet").crs.to_epsg() == 2154


def test_lambert93_outputs_are_reproducible(grid, tmp_path, monkeypatch):
    """Two runs on the same inputs, from folders of their own (commands are in the manifests)."""
    import shutil

    made = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        monkeypatch.chdir(tmp_path / run)
        shutil.copy(grid, "grid.csv")
        assert carroyage("delimit", "grid.csv", "--out", "geo.gpkg", *DELIMIT).returncode == 0
        official = official_layer("geo.gpkg", tmp_path / run / "official.geojson").name
        assert carroyage("zones", "geo.gpkg").returncode == 0
        assert carroyage("compare", official, "geo.gpkg", "--out", "compare.gpkg").returncode == 0
        made.append((Path("geo.gpkg").read_bytes(), Path("compare.gpkg").read_bytes()))
    assert made[0] == made[1]

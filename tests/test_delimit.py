import numpy as np
import pandas as pd
import pytest
from conftest import cell_ids, filosofi_frame

from carroyage import Grid, cluster_cells, delimit, read_grid
from carroyage.engine.grid import parse_ids


def block(c0, r0, width, height):
    return {(c, r) for c in range(c0, c0 + width) for r in range(r0, r0 + height)}


def test_rook_and_queen_differ_on_diagonal_cells():
    x = np.array([0, 200, 400, 400]) + 3_000_000
    y = np.array([0, 200, 0, 600]) + 2_000_000
    grid = Grid.around(x, y, 200)
    flagged = np.ones(4, dtype=bool)
    rook = cluster_cells(grid, flagged, "rook")
    queen = cluster_cells(grid, flagged, "queen")
    assert rook.count == 4
    assert queen.count == 2  # three diagonal neighbours join, the lone northern cell stays apart
    assert len(set(queen.of_cell[:3])) == 1 and queen.of_cell[3] != queen.of_cell[0]


def positions(cells):
    cols, rows = np.array(sorted(cells)).T
    return Grid.around(cols * 200 + 3_000_000, rows * 200 + 2_000_000, 200), np.ones(len(cols), dtype=bool)


@pytest.mark.parametrize(
    "shape,gap,contiguity,filled",
    [
        (block(0, 0, 3, 3) - {(1, 1)}, 1, "rook", 9),  # one enclosed cell joins
        (block(0, 0, 3, 3) - {(1, 1)}, 0, "rook", 8),  # gap filling off
        (block(0, 0, 4, 3) - {(1, 1), (2, 1)}, 1, "rook", 10),  # a 2-cell gap is larger than 1
        (block(0, 0, 4, 3) - {(1, 1), (2, 1)}, 4, "rook", 12),
        (block(0, 0, 3, 3) - {(1, 1), (1, 2)}, 4, "rook", 7),  # open to the north: a bay, not a hole
        ({(1, 0), (0, 1), (2, 1), (1, 2)}, 1, "queen", 5),  # a diamond encloses its centre
        ({(1, 0), (0, 1), (2, 1), (1, 2)}, 1, "rook", 4),  # ...but rook cells do not touch at all
    ],
)
def test_gap_filling_joins_enclosed_gaps_only(shape, gap, contiguity, filled):
    grid, flagged = positions(shape)
    clusters = cluster_cells(grid, flagged, contiguity, gap_fill_cells=gap)
    assert len(clusters.keys) == filled


def test_a_poor_block_of_enough_residents_becomes_one_quartier(write_csv):
    frame = filosofi_frame(block(2, 2, 4, 3), size=10, residents=100.0)  # 12 cells, 1200 residents
    # the candidate cluster itself (no contour ring); the ring is tested in test_fidelity.py
    geo = delimit(read_grid(write_csv(frame)), "decree-2014", national_median=22_040, contour_ring_cells=0)
    assert len(geo.qpv) == 1
    q = geo.qpv.iloc[0]
    assert q["code"] == "QC001" and q["population"] == pytest.approx(1200) and q["cells"] == 12
    assert q["area_ha"] == pytest.approx(48.0) and q["estimated"]
    assert q["low_income_share"] > 0.5 and q["median_income"] < geo.manifest["threshold"]["value"]
    inside = geo.cells["qpv"] == "QC001"
    assert inside.sum() == 12 and geo.cells.loc[inside, "flagged"].all()
    # by default the contour takes in well-off neighbours while the quartier stays above one half
    ringed = delimit(read_grid(write_csv(frame)), "decree-2014", national_median=22_040).qpv.iloc[0]
    assert ringed["cells"] > 12 and 0.5 < ringed["low_income_share"] < q["low_income_share"]


def test_a_poor_block_below_the_minimum_population_is_left_out(write_csv):
    frame = filosofi_frame(block(2, 2, 3, 3), size=10, residents=100.0)  # 900 residents
    cells = read_grid(write_csv(frame))
    # counted on the candidate cluster (no ring): 900 < 1000. With the default ring the minimum is
    # counted on the drawn contour instead (tests/test_fidelity.py)
    assert len(delimit(cells, "decree-2014", national_median=22_040, contour_ring_cells=0).qpv) == 0
    kept = delimit(cells, "decree-2014", national_median=22_040, contour_ring_cells=0, min_population=800)
    assert len(kept.qpv) == 1


def test_contiguity_decides_whether_diagonal_blocks_merge(write_csv):
    poor = block(0, 0, 3, 2) | block(3, 2, 3, 2)  # two 600-resident blocks touching at one corner
    cells = read_grid(write_csv(filosofi_frame(poor, size=10)))
    # contiguity alone (no contour ring, which would bring each block to 1,000 on its own)
    assert len(delimit(cells, national_median=22_040, contiguity="rook", contour_ring_cells=0).qpv) == 0
    queen = delimit(cells, national_median=22_040, contiguity="queen", contour_ring_cells=0).qpv
    assert len(queen) == 1 and queen.iloc[0]["population"] == pytest.approx(1200)


def test_codes_follow_the_north_west_corner(write_csv):
    poor = block(0, 7, 4, 3) | block(6, 0, 4, 3)
    geo = delimit(read_grid(write_csv(filosofi_frame(poor, size=10))), national_median=22_040)
    north, south = geo.qpv.set_index("code").geometry.bounds["maxy"].loc[["QC001", "QC002"]]
    assert north > south


def test_small_agglomeration_holds_no_quartier(write_csv):
    cells = read_grid(write_csv(filosofi_frame(block(2, 2, 4, 3))))
    geo = delimit(cells, national_median=22_040, agglomeration_population=9_000)
    assert len(geo.qpv) == 0 and geo.manifest["agglomeration_eligible"] is False


def test_exact_population_low_is_not_estimated(write_csv):
    cols, rows = np.meshgrid(np.arange(6), np.arange(6))
    ids = cell_ids(cols.ravel(), rows.ravel())
    population = np.full(36, 100.0)
    low = np.where(cols.ravel() < 3, 60.0, 10.0)  # west half: 60 % below the threshold
    path = write_csv(pd.DataFrame({"idcar_200m": ids, "population": population, "population_low": low}))
    geo = delimit(read_grid(path), "decree-2014", agglomeration_population=50_000)
    assert len(geo.qpv) == 1
    q = geo.qpv.iloc[0]
    assert q["population"] == 1800 and q["low_income_share"] == pytest.approx(0.6) and not q["estimated"]
    assert geo.manifest["estimator"]["estimated"] is False


def test_exact_median_income_flags_cells_below_the_threshold(write_csv):
    cols, rows = np.meshgrid(np.arange(6), np.arange(6))
    median = np.where(cols.ravel() < 3, 9_000.0, 25_000.0)
    frame = pd.DataFrame(
        {"idcar_200m": cell_ids(cols.ravel(), rows.ravel()), "population": 100.0, "median_income": median}
    )
    geo = delimit(
        read_grid(write_csv(frame)),
        "decree-2014",
        national_median=21_120,
        agglomeration_median=17_000,
        agglomeration_population=50_000,
    )
    assert geo.manifest["threshold"]["value"] == 12_000  # 0.6 × (0.7 × 21120 + 0.3 × 17000) = 11930.4
    assert geo.cells["flagged"].sum() == 18 and len(geo.qpv) == 1


def test_real_amiens_grid_finds_the_largest_official_quartiers():
    from carroyage.around.validate import validate
    from carroyage.data import AMIENS_2019, QPV_2024
    from carroyage.layers import read_official

    geo = delimit(read_grid(AMIENS_2019), "decree-2014", national_median=22_040)
    official = read_official(QPV_2024)
    result = validate(geo.cells, official[official["insee_dep"] == "80"])
    covered = result.per_official.set_index("code_qp")["coverage"]
    assert covered["QN08003M"] > 0.6 and covered["QN08001M"] > 0.8  # Amiens Nord, Etouvie
    assert result.coverage > 0.6 and result.precision > 0.7


def test_a_shuffled_grid_is_written_in_raster_order_with_scoped_gdal_options(write_csv, tmp_path, monkeypatch):
    import pyogrio

    from carroyage.data import AMIENS_2019
    from carroyage.publish.output import write_geography

    monkeypatch.setattr("carroyage.publish.output.CELL_BATCH_ROWS", 1000)  # several batches, as for France
    shuffled_frame = pd.read_csv(AMIENS_2019, dtype={"lcog_geo": str}).sample(frac=1, random_state=0)
    geography = delimit(read_grid(write_csv(shuffled_frame)), "decree-2014", national_median=22_040)
    pyogrio.set_gdal_config_options({"OGR_SQLITE_JOURNAL": "WAL"})  # a caller's own setting
    try:
        write_geography(geography, tmp_path / "shuffled.gpkg", crs=3035)  # squares, to read the order off
        # our write options do not outlive the write: the caller's next GeoPackage keeps its journal
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_JOURNAL") == "WAL"
        assert pyogrio.get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS") is None
    finally:
        pyogrio.set_gdal_config_options({"OGR_SQLITE_JOURNAL": None})
    written = pyogrio.read_dataframe(tmp_path / "shuffled.gpkg", layer="cells")
    corner = written.geometry.bounds
    assert list(zip(-corner["miny"], corner["minx"])) == sorted(zip(-corner["miny"], corner["minx"]))
    named = parse_ids(written["idcar_200m"].to_numpy())  # each square is its own cell's
    assert (named.x == corner["minx"]).all() and (named.y == corner["miny"]).all()
    expected = geography.cell_table.set_index("idcar_200m").loc[written["idcar_200m"]].reset_index()
    assert written["qpv"].notna().any() and not (written["qpv"] == "").any()  # NULL outside every quartier
    pd.testing.assert_frame_equal(
        written.drop(columns="geometry").fillna({"qpv": ""}), expected.drop(columns=["x", "y"]), check_dtype=False
    )

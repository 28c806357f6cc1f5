import numpy as np
import pytest
import shapely

from carroyage import Grid, GridIdError, format_ids, parse_ids
from carroyage.engine.grid import square_wkb


@pytest.mark.parametrize("res,epsg", [(200, 3035), (1000, 3035), (200, 2975), (100, 5490)])
def test_ids_round_trip(res, epsg):
    rng = np.random.default_rng(1)
    x = rng.integers(10_000, 20_000, 50) * res
    y = rng.integers(10_000, 20_000, 50) * res
    ids = format_ids(x, y, res, epsg)
    parsed = parse_ids(ids)
    assert (parsed.epsg, parsed.resolution) == (epsg, res)
    assert np.array_equal(parsed.x, x) and np.array_equal(parsed.y, y)
    assert np.array_equal(format_ids(parsed.x, parsed.y, res, epsg), ids)


def test_real_id_is_lower_left_corner():
    parsed = parse_ids(["CRS3035RES200mN2999000E3763200"])
    assert (parsed.x[0], parsed.y[0]) == (3763200, 2999000)


@pytest.mark.parametrize(
    "bad,expected",
    [
        ("CRS3035RES200mN2999000", "ligne 2 : identifiant de carreau 'CRS3035RES200mN2999000' mal formé"),
        (  # 20 digits would overflow int64 (found by the long fuzzing profile)
            "CRS3035RES200mN29990000000000000000E3763200",
            "ligne 2 : identifiant de carreau 'CRS3035RES200mN29990000000000000000E3763200' mal formé",
        ),
        (
            "CRS3035RES200mN2999050E3763200",
            "ligne 2 : carreau 'CRS3035RES200mN2999050E3763200' hors de la grille de 200 m",
        ),
        (
            "CRS3035RES1000mN2999000E3763000",
            "ligne 2 : plusieurs résolutions dans les identifiants de carreaux (200 et 1000)",
        ),
    ],
)
def test_bad_ids_name_the_row(bad, expected):
    with pytest.raises(GridIdError, match="grid.csv : " + expected.replace("(", r"\(").replace(")", r"\)")):
        parse_ids(["CRS3035RES200mN2999000E3763200", bad], "grid.csv")


def test_ids_too_long_for_int64_are_refused_on_the_fast_path_too():
    with pytest.raises(GridIdError, match="ligne 1 : identifiant de carreau .* mal formé"):
        parse_ids(["CRS3035RES200mN29990000000000000000E3763200"] * 2, "grid.csv")


def test_grid_positions_round_trip():
    x = np.array([0, 200, 600]) + 1_000_000
    y = np.array([0, 400, 0]) + 2_000_000
    grid = Grid.around(x, y, 200)
    assert len({(r, c) for r, c in zip(grid.row, grid.col)}) == 3
    cx, cy = grid.corners(grid.row, grid.col)
    assert np.array_equal(cx, x) and np.array_equal(cy, y)
    # north-up: the northern cell sits on an upper row
    assert grid.row[1] < grid.row[0]


def test_square_wkb_matches_shapely_boxes():
    x, y = np.array([3_000_000, 3_000_200, -400]), np.array([2_000_000, 2_000_000, 1_000])
    squares = shapely.from_wkb(square_wkb(x, y, 200).to_numpy(zero_copy_only=False))
    assert shapely.equals(squares, shapely.box(x, y, x + 200, y + 200)).all()
    assert shapely.is_ccw(
        shapely.get_exterior_ring(squares)
    ).all()  # exterior rings counter-clockwise, as GeoJSON wants


def test_spatial_order_keeps_grid_ordered_rows_and_sorts_the_rest():
    cols, rows = np.meshgrid(np.arange(4), np.arange(3))
    x, y = cols.ravel() * 200, rows.ravel() * 200
    by_rows, by_cols = np.lexsort((x, y)), np.lexsort((y, x))  # INSEE's id order; the 2019 extract's
    by_rows_eastward_first = np.lexsort((-x, y))
    for order in (by_rows, by_cols, by_rows[::-1], by_cols[::-1], by_rows_eastward_first):
        assert Grid.around(x[order], y[order], 200).spatial_order() is None
    shuffled = np.random.default_rng(0).permutation(len(x))
    grid = Grid.around(x[shuffled], y[shuffled], 200)
    permutation = grid.spatial_order()
    assert list(zip(grid.row[permutation], grid.col[permutation])) == sorted(zip(grid.row, grid.col))

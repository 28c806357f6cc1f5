"""Household microdata: exact delimitation, the Filosofi-like grid, secrecy, synthetic households."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest
from conftest import X0, Y0, carroyage

from carroyage.data import AMIENS_2019
from carroyage.engine.grid import format_ids
from carroyage.engine.households import (
    HouseholdColumns,
    apply_secrecy,
    consumption_units,
    delimit_households,
    exact_cells,
    filosofi_cells,
    grid_households,
    grouped_order,
    households_from_arrays,
    inspire_ids,
    read_households,
    weighted_median,
)
from carroyage.engine.synth import declared_from_disposable, disposable_from_declared
from carroyage.errors import InputError

SIZE = 12  # cells a side
POCKET = (3, 7)  # cells 3..6 on both axes are poor


def planted(seed: int = 0, per_cell: int = 30) -> pd.DataFrame:
    """Households on a 12 × 12 cell square; a 4 × 4 cell pocket of low incomes."""
    rng = np.random.default_rng(seed)
    col = np.repeat(np.arange(SIZE * SIZE) % SIZE, per_cell)
    row = np.repeat(np.arange(SIZE * SIZE) // SIZE, per_cell)
    n = len(col)
    x = X0 + col * 200 + rng.uniform(20, 180, n)  # never near an edge: reprojection round trips stay inside
    y = Y0 + row * 200 + rng.uniform(20, 180, n)
    persons = rng.integers(1, 6, n)
    under14 = rng.binomial(persons - 1, 0.3)
    pocket = (col >= POCKET[0]) & (col < POCKET[1]) & (row >= POCKET[0]) & (row < POCKET[1])
    per_uc = np.where(pocket, rng.uniform(2_000, 14_000, n), rng.uniform(16_000, 45_000, n))
    uc = consumption_units(persons, under14)
    return pd.DataFrame(
        {
            "x": x,
            "y": y,
            "income": np.round(per_uc * uc, 2),
            "disposable": np.round(disposable_from_declared(per_uc) * uc, 2),
            "persons": persons,
            "under14": under14,
            "pocket": pocket,
        }
    )


def args(*extra: object) -> list[object]:
    return ["--households", "--crs", "EPSG:3035", "--x", "x", "--y", "y", "--income", "income", "--persons", "persons",
            "--under14", "under14", "--national-median", "21120", *extra]  # fmt: skip


def exact_truth(frame: pd.DataFrame, mine: np.ndarray) -> tuple[float, float]:
    """Persons and person-weighted median of declared income per UC of some households, with numpy."""
    inside = frame[mine]
    per_uc = (
        inside["income"] / consumption_units(inside["persons"].to_numpy(), inside["under14"].to_numpy())
    ).to_numpy()
    return float(inside["persons"].sum()), float(np.median(np.repeat(per_uc, inside["persons"].to_numpy())))


def test_a_planted_pocket_is_found_with_its_exact_population_and_median(tmp_path):
    frame = planted()
    # the rule without its contour ring: the quartier is the pocket itself
    h = households_from_arrays(frame.x, frame.y, frame.income, frame.persons, under14=frame.under14)
    alone = delimit_households(h, national_median=21_120, contour_ring_cells=0)
    population, median = exact_truth(frame, frame["pocket"].to_numpy())
    assert len(alone.qpv) == 1 and alone.qpv["cells"].iloc[0] == 16
    assert alone.qpv["population"].iloc[0] == population
    assert alone.qpv["median_income"].iloc[0] == round(median)
    # the command (decree-2014; exact cells get no contour ring, engine.delimit.ring_steps): the pocket, whole
    frame.to_csv(tmp_path / "h.csv", index=False)
    ran = carroyage("delimit", tmp_path / "h.csv", "--out", tmp_path / "x.gpkg", *args())
    assert ran.returncode == 0, ran.stderr
    qpv = gpd.read_file(tmp_path / "x.gpkg", layer="qpv")
    assert len(qpv) == 1 and not qpv["estimated"].any()
    cells = pyogrio.read_dataframe(tmp_path / "x.gpkg", layer="cells", read_geometry=False)
    members = set(cells.loc[cells["qpv"] == qpv["code"].iloc[0], "idcar_200m"])
    col = ((frame.x - X0) // 200).astype(int).to_numpy()
    row = ((frame.y - Y0) // 200).astype(int).to_numpy()
    ids = np.array([f"CRS3035RES200mN{Y0 + 200 * r}E{X0 + 200 * c}" for c, r in zip(col, row)])
    mine = np.isin(ids, list(members))
    assert mine[frame["pocket"].to_numpy()].all()  # the whole pocket is in
    population, median = exact_truth(frame, mine)
    assert qpv["population"].iloc[0] == population
    assert qpv["median_income"].iloc[0] == round(median)
    manifest = dict(pyogrio.read_dataframe(tmp_path / "x.gpkg", layer="manifest").to_numpy())
    estimator = json.loads(manifest["estimator"])
    assert estimator["estimated"] is False
    source = json.loads(manifest["inputs"])["households"]
    assert source["rows"] == len(frame) and source["bad_rows"] == {} and source["crs"] == "EPSG:3035"
    assert len(source["sha256"]) == 64 and source["columns"]["income"] == "income"
    # the agglomeration median is exact too
    _, agglomeration = exact_truth(frame, np.ones(len(frame), dtype=bool))
    assert json.loads(manifest["threshold"])["agglomeration_median"] == pytest.approx(agglomeration, abs=1e-9)


def test_weighted_medians_match_numpy_on_repeated_values():
    rng = np.random.default_rng(5)
    values = np.round(rng.lognormal(10, 0.7, 5000), 0)  # ties on purpose
    weights = rng.integers(1, 7, 5000).astype(float)
    groups = rng.integers(0, 40, 5000)
    found = weighted_median(values, weights, groups, 41)
    for g in range(40):
        mine = groups == g
        assert found[g] == np.median(np.repeat(values[mine], weights[mine].astype(int)))
    assert np.isnan(found[40])


def test_cell_medians_are_exact_per_cell():
    frame = planted(seed=2, per_cell=7)
    h = households_from_arrays(frame.x, frame.y, frame.income, frame.persons, under14=frame.under14)
    g = grid_households(h)
    medians = g.medians()
    for c in (0, 50, 143):
        mine = g.cell == c
        assert medians[c] == np.median(np.repeat(h.income[mine], h.persons[mine].astype(int)))


def test_grid_then_delimit_agrees_with_delimit_households(tmp_path):
    planted().to_parquet(tmp_path / "h.parquet")
    hh = ["--crs", "EPSG:3035", "--under14", "under14", "--national-median", "21120"]
    ran = carroyage("grid", tmp_path / "h.parquet", "--out", tmp_path / "cells.csv", *hh)
    assert ran.returncode == 0, ran.stderr
    assert "seuil" in ran.stdout and "(exacte)" in ran.stdout
    a = carroyage("delimit", tmp_path / "h.parquet", "--households", *hh, "--out", tmp_path / "a.gpkg")
    # no --agglomeration-median: the table's manifest sidecar brings the exact one
    b = carroyage("delimit", tmp_path / "cells.csv", "--national-median", "21120", "--out", tmp_path / "b.gpkg")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert "exacte, calculée sur les ménages" in b.stderr
    qa, qb = (gpd.read_file(tmp_path / f"{n}.gpkg", layer="qpv") for n in "ab")
    assert len(qa) == 1
    columns = ["code", "population", "low_income_share", "cells", "estimated"]
    pd.testing.assert_frame_equal(qa[columns], qb[columns])
    assert qa.geometry.equals(qb.geometry)
    ca, cb = (pyogrio.read_dataframe(tmp_path / f"{n}.gpkg", layer="cells", read_geometry=False) for n in "ab")
    pd.testing.assert_frame_equal(
        ca[["idcar_200m", "population", "low_income_share", "median_income", "qpv"]],
        cb[["idcar_200m", "population", "low_income_share", "median_income", "qpv"]],
    )
    ma, mb = (dict(pyogrio.read_dataframe(tmp_path / f"{n}.gpkg", layer="manifest").to_numpy()) for n in "ab")
    ta, tb = json.loads(ma["threshold"]), json.loads(mb["threshold"])
    _, truth = exact_truth(planted(), np.ones(len(planted()), dtype=bool))
    assert ta["agglomeration_median"] == tb["agglomeration_median"] == pytest.approx(truth, abs=1e-9)
    assert ta["value"] == tb["value"] and ta["agglomeration_population"] == tb["agglomeration_population"]
    source = json.loads(mb["agglomeration_median_source"])
    assert source.startswith("exact: person-weighted median") and source.endswith("cells.csv.manifest.json)")
    assert json.loads(mb["inputs"])["grid_manifest"]["path"].endswith("cells.csv.manifest.json")
    table = pd.read_csv(tmp_path / "cells.csv")
    for column in ("idcar_200m", "idcar_1km", "ind", "men", "men_pauv", "men_1ind", "men_5ind", "i_est_200"):
        assert column in table
    assert "ind_srf" in table  # declared income only: the declared-income sum, never ind_snv
    assert table["i_est_200"].eq(0).all()


def test_a_gridded_table_refuses_another_threshold_and_ignores_a_stale_manifest(tmp_path):
    planted(per_cell=8).to_csv(tmp_path / "h.csv", index=False)
    ran = carroyage("grid", tmp_path / "h.csv", "--crs", "EPSG:3035", "--national-median", "21120",
                    "--out", tmp_path / "cells.csv")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    # population_low was counted against S from 21,120 €: another national median is another S
    other = carroyage("delimit", tmp_path / "cells.csv", "--national-median", "25000", "--out", tmp_path / "x.gpkg")
    assert other.returncode == 2 and "population_low a été compté sous le seuil" in other.stderr
    assert not (tmp_path / "x.gpkg").exists()
    # the table changed after gridding: its manifest no longer describes it
    table = pd.read_csv(tmp_path / "cells.csv").drop(columns="population_low")
    table.to_csv(tmp_path / "cells.csv", index=False)
    stale = carroyage("delimit", tmp_path / "cells.csv", "--national-median", "21120", "--out", tmp_path / "y.gpkg")
    assert stale.returncode == 0, stale.stderr
    assert "ne décrit pas" in stale.stderr
    manifest = dict(pyogrio.read_dataframe(tmp_path / "y.gpkg", layer="manifest").to_numpy())
    assert json.loads(manifest["agglomeration_median_source"]).startswith("estimated")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "gpkg", "geoparquet"])
def test_each_reader_gives_the_same_cells(tmp_path, fmt):
    frame = planted(seed=3, per_cell=4)
    reference = read_households_frame(frame, tmp_path, "csv", "EPSG:3035")
    points = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame.x, frame.y), crs="EPSG:3035").to_crs(2154)
    lambert = frame.assign(x=points.geometry.x, y=points.geometry.y)
    other = read_households_frame(lambert, tmp_path, fmt, "EPSG:2154", points)
    pd.testing.assert_frame_equal(reference, other)


def read_households_frame(frame, folder: Path, fmt: str, crs: str, points=None) -> pd.DataFrame:
    path = folder / f"h.{'parquet' if fmt == 'geoparquet' else fmt}"
    columns = HouseholdColumns(x="x", y="y", under14="under14")
    if fmt == "csv":
        frame.to_csv(path, index=False, sep=";")
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        points.drop(columns=["x", "y"]).to_file(path) if fmt == "gpkg" else points.drop(columns=["x", "y"]).to_parquet(
            path
        )
        columns = HouseholdColumns(under14="under14")
    h = read_households(path, columns, crs if fmt in ("csv", "parquet") else None)
    assert h.facts["crs"].endswith("2154") or crs == "EPSG:3035" or "2154" in str(h.facts["crs"])
    return filosofi_cells(grid_households(h), 12_000).round(6)


def test_every_bad_row_reason_is_counted_and_reported(tmp_path):
    frame = planted(per_cell=20)[["x", "y", "income", "persons"]].astype(object)
    bad = [
        ("missing_coordinates", {"x": None}),
        ("outside_area", {"x": 9.9e7}),
        ("missing_income", {"income": None}),
        ("negative_income", {"income": -5}),
        ("missing_persons", {"persons": None}),
        ("negative_persons", {"persons": -1}),
        ("invalid_persons", {"persons": 2.5}),
    ]
    for i, (_, change) in enumerate(bad):
        for key, value in change.items():
            frame.loc[i, key] = value
    frame.to_csv(tmp_path / "h.csv", index=False)
    ran = carroyage("delimit", tmp_path / "h.csv", "--households", "--crs", "3035", "--national-median", "21120",
                    "--out", tmp_path / "x.gpkg")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "ménages : 7 lignes sur 2 880 écartées" in ran.stderr.replace("\u202f", " ")
    manifest = dict(pyogrio.read_dataframe(tmp_path / "x.gpkg", layer="manifest").to_numpy())
    counts = json.loads(manifest["inputs"])["households"]["bad_rows"]
    assert counts == {reason: 1 for reason, _ in bad}
    # uc: given and below one
    frame = planted(per_cell=20).assign(uc=1.0)
    frame.loc[0, "uc"] = 0.5
    h = households_from_arrays(frame.x, frame.y, frame.income, frame.persons, uc=frame.uc)
    assert h.bad == {"invalid_uc": 1}


def test_bad_rows_in_another_crs_with_ages_infinities_and_null_geometries(tmp_path):
    frame = planted(per_cell=5)
    points = gpd.GeoSeries(gpd.points_from_xy(frame.x, frame.y), crs="EPSG:3035").to_crs(2154)
    x, y = points.x.to_numpy(copy=True), points.y.to_numpy(copy=True)
    income, persons = frame.income.to_numpy(copy=True), frame.persons.to_numpy().astype(float)
    under14 = frame.under14.to_numpy().astype(float)
    x[0] = 5e7  # far outside Lambert-93's area of use
    y[1] = np.inf  # counted as missing, as an empty one
    income[2] = np.inf
    persons[3] = np.inf
    under14[4], persons[4] = 3.0, 3.0  # three children in a household of three: no adult
    under14[5] = 0.5
    disposable = income * 0.9
    disposable[6] = -1.0
    h = households_from_arrays(x, y, income, persons, crs="EPSG:2154", under14=under14, disposable=disposable)
    assert h.bad == {
        "missing_coordinates": 1,
        "outside_area": 1,
        "missing_income": 1,
        "negative_income": 1,
        "invalid_persons": 1,
        "invalid_uc": 2,
    }
    assert len(h) == len(frame) - 7 and h.grid_epsg == 3035
    # a null geometry (GeoParquet) is a missing coordinate
    geo = gpd.GeoDataFrame(frame[["income", "persons"]], geometry=list(points), crs="EPSG:2154")
    geo.loc[0, "geometry"] = None
    geo.to_parquet(tmp_path / "h.parquet")
    assert read_households(tmp_path / "h.parquet").bad == {"missing_coordinates": 1}


def test_too_many_bad_rows_stop_the_run_with_one_line(tmp_path):
    frame = planted(per_cell=20)
    frame.loc[: len(frame) // 10, "income"] = -1.0  # 10 % > 5 %
    frame.to_csv(tmp_path / "h.csv", index=False)
    ran = carroyage("delimit", tmp_path / "h.csv", "--households", "--crs", "EPSG:3035", "--national-median", "21120",
                    "--out", tmp_path / "x.gpkg")  # fmt: skip
    assert ran.returncode == 2
    lines = ran.stderr.strip().splitlines()
    assert len([line for line in lines if not line.lstrip().startswith("[")]) == 1  # one line besides the stages
    assert "des 2 880 lignes de ménages sont inutilisables (revenu négatif 289) ; attendu au plus 5 %" in lines[
        -1
    ].replace("\u202f", " ")
    assert not (tmp_path / "x.gpkg").exists()


def test_missing_crs_and_columns_are_one_clear_line(tmp_path):
    planted(per_cell=2).to_csv(tmp_path / "h.csv", index=False)
    ran = carroyage("grid", tmp_path / "h.csv", "--out", tmp_path / "c.csv")
    assert ran.returncode == 2 and "attendu --crs EPSG:XXXX" in ran.stderr
    ran = carroyage("grid", tmp_path / "h.csv", "--crs", "EPSG:3035", "--income", "revenu", "--out", tmp_path / "c.csv")
    assert (
        ran.returncode == 2
        and "pas de colonne 'revenu' ; attendu le nom d'une colonne du fichier avec --income" in ran.stderr
    )
    ran = carroyage("delimit", tmp_path / "h.csv", "--crs", "EPSG:3035", "--out", tmp_path / "x.gpkg")
    assert ran.returncode == 2 and "attendu --households" in ran.stderr
    with pytest.raises(InputError, match="système de coordonnées 'EPSG:99999' inconnu"):
        read_households(tmp_path / "h.csv", crs="EPSG:99999")


def test_lower_left_rule_on_cell_edges():
    x = np.array([X0, X0 + 200, X0 + 199.999, X0 - 0.001], dtype=float)
    y = np.full(4, float(Y0))
    g = grid_households(households_from_arrays(x, y, np.ones(4), np.ones(4)))
    assert g.ids()[g.cell].tolist() == [
        f"CRS3035RES200mN{Y0}E{X0}",
        f"CRS3035RES200mN{Y0}E{X0 + 200}",
        f"CRS3035RES200mN{Y0}E{X0}",
        f"CRS3035RES200mN{Y0}E{X0 - 200}",
    ]


def test_secrecy_spreads_small_cells_and_keeps_totals(tmp_path):
    frame = planted(seed=4, per_cell=12)
    keep = np.random.default_rng(0).random(len(frame)) < 0.6  # many cells fall under 11 households
    frame[keep].to_csv(tmp_path / "h.csv", index=False)
    ran = carroyage("grid", tmp_path / "h.csv", "--crs", "EPSG:3035", "--disposable", "disposable", "--secrecy",
                    "--out", tmp_path / "public.csv")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    public = pd.read_csv(tmp_path / "public.csv")
    read = read_households(tmp_path / "h.csv", HouseholdColumns(disposable="disposable"), "EPSG:3035")
    exact = filosofi_cells(grid_households(read))
    small = exact["men"].to_numpy() < 11
    assert small.any() and (public["i_est_200"].to_numpy() == small).all()
    assert "median_income" not in public and "population_low" not in public and "ind_snv" in public
    np.testing.assert_array_equal(public["ind"], exact["ind"])  # residents kept, as INSEE does
    for column in ("men", "men_pauv", "ind_snv"):
        assert public[column].sum() == pytest.approx(exact[column].sum(), rel=1e-6, abs=0.05 * small.sum())
        np.testing.assert_array_equal(public.loc[~small, column], exact.loc[~small, column].round(1))
    # a public-like grid goes through the estimator
    ran = carroyage("delimit", tmp_path / "public.csv", "--national-median", "22040", "--out", tmp_path / "e.gpkg")
    assert ran.returncode == 0, ran.stderr
    assert "ESTIMÉS" in ran.stdout


def test_secrecy_groups_reach_eleven_households():
    ids = [f"CRS3035RES200mN{Y0 + 200 * r}E{X0 + 200 * c}" for r, c in [(0, 0), (0, 1), (10, 10), (30, 30)]]
    table = pd.DataFrame({"idcar_200m": ids, "i_est_200": 0, "ind": [8.0, 6, 4, 20], "men": [4.0, 3, 2, 12],
                          "men_pauv": [1.0, 1, 2, 0], "ind_snv": [8e4, 6e4, 4e4, 4e5]})  # fmt: skip
    out = apply_secrecy(table)
    assert out["i_est_200"].tolist() == [1, 1, 1, 0]
    assert out["men"].sum() == 21  # the three small cells form one group of 9 households, the last resort
    assert out["men_pauv"].iloc[:3].tolist() == [1.8, 1.3, 0.9]


def test_synth_is_reproducible_and_consistent_with_the_grid(tmp_path):
    for name in ("a", "b"):
        ran = carroyage("synth", AMIENS_2019, "--out", tmp_path / f"{name}.parquet", "--seed", "11")
        assert ran.returncode == 0, ran.stderr
        assert "SYNTHÉTIQUES" in ran.stdout
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    carroyage("synth", AMIENS_2019, "--out", tmp_path / "c.parquet", "--seed", "12")
    assert (tmp_path / "a.parquet").read_bytes() != (tmp_path / "c.parquet").read_bytes()
    metadata = json.loads(pq.read_schema(tmp_path / "a.parquet").metadata[b"carroyage"])
    assert metadata["synthetic"] is True and metadata["seed"] == 11 and metadata["crs"] == "EPSG:3035"
    households = pd.read_parquet(tmp_path / "a.parquet")
    grid = pd.read_csv(AMIENS_2019)
    drawn = households.groupby("idcar_200m").agg(
        men=("persons", "size"),
        ind=("persons", "sum"),
        one=("persons", lambda p: (p == 1).sum()),
        five=("persons", lambda p: (p >= 5).sum()),
    )
    level = households["income_disposable"] / households["uc"]
    drawn["pauv"] = (level < 0.6 * 22_040).groupby(households["idcar_200m"]).sum()
    merged = grid.set_index("idcar_200m").join(drawn.rename(columns={"men": "men_drawn", "ind": "ind_drawn"}))
    assert (np.abs(merged["men"] - merged["men_drawn"]) < 1).all()
    assert (np.abs(merged["men_pauv"] * merged["men_drawn"] / merged["men"] - merged["pauv"]) <= 1).all()
    assert drawn["men"].sum() == pytest.approx(grid["men"].sum(), rel=0.01)
    assert drawn["ind"].sum() == pytest.approx(grid["ind"].sum(), rel=0.03)
    assert drawn["one"].sum() == pytest.approx(grid["men_1ind"].sum(), rel=0.02)
    assert drawn["five"].sum() == pytest.approx(grid["men_5ind"].sum(), rel=0.05)
    # the cells' mean standard of living follows ind_snv / ind
    mean = (level * households["persons"]).groupby(households["idcar_200m"]).sum()
    assert mean.sum() == pytest.approx(grid["ind_snv"].sum(), rel=0.03)
    # declared and disposable incomes are bridged both ways
    back = disposable_from_declared(declared_from_disposable(level.to_numpy()))
    lifted = level.to_numpy() >= 6_000
    np.testing.assert_allclose(back[lifted], level.to_numpy()[lifted], rtol=1e-9)
    # the synthetic file grids back onto the grid's cells
    ran = carroyage("grid", tmp_path / "a.parquet", "--income", "income_declared", "--uc", "uc",
                    "--disposable", "income_disposable", "--out", tmp_path / "cells.csv")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    cells = pd.read_csv(tmp_path / "cells.csv")
    assert set(cells["idcar_200m"]) <= set(grid["idcar_200m"])


def test_one_kilometre_cells(tmp_path):
    planted().to_parquet(tmp_path / "h.parquet")
    ran = carroyage("grid", tmp_path / "h.parquet", "--crs", "EPSG:3035", "--resolution", "1000",
                    "--out", tmp_path / "km.csv")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    table = pd.read_csv(tmp_path / "km.csv")
    assert table["idcar_1km"].str.startswith("CRS3035RES1000mN").all()
    assert table["ind"].sum() == planted()["persons"].sum()
    assert len(table) == 9  # 2.4 km square from a corner on the km grid


def test_overseas_households_are_gridded_in_their_local_crs(tmp_path):
    frame = planted(per_cell=30)
    x0, y0 = 707_000, 1_611_400  # Fort-de-France, EPSG:5490
    frame = frame.assign(x=frame.x - X0 + x0, y=frame.y - Y0 + y0)
    frame.to_csv(tmp_path / "h.csv", index=False)
    ran = carroyage("delimit", tmp_path / "h.csv", "--households", "--crs", "EPSG:5490", "--under14", "under14",
                    "--national-median", "21120", "--out", tmp_path / "m.gpkg")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    qpv = gpd.read_file(tmp_path / "m.gpkg", layer="qpv")
    assert qpv.crs.to_epsg() == 5490 and len(qpv) == 1
    cells = pyogrio.read_dataframe(tmp_path / "m.gpkg", layer="cells", read_geometry=False)
    assert cells["idcar_200m"].str.startswith("CRS5490RES200mN").all()


def test_medians_stay_exact_when_incomes_differ_below_the_sort_key_precision():
    rng = np.random.default_rng(8)
    n = 4000
    income = 20_000.0 + rng.integers(0, 3, n) * 1e-7  # equal in the key's leading bits, not in value
    x = X0 + rng.uniform(1, 399, n)
    h = households_from_arrays(x, np.full(n, Y0 + 10.0), income, rng.integers(1, 4, n).astype(float), uc=np.ones(n))
    g = grid_households(h)
    sorted_income = h.income[g.order]
    sorted_cell = g.cell[g.order]
    assert (np.diff(sorted_cell) >= 0).all()
    assert (np.diff(sorted_income)[np.diff(sorted_cell) == 0] >= 0).all()
    for c in range(g.cells):
        mine = g.cell == c
        assert g.medians()[c] == np.median(np.repeat(h.income[mine], h.persons[mine].astype(int)))


def test_sorted_persons_are_exact_whatever_the_household_sizes():
    rng = np.random.default_rng(11)
    n = 3000
    x, y = X0 + rng.uniform(1, 999, n), Y0 + rng.uniform(1, 999, n)
    for persons in (rng.integers(1, 9, n), np.where(rng.random(n) < 0.01, 300, rng.integers(1, 9, n))):
        h = households_from_arrays(x, y, rng.lognormal(10, 0.5, n), persons.astype(float), uc=np.ones(n))
        g = grid_households(h)
        assert g.persons_sorted.dtype == (np.uint8 if persons.max() <= 255 else np.float64)
        np.testing.assert_array_equal(g.persons_sorted, h.persons[g.order])
        cells = exact_cells(g, 20_000.0).frame
        expected = np.bincount(g.cell, weights=h.persons * (h.income < 20_000.0))
        np.testing.assert_array_equal(cells["population_low"].to_numpy(), expected)
        np.testing.assert_array_equal(cells["population"].to_numpy(), np.bincount(g.cell, weights=h.persons))
        assert cells["median_income"].to_numpy()[0] == np.median(
            np.repeat(h.income[g.cell == 0], h.persons[g.cell == 0].astype(int))
        )


def test_the_packed_sort_is_exactly_lexsort_on_ties_negatives_and_wide_ranges():
    rng = np.random.default_rng(9)
    cases = [
        # a wide range (the rank's bits spread over it) and incomes equal in their rank, not in value
        np.where(rng.random(3000) < 0.7, 20_000 + rng.integers(0, 4, 3000) * 1e-9, rng.lognormal(5, 4, 3000)),
        rng.normal(0, 1e4, 3000) + 0.0,  # negative values
        np.where(rng.random(3000) < 0.5, 0.0, rng.lognormal(5, 4, 3000)),  # zeros and a huge range
    ]
    for values in cases:
        groups = rng.integers(0, 7, len(values))
        weights = rng.integers(1, 5, len(values)).astype(float)
        result = grouped_order(groups, 7, values, (weights,))
        expected = np.lexsort((values, groups))
        np.testing.assert_array_equal(result.order, expected)
        np.testing.assert_array_equal(result.carried[0], weights[expected])
        np.testing.assert_array_equal(result.groups, np.unique(groups))


def test_inspire_ids_match_format_ids_whatever_the_digits():
    for x, y in [
        (np.array([3763200, 3763400]), np.array([2999000, 2999000])),
        (np.array([0, 200]), np.array([5, 1600000])),
    ]:
        assert inspire_ids(x, y, 200, 3035).to_pylist() == format_ids(x, y, 200, 3035).tolist()

"""Gridding household microdata: carroyage against a plain geopandas points-in-boxes join.

Generates (once, in its own process) ``--households`` synthetic households (default 30 million,
France's order of magnitude) over the cells of ``synthetic.py``'s France-scale grid, as a Parquet
file in EPSG:3035 (columns ``x``, ``y``, ``income``, ``persons``), and the inhabited cells'
corners. Then each variant runs in a process of its own, under ``measure.py``'s launcher (its own
peak memory, reaped with ``os.wait4``), and computes the same per-cell figures: persons,
households, persons below S = 12,700 € and the exact person-weighted median income per UC.

* ``carroyage``: ``read_households`` → ``grid_households`` (lower-left rule, integer keys,
  ``bincount``, one 64-bit key sort) → ``exact_cells``;
* ``geopandas``: ``pandas.read_parquet``, ``geopandas.points_from_xy``, the cells as
  ``shapely.box`` polygons (given: a user would have them from the Filosofi layer),
  ``geopandas.sjoin(predicate="within")``, then a pandas sort by cell and income, ``groupby``
  cumulative sums and the middle persons for the median.

Both write their per-cell figures; the report says whether they agree. Targets: ≥ 20× faster,
peak memory < 4 GB for carroyage::

    python benchmarks/bench_grid.py [--households 30000000] [--work benchmarks/work]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import measure  # noqa: E402

THRESHOLD = 12_700.0

GENERATE = """
import sys, numpy as np, pyarrow as pa, pyarrow.parquet as pq
sys.path.insert(0, {here!r})
from synthetic import synthetic_grid
n = {n}
rng = np.random.default_rng(16)
grid = synthetic_grid(cells=max(1000, n // 13), seed=16)
from carroyage.engine.grid import parse_ids
ids = parse_ids(grid.column("idcar_200m").combine_chunks())
men = grid.column("men").to_numpy()
cell = np.sort(rng.choice(len(men), n, p=men / men.sum()))
poor = (grid.column("men_pauv").to_numpy() / men)[cell]
x = ids.x[cell] + (np.floor(rng.random(n) * 19999) + 0.5) / 100  # never on an edge: 'within' drops those
y = ids.y[cell] + (np.floor(rng.random(n) * 19999) + 0.5) / 100
order = rng.permutation(n)  # households in no spatial order
income = rng.lognormal(np.log(22000) - 1.2 * poor, 0.6, n)
persons = 1 + rng.poisson(1.2, n)
pq.write_table(pa.table({{"x": x[order], "y": y[order], "income": np.round(income[order], 0),
                          "persons": persons[order]}}), {households!r})
used = np.unique(cell)
pq.write_table(pa.table({{"x": ids.x[used], "y": ids.y[used]}}), {cells!r})
"""

CARROYAGE = """
import time, json, numpy as np, pyarrow as pa, pyarrow.parquet as pq
start = time.perf_counter()
from carroyage.engine.households import HouseholdColumns, read_households, grid_households, exact_cells
h = read_households({households!r}, HouseholdColumns(x="x", y="y", income="income", persons="persons", uc="persons"),
                    "EPSG:3035")
read = time.perf_counter()
g = grid_households(h)
cells = exact_cells(g, {threshold}).frame
done = time.perf_counter()
pq.write_table(pa.table({{"x": cells["x"].to_numpy(), "y": cells["y"].to_numpy(),
                          "persons": cells["population"].to_numpy(), "households": cells["households"].to_numpy(),
                          "low": cells["population_low"].to_numpy(), "median": cells["median_income"].to_numpy()}}),
               {result!r})
print(json.dumps({{"read": read - start, "grid_and_figures": done - read, "cells": len(cells)}}))
"""

GEOPANDAS = """
import time, json, numpy as np, pandas as pd, geopandas as gpd, shapely
start = time.perf_counter()
frame = pd.read_parquet({households!r})
frame["income"] = frame["income"] / frame["persons"]  # income per UC, uc = persons as for carroyage
boxes = pd.read_parquet({cells!r})
cells = gpd.GeoDataFrame({{"cx": boxes["x"], "cy": boxes["y"]}},
                         geometry=shapely.box(boxes["x"], boxes["y"], boxes["x"] + 200, boxes["y"] + 200),
                         crs="EPSG:3035")
read = time.perf_counter()
points = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["x"], frame["y"]), crs="EPSG:3035")
joined = gpd.sjoin(points, cells, predicate="within", how="inner")
table = pd.DataFrame(joined.drop(columns="geometry"))
table["low"] = table["persons"] * (table["income"] < {threshold})
table = table.sort_values(["index_right", "income"])
group = table.groupby("index_right", sort=True)
table["cum"] = group["persons"].cumsum()
total = group["persons"].transform("sum")
before = table["cum"] - table["persons"]
lo, hi = np.floor((total - 1) / 2), np.floor(total / 2)
table["at_lo"] = np.where((before <= lo) & (lo < table["cum"]), table["income"], np.nan)
table["at_hi"] = np.where((before <= hi) & (hi < table["cum"]), table["income"], np.nan)
figures = group.agg(persons=("persons", "sum"), households=("persons", "size"), low=("low", "sum"),
                    at_lo=("at_lo", "max"), at_hi=("at_hi", "max"), x=("cx", "first"), y=("cy", "first"))
figures["median"] = (figures["at_lo"] + figures["at_hi"]) / 2
done = time.perf_counter()
figures[["x", "y", "persons", "households", "low", "median"]].reset_index(drop=True).to_parquet({result!r})
print(json.dumps({{"read": read - start, "grid_and_figures": done - read, "cells": len(figures)}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=30_000_000)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--skip-geopandas", action="store_true", help="Only the carroyage variant.")
    args = parser.parse_args()
    n = args.households
    args.work.mkdir(parents=True, exist_ok=True)
    households = args.work / f"households_{n}.parquet"
    cells = args.work / f"households_{n}_cells.parquet"
    if not households.exists() or not cells.exists():
        started = time.perf_counter()
        code = GENERATE.format(here=str(HERE), n=n, households=str(households), cells=str(cells))
        measure.run([sys.executable, "-c", code])
        print(f"generated {n:,} households in {time.perf_counter() - started:.1f} s: {households}")
    floor = measure.floor()
    runs = {}
    variants = {"carroyage": CARROYAGE} if args.skip_geopandas else {"carroyage": CARROYAGE, "geopandas": GEOPANDAS}
    for name, template in variants.items():
        result = args.work / f"grid_{name}_{n}.parquet"
        code = template.format(households=str(households), cells=str(cells), result=str(result), threshold=THRESHOLD)
        run = measure.run([sys.executable, "-c", code])
        runs[name] = (run, run.last_json(), result)
    print(f"households: {n:,}; launcher floor {floor:.0f} MB")
    print(f"{'variant':10} {'whole s':>8} {'read s':>7} {'grid s':>7} {'peak MB':>8} {'cells':>10}")
    for name, (run, figures, _) in runs.items():
        print(
            f"{name:10} {run.wall:8.1f} {figures['read']:7.1f} {figures['grid_and_figures']:7.1f} "
            f"{run.peak_mb:8.0f} {figures['cells']:10,}"
        )
    ours = runs["carroyage"][0]
    memory_ok = ours.peak_mb < 4096
    print(f"peak memory, carroyage (MB): {ours.peak_mb:.0f} (target < 4096: {'met' if memory_ok else 'NOT met'})")
    if "geopandas" in runs:
        import pandas as pd

        speedup = runs["geopandas"][0].wall / ours.wall
        print(
            f"speedup vs geopandas sjoin, whole processes: {speedup:.1f}x (target >= 20x: "
            f"{'met' if speedup >= 20 else 'NOT met'})"
        )
        inner = runs["geopandas"][1]["grid_and_figures"] / runs["carroyage"][1]["grid_and_figures"]
        print(f"speedup vs geopandas sjoin, gridding and figures only: {inner:.1f}x")
        a = pd.read_parquet(runs["carroyage"][2]).sort_values(["x", "y"]).reset_index(drop=True)
        b = pd.read_parquet(runs["geopandas"][2]).sort_values(["x", "y"]).reset_index(drop=True)
        same = len(a) == len(b) and all(
            np.allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=1e-12)
            for c in ("x", "y", "persons", "households", "low", "median")
        )
        print("per-cell figures: " + ("same" if same else "DIFFERENT"))
    print(
        json.dumps(
            {name: {"wall": run.wall, "peak_mb": run.peak_mb, **figures} for name, (run, figures, _) in runs.items()}
        )
    )


if __name__ == "__main__":
    main()

"""Gridding household microdata: carroyage against a plain geopandas points-in-boxes join.

Generates (once, in its own process) ``--households`` synthetic households (default 30 million,
France's order of magnitude) over the cells of ``synthetic.py``'s France-scale grid, as a Parquet
file in EPSG:3035 written with pyarrow's defaults (columns ``x``, ``y``, ``income``, ``persons``,
in no spatial order), and the inhabited cells' corners. Then each variant runs in a process of
its own, under ``measure.py``'s launcher (its own peak memory, reaped with ``os.wait4``), and
computes the same per-cell figures: persons, households, persons below S = 12,700 € and the exact
person-weighted median income per UC (UC = persons, for both).

* ``carroyage``: ``read_households`` (only the needed columns, a row group at a time, the file
  hashed meanwhile; every row checked) → ``grid_households`` (lower-left rule, one in-place sort
  of packed 64-bit keys) → ``exact_cells``;
* ``geopandas``: ``pandas.read_parquet``, the cells as ``shapely.box`` polygons (given: a user
  would have them from the Filosofi layer), ``geopandas.points_from_xy`` and
  ``geopandas.sjoin(predicate="within")``, then a pandas sort by cell and income, ``groupby``
  cumulative sums and the middle persons for the median. The join goes by blocks of
  ``--join-block`` households (3 million: one block up to that size), because one 30-million-point
  GeoDataFrame and its join need about 20 GB; blocks make it no slower (each point's cell does not
  depend on the others), so the comparison is not flattered by them.

Both write their per-cell figures; the report says whether they are identical (exact equality,
every column). Both run in the same environment: on an AMD Zen 4 processor that is numpy's AVX2
sort, as the ``carroyage`` command chooses it (:mod:`carroyage.cpu`; numpy's AVX-512 sort is
about five times slower there). ``--runs`` rounds alternate which variant goes first, back to
back. carroyage runs ``--repeat`` times in each round (3) and its times are averaged: a few
seconds of another job's load weigh twenty times more on it than on geopandas' single run, and
an average, like that long run, keeps the slow moments in. Before the first round one process
touches ``--warm-mb`` of memory and exits: virtual machines like these hand idle memory back to
their host, and the first process to touch it again pays about 2.5 s of system time per GB (the
``sys`` column shows it). Speed-ups are whole processes (start-up, imports, reading, gridding
and writing) on wall time; CPU time (user + sys) is shown beside it: carroyage works on both
cores where geopandas uses one. Targets: ≥ 20× faster in every round, peak memory < 4 GB for
carroyage::

    python benchmarks/bench_grid.py [--households 30000000] [--runs 2] [--repeat 3]
                                    [--warm-mb 8192] [--work benchmarks/work]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import measure  # noqa: E402

from carroyage.cpu import NUMPY_SWITCH, prefer_avx2_sort  # noqa: E402

THRESHOLD = 12_700.0
TARGET_SPEEDUP = 20.0
TARGET_PEAK_MB = 4096.0

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
parts = []
for first in range(0, len(frame), {block}):
    block = frame.iloc[first : first + {block}]
    points = gpd.GeoDataFrame(block[["income", "persons"]], geometry=gpd.points_from_xy(block["x"], block["y"]),
                              crs="EPSG:3035")
    joined = gpd.sjoin(points, cells, predicate="within", how="inner")
    parts.append(pd.DataFrame(joined.drop(columns="geometry")))
    del points, joined
table = pd.concat(parts)
del parts
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

COLUMNS = ("x", "y", "persons", "households", "low", "median")


def generate(n: int, work: Path) -> tuple[Path, Path]:
    """The households' and the inhabited cells' Parquet files (made once per size)."""
    households = work / f"households_{n}.parquet"
    cells = work / f"households_{n}_cells.parquet"
    if not households.exists() or not cells.exists():
        started = time.perf_counter()
        code = GENERATE.format(here=str(HERE), n=n, households=str(households), cells=str(cells))
        measure.run([sys.executable, "-c", code])
        print(f"generated {n:,} households in {time.perf_counter() - started:.1f} s: {households}")
    return households, cells


def run_variant(name: str, households: Path, cells: Path, work: Path, block: int) -> dict[str, float]:
    """One variant in its own process: its figures, wall and CPU time, peak memory."""
    template = CARROYAGE if name == "carroyage" else GEOPANDAS
    result = work / f"grid_{name}_{households.stem}.parquet"
    code = template.format(households=str(households), cells=str(cells), result=str(result), threshold=THRESHOLD,
                           block=block)  # fmt: skip
    run = measure.run([sys.executable, "-c", code])
    figures = {"wall": run.wall, "cpu": run.user + run.sys, "sys": run.sys, "peak_mb": run.peak_mb}
    return {**run.last_json(), **figures}


def identical(households: Path, work: Path) -> bool:
    """Whether both variants wrote the same cells with the same figures, exactly."""
    import pandas as pd

    a, b = (
        pd.read_parquet(work / f"grid_{name}_{households.stem}.parquet").sort_values(["x", "y"]).reset_index(drop=True)
        for name in ("carroyage", "geopandas")
    )
    return len(a) == len(b) and all(np.array_equal(a[c].to_numpy(), b[c].to_numpy()) for c in COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=30_000_000)
    parser.add_argument("--runs", type=int, default=2, help="Rounds, alternating which variant goes first.")
    parser.add_argument("--join-block", type=int, default=3_000_000, help="Households per geopandas sjoin.")
    parser.add_argument("--repeat", type=int, default=3, help="carroyage runs per round, averaged.")
    parser.add_argument("--warm-mb", type=int, default=8192, help="Memory touched once before the first round.")
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--skip-geopandas", action="store_true", help="Only the carroyage variant.")
    args = parser.parse_args()
    n = args.households
    args.work.mkdir(parents=True, exist_ok=True)
    households, cells = generate(n, args.work)
    floor = measure.floor()
    names = ["carroyage"] if args.skip_geopandas else ["carroyage", "geopandas"]
    rounds = []
    prefer_avx2_sort()  # for both variants' processes
    print(f"households: {n:,}; launcher floor {floor:.0f} MB; geopandas sjoin by blocks of {args.join_block:,}; "
          f"{NUMPY_SWITCH}={os.environ.get(NUMPY_SWITCH, '(unset)')!r} for both")  # fmt: skip
    touch = f"import numpy; numpy.ones({args.warm_mb} << 20, dtype=numpy.uint8)"
    measure.run([sys.executable, "-c", touch])
    heading = ("round", "variant", "wall s", "cpu s", "sys s", "read s", "grid s", "peak MB", "cells")
    print("{:5} {:10} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>10}".format(*heading))
    for number in range(args.runs):
        order = names if number % 2 == 0 else names[::-1]
        runs = {name: [run_variant(name, households, cells, args.work, args.join_block)
                       for _ in range(args.repeat if name == "carroyage" else 1)] for name in order}  # fmt: skip
        for name in names:
            for f in runs[name]:
                print(
                    f"{number + 1:5} {name:10} {f['wall']:7.1f} {f['cpu']:7.1f} {f['sys']:7.1f} {f['read']:7.1f} "
                    f"{f['grid_and_figures']:7.1f} {f['peak_mb']:8.0f} {f['cells']:10,}"
                )
        rounds.append({name: mean(each) for name, each in runs.items()})
    report(rounds, households, args.work, not args.skip_geopandas)


def mean(runs: list[dict[str, float]]) -> dict[str, float]:
    """The figures of a variant's runs in one round, averaged (peak memory: the largest)."""
    averaged = {key: statistics.fmean(run[key] for run in runs) for key in runs[0]}
    return {**averaged, "peak_mb": max(run["peak_mb"] for run in runs), "cells": runs[0]["cells"]}


def report(rounds: list[dict[str, dict[str, float]]], households: Path, work: Path, compared: bool) -> None:
    """Per-round speed-ups (same round, same machine state), peak memory, agreement."""
    peak = max(r["carroyage"]["peak_mb"] for r in rounds)
    print(f"peak memory, carroyage (MB): {peak:.0f} (target < {TARGET_PEAK_MB:.0f}: "
          f"{'met' if peak < TARGET_PEAK_MB else 'NOT met'})")  # fmt: skip
    if compared:
        ratios = [r["geopandas"]["wall"] / r["carroyage"]["wall"] for r in rounds]
        print(
            f"speed-up vs geopandas sjoin, whole processes, wall time: {', '.join(f'{x:.1f}x' for x in ratios)} "
            f"per round; median {statistics.median(ratios):.1f}x (target >= {TARGET_SPEEDUP:.0f}x in every round: "
            f"{'met' if min(ratios) >= TARGET_SPEEDUP else 'NOT met'})"
        )
        cpu = [r["geopandas"]["cpu"] / r["carroyage"]["cpu"] for r in rounds]
        print(f"CPU time ratio (user + sys): {', '.join(f'{x:.1f}x' for x in cpu)} per round (information)")
        inner = [r["geopandas"]["grid_and_figures"] / r["carroyage"]["grid_and_figures"] for r in rounds]
        print("speed-up, gridding and figures only (wall): " + ", ".join(f"{ratio:.1f}x" for ratio in inner))
        print("per-cell figures: " + ("identical" if identical(households, work) else "DIFFERENT"))
    print(json.dumps(rounds))


if __name__ == "__main__":
    main()

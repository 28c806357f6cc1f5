"""France-scale delimitation benchmark: carroyage against a plain geopandas pipeline.

Generates (once) a synthetic Filosofi 2019 grid of about 2.3 million inhabited cells (``--cells``
to change it), then runs each variant as a process of its own:

* ``read``: a bare ``pyarrow.csv.read_csv`` of the file (best of three);
* ``carroyage``: ``read_grid`` → ``delimit`` → ``write_geography`` (GeoPackage) inside a Python
  process, timed from the read to the written file; the computation (loaded table to quartier
  polygons) is also timed alone, best of three like the bare read;
* ``carroyage-parquet``: the same, writing GeoParquet;
* ``carroyage-cli``: the command a user runs, ``carroyage delimit GRID --out X.gpkg --rule
  decree-2014 --national-median 22040 -q`` (as ``python -m carroyage``), timed as a whole
  process: interpreter start-up, imports, reading, computing, writing, manifest and summary;
* ``geopandas``: the plain version a geopandas user would write of the same model
  (:func:`plain_geopandas`): pandas CSV read, cell boxes, candidate cells grown by 1 m and
  ``union_all``-ed (queen contiguity), spatial joins of cell centres to the clusters and of the
  outside cells touching them (the contour ring, taken with ``groupby``/``cumsum``), per-quartier
  figures, ``dissolve``, ``to_crs`` and ``to_file`` of the ``qpv`` and ``cells`` layers, the cells
  with the same eight columns as carroyage's, in the same CRS (Lambert-93, carroyage's default for
  a metropolitan grid) and with the same NULL for a cell outside every quartier. It calls
  carroyage's documented statistics (the per-cell estimate with its imputed-cell pooling, the
  quartier median), counted in its time as they are in carroyage's, so only the geometry and I/O
  machinery differ; its second read of the grid for that model (and importing it) is not
  counted. Gap filling is off in the in-process variants (the plain version has none), so both
  must find the same quartiers (they do cell for cell; ``tests/test_benchmarks.py`` checks it on
  Amiens, where neighbourhoods matter), and both must write the same CRS; the report says if not.
  The command keeps its default gap filling, as a user would; its quartier count is printed beside.

Two ratios are printed: the in-process one (the pipelines alone, imports excluded) and the one
*as a user sees it*: the ``carroyage delimit`` process against the geopandas script's process,
both timed whole (launcher wall time, start-up and imports included, the model read excluded).

Peak memory is each variant's own. Each process is started by a tiny launcher process (see
``measure.py``): a fresh interpreter whose only child is the variant, reaped with ``os.wait4``,
which returns that child's own resource usage, ``/usr/bin/time -v`` style. Reading
``getrusage(RUSAGE_SELF)`` in the variant, as this script once did, is wrong on Linux: the peak
survives ``exec``, so every child of this (large, grid-generating) process reported at least
this process's ~1.1 GB; ``RUSAGE_CHILDREN`` here would be the largest of those inflated figures.
The in-process variants also report their ``VmHWM`` (the peak of their own memory image, reset
at ``exec``) as a cross-check, and the launcher's own floor (``python -c pass``) is printed.

Absolute times are noise on shared machines, so every end-to-end variant runs ``--repeat`` times
(default 2, in turn: A B C D A B C D) and keeps its fastest run, the same for carroyage and for
geopandas; peak memory is the largest of the runs::

    python benchmarks/bench_delimit.py [--cells 2300000] [--repeat 2] [--shuffled] [--work benchmarks/work]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import measure  # noqa: E402

TARGETS = {"speedup": 5.0, "peak_mb": 2048.0, "compute_over_read": 2.0}
OUTPUT_EPSG = 2154
"""The CRS both pipelines write: carroyage's default for a metropolitan grid (Lambert-93)."""


def _timed(delimit, cells) -> float:
    start = time.perf_counter()
    delimit(cells, "decree-2014", national_median=22_040, gap_fill_cells=0)
    return time.perf_counter() - start


def run_variant(variant: str, grid: Path, work: Path, threshold: float = 0.0) -> dict[str, float]:
    """Run one variant in this process and return its timings and peak memory."""
    import geopandas  # noqa: F401  (imports are not part of any timing)

    if variant != "geopandas":  # the plain script imports only what it uses
        import carroyage.publish.output  # noqa: F401

    timings: dict[str, float] = {}
    start = time.perf_counter()
    if variant == "read":
        import pyarrow.csv as pacsv

        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            pacsv.read_csv(grid)
            best = min(best, time.perf_counter() - t)
        timings["read"] = best
    elif variant.startswith("carroyage"):
        from carroyage import delimit, read_grid
        from carroyage.publish.output import write_geography

        cells = read_grid(grid)
        timings["load"] = time.perf_counter() - start
        t = time.perf_counter()
        geography = delimit(cells, "decree-2014", national_median=22_040, gap_fill_cells=0)
        timings["compute_first"] = time.perf_counter() - t
        suffix = ".parquet" if variant.endswith("parquet") else ".gpkg"
        write_geography(geography, work / f"{variant}{suffix}")
        timings["quartiers"] = len(geography.qpv)
        timings["threshold"] = geography.manifest["threshold"]["value"]
        timings["total"] = time.perf_counter() - start
        timings["compute"] = min(timings["compute_first"], *(_timed(delimit, cells) for _ in range(2)))
    elif variant == "geopandas":
        timings["quartiers"], timings["model_read"] = plain_geopandas(grid, work / "geopandas.gpkg", threshold)
        timings["total"] = time.perf_counter() - start - timings["model_read"]
    timings.setdefault("total", time.perf_counter() - start)
    timings["own_hwm_mb"] = own_peak_mb()
    if variant in ("carroyage", "geopandas"):
        timings["epsg"] = written_epsg(work / f"{variant}.gpkg")
    return timings


def written_epsg(path: Path) -> float:
    """The EPSG code of the cells layer written (the same for both pipelines, like for like)."""
    import pyogrio
    from pyproj import CRS

    return float(CRS.from_user_input(pyogrio.read_info(path, layer="cells")["crs"]).to_epsg() or 0)


def own_peak_mb() -> float:
    """This process's own peak resident memory (``VmHWM``, reset at exec), or NaN off Linux."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return float("nan")
    peaks = [int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")]
    return peaks[0] if peaks else float("nan")


def plain_geopandas(grid: Path, out: Path, threshold: float) -> tuple[int, float]:
    """The straightforward geopandas pipeline for the same model, writing the same two layers.

    The statistics are carroyage's own documented functions, called as a user of the library
    would: the per-cell estimate (``cell_distributions``, imputed cells pooled over their Gaussian
    neighbourhood, then ``cell_income`` at the threshold carroyage computed for this grid) and the
    quartier median (``pooled_medians``). Everything spatial is done the geopandas way: cell boxes,
    candidate boxes grown by 1 m so that corner neighbours overlap (queen contiguity) and
    ``union_all``-ed into clusters, ``sjoin`` of cell centres to the clusters, ``sjoin`` of the
    outside cells that touch a cluster for the contour ring (taken, per cluster, most low-income
    first while the quartier keeps its low-income majority: ``groupby`` and ``cumsum``), per-quartier
    figures by ``groupby``, polygons by ``dissolve``, then ``to_crs`` and ``to_file``.

    Returns the number of quartiers and the seconds spent importing carroyage's income model and
    re-reading the grid for it, which the caller leaves out of the plain pipeline's time.
    """
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    start = time.perf_counter()
    from carroyage import IncomeModel, read_grid
    from carroyage.engine.grid import Grid
    from carroyage.engine.income import cell_distributions, cell_income, pooled_medians
    from carroyage.engine.rules import RULES

    rule = RULES["decree-2014"]  # its parameters, read off the rule: queen, one ring step, 1,000, 50 %
    model_read = time.perf_counter() - start
    frame = pd.read_csv(grid)
    corner = frame["idcar_200m"].str.extract(r"N(?P<y>\d+)E(?P<x>\d+)").astype("int64")
    # the same per-cell model as carroyage, on carroyage's reading of the grid (not counted)
    start = time.perf_counter()
    table = read_grid(grid)
    model_read += time.perf_counter() - start
    positions = Grid.around(table.frame["x"].to_numpy(), table.frame["y"].to_numpy(), table.resolution, table.epsg)
    model = IncomeModel(national_median=22_040)
    income = cell_income(table, cell_distributions(table, model, 22_040, positions), threshold)
    share = income.low_share
    cells = gpd.GeoDataFrame(
        {
            "idcar_200m": frame["idcar_200m"],
            "population": frame["ind"].astype("float64"),
            "low_income_share": np.round(share, 4),
            "median_income": np.round(income.median, 0),
            "income_spread": np.round(income.sigma, 4),
            "flagged": share > rule.low_income_share,  # the cell test, on the unrounded share
        },
        geometry=shapely.box(corner["x"], corner["y"], corner["x"] + 200, corner["y"] + 200),
        crs=3035,
    )
    cells["low"] = cells["population"] * share
    # clusters: queen-contiguous candidates (grown by 1 m, corner neighbours overlap and merge)
    grown = cells.loc[cells["flagged"], ["geometry"]].buffer(1, join_style="mitre")
    blobs = gpd.GeoDataFrame(geometry=[grown.union_all()], crs=3035).explode(index_parts=False).reset_index(drop=True)
    centres = gpd.GeoDataFrame(geometry=cells.loc[cells["flagged"]].centroid, crs=3035)
    core = gpd.sjoin(centres, blobs, predicate="within")["index_right"]
    # numbered as carroyage numbers them: by each cluster's north-west-most cell
    first = corner.loc[core.index].assign(blob=core).sort_values(["y", "x"], ascending=[False, True])
    number = pd.Series(np.arange(1, len(blobs) + 1), index=first.drop_duplicates("blob")["blob"].to_numpy())
    blobs["cluster"] = number.sort_index().to_numpy()
    cells["cluster"] = 0
    cells.loc[core.index, "cluster"] = number.loc[core.to_numpy()].to_numpy()
    # contour ring (one step): outside inhabited cells touching a cluster, each offered to the least
    # populated one it touches, taken most low-income first while the quartier stays above 50 %
    sums = cells[cells["cluster"] > 0].groupby("cluster")[["population", "low"]].sum()
    outside = cells[(cells["cluster"] == 0) & (cells["population"] > 0)]
    offered = gpd.sjoin(outside[["geometry"]], blobs, predicate="intersects")[["cluster"]]
    offered["core_population"] = sums["population"].reindex(offered["cluster"]).to_numpy()
    offered = offered.rename_axis("cell").reset_index()
    offered = offered.sort_values(["cell", "core_population", "cluster"]).drop_duplicates("cell")
    offered = offered.join(cells[["population", "low"]], on="cell").join(corner, on="cell")
    offered["share"] = share[offered["cell"].to_numpy()]
    offered = offered.sort_values(["cluster", "share", "y", "x"], ascending=[True, False, False, True])
    added = offered.groupby("cluster")[["population", "low"]].cumsum()
    core_sums = sums.reindex(offered["cluster"]).to_numpy()
    holds = core_sums[:, 1] + added["low"].to_numpy() > rule.low_income_share * (
        core_sums[:, 0] + added["population"].to_numpy()
    )
    taken = offered[(~pd.Series(holds, index=offered.index)).groupby(offered["cluster"]).cumsum() == 0]
    cells.loc[taken["cell"].to_numpy(), "cluster"] = taken["cluster"].to_numpy()
    # quartiers: at least 1,000 residents and more than half of them below the threshold, pooled
    figures = (
        cells[cells["cluster"] > 0]
        .groupby("cluster")
        .agg(population=("population", "sum"), low=("low", "sum"), cells=("population", "size"))
    )
    figures["low_income_share"] = figures["low"] / figures["population"]
    kept = figures[
        (figures["population"] >= rule.min_population) & (figures["low_income_share"] > rule.low_income_share)
    ]
    kept = kept if cells["population"].sum() >= rule.min_agglomeration_population else kept.iloc[:0]
    medians = pooled_medians(income.mu, income.sigma, income.population, cells["cluster"].to_numpy() - 1, len(blobs))
    kept = kept.assign(
        code=[f"QC{i:0{max(3, len(str(len(kept))))}d}" for i in range(1, len(kept) + 1)],
        median_income=np.round(medians[kept.index.to_numpy() - 1], 0),
    )
    cells["qpv"] = cells["cluster"].map(kept["code"])  # NULL outside every quartier, as carroyage writes
    qpv = cells[cells["qpv"].notna()][["qpv", "geometry"]].dissolve(by="qpv").join(kept.set_index("code"))
    qpv = qpv.rename_axis("code").reset_index()
    qpv["population"] = qpv["population"].round(1)
    qpv["low_income_share"] = qpv["low_income_share"].round(4)
    qpv["area_ha"] = qpv.area / 1e4
    qpv["estimated"] = True
    columns = ["code", "population", "median_income", "low_income_share", "cells", "area_ha", "estimated"]
    # the CRS carroyage writes a metropolitan grid in (Lambert-93), so both write the same file
    qpv[[*columns, "geometry"]].to_crs(OUTPUT_EPSG).to_file(out, layer="qpv")
    cells.drop(columns="low").to_crs(OUTPUT_EPSG).to_file(out, layer="cells")
    return len(qpv), model_read


def cli_command(grid: Path, out: Path) -> list[str]:
    """``carroyage delimit`` exactly as a user types it, run by this Python."""
    return [
        sys.executable,
        "-m",
        "carroyage",
        "delimit",
        str(grid),
        "--out",
        str(out),
        "--rule",
        "decree-2014",
        "--national-median",
        "22040",
        "-q",
    ]


def run_cli(grid: Path, work: Path) -> dict[str, float]:
    """The command as a whole process: its wall time, its own peak memory, its quartiers."""
    import pyogrio

    out = work / "carroyage-cli.gpkg"
    run = measure.run(cli_command(grid, out))
    return {
        "total": run.wall,
        "user_s": run.user,
        "sys_s": run.sys,
        "peak_mb": run.peak_mb,
        "quartiers": pyogrio.read_info(out, layer="qpv")["features"],
    }


def run_in_process(variant: str, grid: Path, work: Path, threshold: float) -> dict[str, float]:
    """One variant of this script in a process of its own, under the launcher."""
    command = [sys.executable, __file__, "--variant", variant, "--grid", grid, "--work", work]
    run = measure.run([*command, "--threshold", repr(threshold)])
    return {**run.last_json(), "wall": run.wall, "peak_mb": run.peak_mb}


END_TO_END = ("carroyage", "carroyage-parquet", "carroyage-cli", "geopandas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2_300_000, help="inhabited cells of the synthetic grid")
    parser.add_argument("--repeat", type=int, default=2, help="runs per end-to-end variant; the fastest is kept")
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--shuffled", action="store_true", help="rows in random order instead of INSEE's spatial order")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--grid", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threshold", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.grid, args.work, args.threshold)))
        return

    from synthetic import write_synthetic

    from carroyage.cpu import NUMPY_SWITCH, prefer_avx2_sort

    prefer_avx2_sort()  # every variant's process in the environment the carroyage command makes
    print(f"{NUMPY_SWITCH}={os.environ.get(NUMPY_SWITCH, '(unset)')!r} for every variant", flush=True)
    name = f"france_{args.cells}{'_shuffled' if args.shuffled else ''}.csv"
    grid = write_synthetic(args.work / name, args.cells, shuffled=args.shuffled)
    print(f"grid: {grid} ({args.cells:,} cells); launcher floor {measure.floor():.0f} MB", flush=True)
    runs: dict[str, list[dict[str, float]]] = {"read": [run_in_process("read", grid, args.work, 0.0)]}
    for _ in range(max(1, args.repeat)):
        for variant in END_TO_END:
            if variant == "carroyage-cli":
                result = run_cli(grid, args.work)
            else:
                threshold = runs.get("carroyage", [{}])[0].get("threshold", 0.0)
                result = run_in_process(variant, grid, args.work, threshold)
            runs.setdefault(variant, []).append(result)
            print(f"  run {variant:18} {result['total']:7.2f} s  {result['peak_mb']:6.0f} MB", flush=True)
    results = {}
    print()
    for variant, done in runs.items():
        fastest = min(done, key=lambda run: run.get("total", 0))
        results[variant] = {**fastest, "peak_mb": max(run["peak_mb"] for run in done)}
        totals = ", ".join(f"{run.get('total', run.get('read', 0)):.2f}" for run in done)
        shown = {key: round(value, 3) for key, value in results[variant].items()}
        print(f"{variant:18} {json.dumps(shown)}  totals: {totals} s", flush=True)
    report(results)


def report(results: dict[str, dict[str, float]]) -> None:
    """Print the ratios and whether each target is met."""
    ours, plain, read, cli = results["carroyage"], results["geopandas"], results["read"], results["carroyage-cli"]
    plain_process = plain["wall"] - plain["model_read"]  # the geopandas script as a whole process
    rows = [
        ("end-to-end speedup vs geopandas (GeoPackage)", plain["total"] / ours["total"], "≥", TARGETS["speedup"]),
        ("  as a user sees it: whole processes, the command", plain_process / cli["total"], "≥", TARGETS["speedup"]),
        (
            "end-to-end speedup vs geopandas (GeoParquet)",
            plain["total"] / results["carroyage-parquet"]["total"],
            "≥",
            TARGETS["speedup"],
        ),
        ("carroyage delimit command (s)", cli["total"], "", None),
        ("carroyage in-process run (s)", ours["total"], "", None),
        ("geopandas script, whole process (s)", plain_process, "", None),
        ("geopandas in-process run (s)", plain["total"], "", None),
        ("command / in-process run", cli["total"] / ours["total"], "", None),
        ("peak memory, carroyage GeoPackage run (MB)", ours["peak_mb"], "<", TARGETS["peak_mb"]),
        ("peak memory, carroyage delimit command (MB)", cli["peak_mb"], "<", TARGETS["peak_mb"]),
        ("peak memory, carroyage GeoParquet run (MB)", results["carroyage-parquet"]["peak_mb"], "", None),
        ("peak memory, geopandas run (MB)", plain["peak_mb"], "", None),
        ("peak memory, bare pyarrow read (MB)", read["peak_mb"], "", None),
        ("computation / bare pyarrow read", ours["compute"] / read["read"], "≤", TARGETS["compute_over_read"]),
        ("read_grid (validated) / bare pyarrow read", ours["load"] / read["read"], "", None),
        ("peak memory ratio carroyage / geopandas", ours["peak_mb"] / plain["peak_mb"], "", None),
    ]
    print()
    same = ours["quartiers"] == plain["quartiers"]
    print(
        f"quartiers: carroyage {ours['quartiers']:.0f}, geopandas {plain['quartiers']:.0f}"
        + ("" if same else "  (DIFFERENT: the comparison is not like for like)")
        + f"; the command (default gap filling) {cli['quartiers']:.0f}"
    )
    print(
        f"cells written in EPSG:{ours['epsg']:.0f} (carroyage) and EPSG:{plain['epsg']:.0f} (geopandas)"
        + ("" if ours["epsg"] == plain["epsg"] == OUTPUT_EPSG else "  (DIFFERENT: the comparison is not like for like)")
    )
    for name, value, sense, target in rows:
        verdict = ""
        if target is not None:
            met = value >= target if sense == "≥" else value < target if sense == "<" else value <= target
            verdict = f"target {sense} {target:g}: {'met' if met else 'NOT met'}"
        print(f"{name:52} {value:10.2f}   {verdict}")


if __name__ == "__main__":
    main()

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
* ``geopandas``: the plain version a geopandas user would write: pandas CSV read, cell boxes,
  ``union_all`` of candidate cells, spatial join of cells to the unioned quartiers, per-quartier
  figures, ``to_crs`` and ``to_file`` of the ``qpv`` and ``cells`` layers, the cells with the same
  eight columns as carroyage's, in the same CRS (Lambert-93, carroyage's default for a metropolitan
  grid) and with the same NULL for a cell outside every quartier. It uses carroyage's per-cell
  income model, so only the geometry and I/O machinery differ; its second read of the grid for
  that model (and importing that model) is not counted. Gap filling is off in the in-process
  variants (the plain version has none), so both must find the same quartiers, and both must
  write the same CRS; the report says if they do not. The command keeps its default gap
  filling, as a user would; its quartier count is printed beside.

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
    """The straightforward geopandas pipeline writing the same two layers, with the same columns.

    Returns the number of quartiers and the seconds spent importing carroyage's income model and
    re-reading the grid for it, which the caller leaves out of the plain pipeline's time.
    """
    import geopandas as gpd
    import numpy as np
    import pandas as pd
    import shapely

    start = time.perf_counter()
    from carroyage import IncomeModel, read_grid
    from carroyage.engine.income import cell_distributions, cell_income

    model_read = time.perf_counter() - start
    frame = pd.read_csv(grid)
    corner = frame["idcar_200m"].str.extract(r"N(?P<y>\d+)E(?P<x>\d+)").astype("int64")
    # same per-cell model as carroyage, at the threshold carroyage computed for this grid
    start = time.perf_counter()
    table = read_grid(grid)
    model_read += time.perf_counter() - start
    income = cell_income(table, cell_distributions(table, IncomeModel()), threshold)
    cells = gpd.GeoDataFrame(
        {
            "idcar_200m": frame["idcar_200m"],
            "population": frame["ind"].astype("float64"),
            "low_income_share": np.round(income.low_share, 4),
            "median_income": np.round(income.median, 0),
            "income_spread": np.round(income.sigma, 4),
        },
        geometry=shapely.box(corner["x"], corner["y"], corner["x"] + 200, corner["y"] + 200),
        crs=3035,
    )
    cells["flagged"] = cells["low_income_share"] > 0.5
    quartiers = (
        gpd.GeoDataFrame(geometry=[cells[cells["flagged"]].union_all()], crs=3035)
        .explode(index_parts=False)
        .reset_index(drop=True)
    )
    quartiers["cluster"] = np.arange(1, len(quartiers) + 1)
    points = gpd.GeoDataFrame(
        cells[["population", "low_income_share"]], geometry=cells.representative_point(), crs=3035
    )
    joined = gpd.sjoin(points, quartiers, predicate="within", how="left")
    cells["cluster"] = joined["cluster"].fillna(0).astype("int64").groupby(level=0).first()
    joined["low"] = joined["population"] * joined["low_income_share"]
    figures = joined.groupby("cluster")[["population", "low"]].sum()
    figures = figures[(figures["population"] >= 1000) & (figures["low"] > 0.5 * figures["population"])]
    figures["code"] = [f"QC{i:04d}" for i in range(1, len(figures) + 1)]
    qpv = quartiers.merge(figures, left_on="cluster", right_index=True)
    cells["qpv"] = cells["cluster"].map(figures["code"])  # NULL outside every quartier, as carroyage writes
    # the CRS carroyage writes a metropolitan grid in (Lambert-93), so both write the same file
    qpv.to_crs(OUTPUT_EPSG).to_file(out, layer="qpv")
    cells.to_crs(OUTPUT_EPSG).to_file(out, layer="cells")
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

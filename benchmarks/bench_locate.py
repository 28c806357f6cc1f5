"""Batch address check benchmark: ``locate-csv`` against pandas + geopandas ``sjoin``.

Writes (once) a CSV of 1 million coordinate rows (a third near the QPVs of French cities, the rest
spread over metropolitan France), then runs, each in its own process (under the launcher of
``measure.py``, so that its peak memory is its own) and both from the files
to an annotated CSV, including loading the national 2024 QPV layer:

* ``carroyage``: :func:`carroyage.address.batch.locate_csv` (streamed in chunks);
* ``geopandas``: ``pandas.read_csv`` → ``points_from_xy`` → ``to_crs(2154)`` → ``sjoin(within)``
  → ``to_csv``, the plain way.

and the same two as whole commands, as a user runs them (interpreter start-up, imports and the
zones' loading included): ``carroyage locate-csv`` (its prepared zones cached next to the QPV
file by a first run, as any second run finds them) and the same geopandas steps as a script.
It prints both ratios against the target (≥ 2× faster); the whole commands run in turn, ``--runs``
pairs, and the ratio quoted is the median of the pairs' ratios (each command's median CPU
seconds are printed too: the command uses a second core where the script uses one).

The script is what a geopandas user writes, with the defaults, and does less than the command:
no distance to the boundary, no nearest zone for ``out`` rows, two columns appended instead of
eleven, no manifest. Both must find the same points inside (else ``DIFFERENT`` is printed)::

    python benchmarks/bench_locate.py [--rows 1000000] [--runs 5] [--work benchmarks/work]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import measure  # noqa: E402

TARGET = 2.0


def write_points(path: Path, rows: int, seed: int = 0) -> Path:
    """Coordinates: a third scattered within 2 km of QPVs, the rest anywhere in France."""
    if path.exists():
        return path
    import shapely

    from carroyage.data import QPV_2024
    from carroyage.layers import read_official

    rng = np.random.default_rng(seed)
    official = read_official(QPV_2024)
    metropole = official[(official["insee_reg"].fillna("0").astype(int) > 10) & ~official.geometry.is_empty]
    centres = shapely.point_on_surface(metropole.geometry.to_numpy())
    near = rows // 3
    pick = rng.integers(0, len(centres), near)
    lon = np.concatenate(
        [shapely.get_x(centres)[pick] + rng.normal(0, 0.015, near), rng.uniform(-4.5, 8.0, rows - near)]
    )
    lat = np.concatenate(
        [shapely.get_y(centres)[pick] + rng.normal(0, 0.01, near), rng.uniform(42.5, 51.0, rows - near)]
    )
    order = rng.permutation(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table(
        {
            "id": np.arange(rows),
            "nom": [f"Personne {i}" for i in range(rows)],
            "lon": np.round(lon[order], 6),
            "lat": np.round(lat[order], 6),
        }
    )
    pacsv.write_csv(table, path, pacsv.WriteOptions(delimiter=";", quoting_style="none"))
    return path


def run_variant(variant: str, points: Path, work: Path) -> dict[str, float]:
    import geopandas  # noqa: F401  (imports are not timed)

    import carroyage.address.batch  # noqa: F401

    start = time.perf_counter()
    if variant == "carroyage":
        from carroyage.address.batch import locate_csv
        from carroyage.address.lookup import load_zones
        from carroyage.data import QPV_2024

        counts = locate_csv(points, work / "carroyage_out.csv", load_zones([QPV_2024]), tolerance=0)
        inside = counts["in"]
    else:
        inside = plain_geopandas(points, work / "geopandas_out.csv")
    return {"seconds": time.perf_counter() - start, "inside": inside}


GEOPANDAS_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {here!r})
from bench_locate import plain_geopandas
print(plain_geopandas(Path({points!r}), Path({out!r})))
"""


def whole_commands(points: Path, work: Path, runs: int) -> dict[str, dict[str, float]]:
    """``carroyage locate-csv`` and the geopandas script, each a fresh process, timed from spawn to exit.

    The two run in turn (A B A B ...) and the ratio is taken pair by pair: on a shared machine
    its speed drifts between runs, a pair shares the same moment.
    """
    from carroyage.address.lookup import load_zones
    from carroyage.data import QPV_2024

    load_zones([QPV_2024])  # the cache a first run leaves next to the QPV file
    command = [sys.executable, "-m", "carroyage", "locate-csv", str(points), "--out", str(work / "command_out.csv")]
    script = GEOPANDAS_SCRIPT.format(here=str(HERE), points=str(points), out=str(work / "script_out.csv"))
    ours, theirs, ratios = [], [], []
    for _ in range(runs):
        mine = measure.run([*command, "--tolerance", "0", "--quiet"])
        baseline = measure.run([sys.executable, "-c", script])
        ours.append(mine)
        theirs.append(baseline)
        ratios.append(baseline.wall / mine.wall)
    summary = re.search(r"dans la zone ([\d\u202f]+)", ours[-1].stdout)  # the command's French summary
    assert summary is not None, ours[-1].stdout
    inside = int(summary.group(1).replace("\u202f", ""))
    return {
        "carroyage locate-csv": _figures(ours) | {"inside": inside},
        "geopandas script": _figures(theirs) | {"inside": int(theirs[-1].stdout.split()[-1])},
        "ratios": {
            "median": round(statistics.median(ratios), 2),
            "min": round(min(ratios), 2),
            "max": round(max(ratios), 2),
        },
    }


def _figures(runs: list[measure.Run]) -> dict[str, float]:
    """Median wall and CPU seconds of a command's runs, and its largest peak memory."""
    return {
        "seconds": round(statistics.median(r.wall for r in runs), 3),
        "cpu_seconds": round(statistics.median(r.user + r.sys for r in runs), 3),
        "peak_mb": round(max(r.peak_mb for r in runs), 1),
    }


def plain_geopandas(points: Path, out: Path) -> int:
    import geopandas as gpd
    import pandas as pd
    import shapely

    from carroyage.data import QPV_2024

    zones = gpd.read_file(QPV_2024)
    zones["geometry"] = shapely.make_valid(zones.geometry.to_numpy(), method="structure", keep_collapsed=False)
    zones = zones[~zones.geometry.is_empty].to_crs(2154)
    frame = pd.read_csv(points, sep=";")
    located = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=4326).to_crs(2154)
    joined = gpd.sjoin(located, zones[["code_qp", "lib_qp", "geometry"]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated()]
    joined.drop(columns=["geometry", "index_right"]).to_csv(out, sep=";", index=False)
    return int(joined["code_qp"].notna().sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument(
        "--runs", type=int, help="interleaved pairs of whole commands (default 5; 1 under 100,000 rows, a smoke run)"
    )
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--points", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.runs = args.runs or (5 if args.rows >= 100_000 else 1)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.points, args.work)))
        return
    points = write_points(args.work / f"points_{args.rows}.csv", args.rows)
    results = {}
    for variant in ("carroyage", "geopandas"):
        command = [sys.executable, __file__, "--variant", variant, "--points", str(points), "--work", str(args.work)]
        run = measure.run(command)
        results[variant] = {**run.last_json(), "peak_mb": round(run.peak_mb, 1)}
        print(f"{variant:10} {json.dumps(results[variant])}", flush=True)
    ratio = results["geopandas"]["seconds"] / results["carroyage"]["seconds"]
    same = results["carroyage"]["inside"] == results["geopandas"]["inside"]
    print(
        f"\npoints inside a QPV: carroyage {results['carroyage']['inside']}, geopandas {results['geopandas']['inside']}"
        + ("" if same else "  (DIFFERENT)")
    )
    print(
        f"{'speedup vs pandas + geopandas sjoin':40} {ratio:8.2f}   "
        f"target ≥ {TARGET:g}: {'met' if ratio >= TARGET else 'NOT met'}"
    )
    commands = whole_commands(points, args.work, args.runs)
    ratios = commands.pop("ratios")
    for name, figures in commands.items():
        print(f"{name:24} {json.dumps(figures)}")
    inside = {figures["inside"] for figures in commands.values()}
    print(
        f"points inside a QPV, as whole commands: {' '.join(map(str, sorted(inside)))}"
        + ("" if len(inside) == 1 else "  (DIFFERENT)")
    )
    whole = ratios["median"]
    print(
        f"{'as whole commands: speedup vs geopandas':40} {whole:8.2f}   "
        f"target ≥ {TARGET:g}: {'met' if whole >= TARGET else 'NOT met'}   "
        f"(median of {args.runs} interleaved pairs; min {ratios['min']:.2f}, max {ratios['max']:.2f})"
    )


if __name__ == "__main__":
    main()

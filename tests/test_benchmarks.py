"""The benchmark scripts must keep running: tiny inputs, every variant, the report (never a timing)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: object) -> str:
    result = subprocess.run(
        [sys.executable, ROOT / "benchmarks" / script, *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_delimit_benchmark_runs_on_a_small_grid(tmp_path):
    stdout = run_benchmark("bench_delimit.py", "--cells", "20000", "--repeat", "1", "--work", tmp_path)
    for line in (
        "end-to-end speedup vs geopandas (GeoPackage)",
        "as a user sees it: whole processes, the command",
        "carroyage delimit command (s)",
        "peak memory, carroyage delimit command (MB)",
        "computation / bare pyarrow read",
    ):
        assert line in stdout
    assert "DIFFERENT" not in stdout  # both pipelines found the same quartiers

    # like for like: the same layers, the same number of features, the same cell columns
    ours, plain = (
        {layer: pyogrio.read_info(tmp_path / name, layer=layer) for layer in ("cells", "qpv")}
        for name in ("carroyage.gpkg", "geopandas.gpkg")
    )
    assert [ours[layer]["features"] for layer in ours] == [plain[layer]["features"] for layer in plain]
    assert list(ours["cells"]["fields"]) == list(plain["cells"]["fields"])

    # the synthetic 20,000 cells are too sparse for neighbourhoods to matter (imputed-cell pooling,
    # queen corners, contour ring): the same pipelines on a real city's grid, cell by cell
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_delimit import plain_geopandas

    from carroyage import delimit, read_grid
    from carroyage.data import AMIENS_2019

    geography = delimit(read_grid(AMIENS_2019), "decree-2014", national_median=22_040, gap_fill_cells=0)
    count, _ = plain_geopandas(AMIENS_2019, tmp_path / "amiens.gpkg", geography.manifest["threshold"]["value"])
    cells = pyogrio.read_dataframe(tmp_path / "amiens.gpkg", layer="cells", read_geometry=False)
    assert count == len(geography.qpv) > 0
    assert (cells["cluster"].to_numpy() == geography.cells["cluster"].to_numpy()).all()
    assert (cells["qpv"].fillna("").to_numpy() == geography.cells["qpv"].fillna("").to_numpy(dtype=str)).all()


def test_locate_benchmark_runs_on_a_small_file(tmp_path):
    stdout = run_benchmark("bench_locate.py", "--rows", "20000", "--work", tmp_path)
    assert "speedup vs pandas + geopandas sjoin" in stdout
    assert "DIFFERENT" not in stdout  # both found the same points inside QPVs


def test_gridding_benchmark_compares_both_pipelines_in_one_environment(tmp_path):
    args = ("--households", "30000", "--runs", "1", "--repeat", "2", "--warm-mb", "16", "--work", tmp_path)
    stdout = run_benchmark("bench_grid.py", *args)
    assert "per-cell figures: identical" in stdout  # both pipelines gave every cell the same figures
    assert "NPY_DISABLE_CPU_FEATURES=" in stdout and "for both" in stdout
    variants = [line.split()[1] for line in stdout.splitlines() if line.split()[:1] == ["1"]]
    assert variants == ["carroyage", "carroyage", "geopandas"]  # carroyage repeated, averaged
    assert "speed-up vs geopandas sjoin, whole processes, wall time:" in stdout


def test_startup_benchmark_checks_every_command():
    stdout = run_benchmark("bench_startup.py", "--runs", "1", "--warmup", "0")
    for name in ("python -c pass", "import typer", "carroyage --help", "carroyage delimit --help", "locate"):
        assert name in stdout
    assert stdout.count("target < ") == 4
    assert "carroyage delimit missing.csv --out x.gpkg: exit 2, one line on stderr:" in stdout
    assert "carroyage locate (no argument): exit 2, one line on stderr:" in stdout


def test_serve_benchmark_on_a_few_requests():
    result = subprocess.run(
        [
            sys.executable,
            ROOT / "benchmarks" / "bench_serve.py",
            "--requests",
            "16",
            "--clients",
            "2",
            "--budget",
            "90",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    whole = f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, whole
    for name in (
        "baseline: trivial FastAPI app /ping",
        "/openapi.json",
        "/api/locate lon/lat",
        "adresse (BAN extract)",
    ):
        assert name in result.stdout, whole
    assert "p99 of lon/lat lookups" in result.stdout, whole
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("baseline", "carroyage "))]
    assert len(rows) == 4 and all(row[-2] == "0" for row in rows), whole  # no errors (and their causes if any)


def test_threaded_lookup_benchmark_runs_with_the_lock():
    assert "with the lock" in run_benchmark("threads_lookup.py", "--trials", "1")


def test_measured_peak_is_the_commands_own_not_its_parents():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import measure

    ballast = np.ones(400 * 2**20 // 8)  # this process now holds 400 MB more
    child = measure.run([sys.executable, "-c", "import json; print(json.dumps({'ok': 1}))"])
    assert child.last_json() == {"ok": 1} and child.exit == 0
    assert child.peak_mb < 100, child.peak_mb  # a plain subprocess would report ~400 MB here
    del ballast


def test_synthetic_grid_is_sorted_like_insee_files_unless_shuffled():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from synthetic import synthetic_grid

    from carroyage import parse_ids

    ordered, shuffled = synthetic_grid(5_000).to_pandas(), synthetic_grid(5_000, shuffled=True).to_pandas()
    cells, shuffled_cells = (parse_ids(frame["idcar_200m"].to_numpy()) for frame in (ordered, shuffled))
    assert (np.diff(np.lexsort((cells.y, cells.x))) == 1).all()  # by column, then row
    assert not (np.diff(np.lexsort((shuffled_cells.y, shuffled_cells.x))) == 1).all()
    resorted = shuffled.iloc[np.lexsort((shuffled_cells.y, shuffled_cells.x))].reset_index(drop=True)
    pd.testing.assert_frame_equal(ordered, resorted)  # the same cells with the same figures


def test_fuzz_benchmark_counts_its_cases():
    output = run_benchmark("fuzz.py", "--cases", "6")
    assert "6 cases in" in output and "no exception other than a one-line CarroyageError escaped:" in output


def test_geocode_benchmark_runs_tiny(tmp_path):
    stdout = run_benchmark("geocode.py", "--addresses", "5000", "--queries", "500", "--work", tmp_path, "--no-addok")
    for line in ("exact at the number", "wrong street among accepted", "invented for non-existent"):
        assert line in stdout

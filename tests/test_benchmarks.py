"""The benchmark scripts must keep running: a small grid, every variant, the report."""

import subprocess
import sys
from pathlib import Path

import pyogrio

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: object) -> str:
    result = subprocess.run([sys.executable, ROOT / "benchmarks" / script, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_delimit_benchmark_runs_on_a_small_grid(tmp_path):
    stdout = run_benchmark("bench_delimit.py", "--cells", "20000", "--work", tmp_path)
    assert "end-to-end speedup vs geopandas (GeoPackage)" in stdout
    assert "computation / bare pyarrow read" in stdout
    assert "DIFFERENT" not in stdout  # both pipelines found the same quartiers
    # like for like: the same layers, the same number of features, the same cell columns
    ours, plain = ({layer: pyogrio.read_info(tmp_path / name, layer=layer) for layer in ("cells", "qpv")} for name in ("carroyage.gpkg", "geopandas.gpkg"))
    assert [ours[layer]["features"] for layer in ours] == [plain[layer]["features"] for layer in plain]
    assert list(ours["cells"]["fields"]) == list(plain["cells"]["fields"])


def test_locate_benchmark_runs_on_a_small_file(tmp_path):
    stdout = run_benchmark("bench_locate.py", "--rows", "20000", "--work", tmp_path)
    assert "speedup vs pandas + geopandas sjoin" in stdout
    assert "DIFFERENT" not in stdout  # both found the same points inside QPVs

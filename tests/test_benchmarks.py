"""The benchmark scripts must keep running: a small grid, every variant, the report."""

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
    stdout = run_benchmark("bench_delimit.py", "--cells", "20000", "--work", tmp_path)
    assert "end-to-end speedup vs geopandas (GeoPackage)" in stdout
    assert "computation / bare pyarrow read" in stdout
    assert "DIFFERENT" not in stdout  # both pipelines found the same quartiers
    # like for like: the same layers, the same number of features, the same cell columns
    ours, plain = (
        {layer: pyogrio.read_info(tmp_path / name, layer=layer) for layer in ("cells", "qpv")}
        for name in ("carroyage.gpkg", "geopandas.gpkg")
    )
    assert [ours[layer]["features"] for layer in ours] == [plain[layer]["features"] for layer in plain]
    assert list(ours["cells"]["fields"]) == list(plain["cells"]["fields"])


def test_locate_benchmark_runs_on_a_small_file(tmp_path):
    stdout = run_benchmark("bench_locate.py", "--rows", "20000", "--work", tmp_path)
    assert "speedup vs pandas + geopandas sjoin" in stdout
    assert "DIFFERENT" not in stdout  # both found the same points inside QPVs


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

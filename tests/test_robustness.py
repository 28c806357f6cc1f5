"""Nothing half-written: failed, stopped and killed runs leave earlier outputs as they were."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import carroyage, filosofi_frame

from carroyage.cli import INTERRUPTED
from carroyage.data import AMIENS_2019
from carroyage.files import TEMPORARY_TAG, atomic_path

POOR = {(c, r) for c in range(2, 6) for r in range(2, 5)}


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if TEMPORARY_TAG in p.name]


@pytest.fixture(scope="module")
def large_grid(tmp_path_factory) -> Path:
    """A grid large enough (90,000 cells) for a run to be stopped while it writes."""
    path = tmp_path_factory.mktemp("large") / "grid.csv"
    filosofi_frame(POOR, size=300).to_csv(path, index=False)
    return path


def test_a_failed_run_keeps_the_earlier_output(tmp_path):
    keep = tmp_path / "keep.gpkg"
    assert carroyage("delimit", AMIENS_2019, "--national-median", "22040", "--out", keep, "-q").returncode == 0
    before = keep.read_bytes()
    failed = carroyage(
        "delimit", AMIENS_2019, "--national-median", "22040", "--out", keep, "--geojson", "/dev/null/q.geojson", "-q"
    )
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1, failed.stderr
    assert keep.read_bytes() == before
    assert temporaries(tmp_path) == []


def test_an_output_that_is_an_input_is_refused(tmp_path):
    grid = tmp_path / "grid.csv"
    grid.write_bytes(AMIENS_2019.read_bytes())
    result = carroyage("delimit", grid, "--national-median", "22040", "--out", tmp_path / "." / "grid.csv")
    assert result.returncode == 2 and "la sortie est aussi une entrée" in result.stderr
    assert grid.read_bytes() == AMIENS_2019.read_bytes()


def stop_while_writing(
    grid: Path, out: Path, how: signal.Signals, delay: float = 0.0
) -> subprocess.CompletedProcess[str] | None:
    """Run ``delimit``, send ``how`` once its output's temporary exists (+ ``delay``); None if it
    finished first."""
    command = [sys.executable, "-m", "carroyage", "delimit", grid, "--national-median", "22040", "--out", out, "-q"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not temporaries(out.parent) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    if process.poll() is not None:
        process.communicate()
        return None
    process.send_signal(how)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_a_stopped_run_removes_its_temporaries(large_grid, tmp_path):
    out = tmp_path / "out.gpkg"
    out.write_bytes(b"earlier output")
    result = stop_while_writing(large_grid, out, signal.SIGTERM)
    assert result is not None, "the run finished before it could be stopped"
    assert result.returncode == 130 and result.stderr.strip() == INTERRUPTED
    assert out.read_bytes() == b"earlier output"
    assert temporaries(tmp_path) == []


def test_killed_runs_never_damage_the_earlier_output_and_their_leftovers_are_swept(large_grid, tmp_path):
    out = tmp_path / "out.gpkg"
    out.write_bytes(b"earlier output")
    for delay in random.Random(7).sample([0.0, 0.05, 0.1, 0.2, 0.3, 0.5], 3):
        if stop_while_writing(large_grid, out, signal.SIGKILL, delay) is None:
            break  # finished first: the output is the new one, whole
        assert out.read_bytes() == b"earlier output", delay
    with atomic_path(tmp_path / "next.txt") as temporary:  # the next write in the folder sweeps
        temporary.write_text("next")
    assert temporaries(tmp_path) == []


def test_a_live_runs_temporary_is_not_swept(tmp_path):
    mine = tmp_path / f".out{TEMPORARY_TAG}{os.getpid()}-abc.gpkg"
    mine.write_text("being written")
    with atomic_path(tmp_path / "other.txt") as temporary:
        temporary.write_text("x")
    assert mine.exists()

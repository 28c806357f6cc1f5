"""Shared fixtures: small hand-made grids written as real files."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carroyage.engine.grid import format_ids

X0, Y0 = 3_763_200, 2_999_000


@dataclass
class Ran:
    """What a command printed and returned, like ``subprocess.CompletedProcess``."""

    returncode: int
    stdout: str
    stderr: str


def carroyage(*args: object, real: bool = False) -> Ran:
    """Run the ``carroyage`` command with ``args``, in this process unless ``real``.

    In-process runs go through the same entry point as the installed command (``main``, with its
    error handling and exit codes) with ``sys.argv`` and both streams redirected: only the
    interpreter's start-up is skipped. ``real=True`` starts ``python -m carroyage``, for the few
    tests that are about the whole process.
    """
    argv = [str(a) for a in args]
    if real:
        done = subprocess.run([sys.executable, "-m", "carroyage", *argv], capture_output=True, text=True, timeout=300)
        return Ran(done.returncode, done.stdout, done.stderr)
    from carroyage.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["carroyage", *argv]
    code: int | str | None = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exit_:
                code = exit_.code
    finally:
        sys.argv = saved
    return Ran(code if isinstance(code, int) else (0 if code is None else 1), out.getvalue(), err.getvalue())


def cell_ids(cols: np.ndarray, rows: np.ndarray, res: int = 200) -> np.ndarray:
    """Ids of cells at column/row offsets from a fixed corner (row grows northwards)."""
    return format_ids(X0 + np.asarray(cols) * res, Y0 + np.asarray(rows) * res, res)


def filosofi_frame(poor: set[tuple[int, int]], size: int = 10, residents: float = 100.0) -> pd.DataFrame:
    """A ``size × size`` Filosofi-like grid; cells in ``poor`` are low-income, others well-off."""
    cols, rows = np.meshgrid(np.arange(size), np.arange(size))
    cols, rows = cols.ravel(), rows.ravel()
    is_poor = np.array([(c, r) in poor for c, r in zip(cols, rows, strict=True)])
    households = np.full(cols.size, residents / 2)
    return pd.DataFrame(
        {
            "idcar_200m": cell_ids(cols, rows),
            "i_est_200": 0,
            "ind": residents,
            "men": households,
            "men_pauv": np.where(is_poor, households * 0.6, households * 0.05),
            "ind_snv": residents * np.where(is_poor, 11_000.0, 26_000.0),
        }
    )


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write a frame to a CSV in a temporary directory and return its path."""

    def write(frame: pd.DataFrame, name: str = "grid.csv", **kwargs) -> Path:
        path = tmp_path / name
        frame.to_csv(path, index=False, **kwargs)
        return path

    return write

"""Shared fixtures: small hand-made grids written as real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carroyage.grid import format_ids

X0, Y0 = 3_763_200, 2_999_000


def cell_ids(cols: np.ndarray, rows: np.ndarray, res: int = 200) -> np.ndarray:
    """Ids of cells at column/row offsets from a fixed corner (row grows northwards)."""
    return format_ids(X0 + np.asarray(cols) * res, Y0 + np.asarray(rows) * res, res)


def filosofi_frame(poor: set[tuple[int, int]], size: int = 10, residents: float = 100.0) -> pd.DataFrame:
    """A ``size × size`` Filosofi-like grid; cells in ``poor`` are low-income, others well-off."""
    cols, rows = np.meshgrid(np.arange(size), np.arange(size))
    cols, rows = cols.ravel(), rows.ravel()
    is_poor = np.array([(c, r) in poor for c, r in zip(cols, rows)])
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

"""A France-scale synthetic Filosofi 2019 grid (about 2.3 million inhabited 200 m cells).

Cities are random centres whose sizes follow a power law; cells are drawn around them, so the grid
has dense cores, suburbs and empty countryside as the real one does. Poorer neighbourhoods are
spatially correlated patches near city centres. Columns and types are those of INSEE's 2019 file,
and rows come in a spatial order as in INSEE's files (both shipped Amiens extracts are sorted by
cell); ``shuffled=True`` gives the same cells in random row order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from carroyage.engine.grid import format_ids

WEST, SOUTH, EAST, NORTH = 3_200_000, 2_050_000, 4_250_000, 3_150_000  # EPSG:3035, France
RES = 200


def synthetic_grid(cells: int = 2_300_000, seed: int = 0, shuffled: bool = False) -> pa.Table:
    """A table with the columns of INSEE's 2019 200 m file."""
    rng = np.random.default_rng(seed)
    cities = 6_000
    cx = rng.uniform(WEST + 20_000, EAST - 20_000, cities)
    cy = rng.uniform(SOUTH + 20_000, NORTH - 20_000, cities)
    weight = rng.pareto(1.1, cities) + 1
    radius = 600 * np.sqrt(weight)
    draws = int(cells * 2.4)
    city = rng.choice(cities, draws, p=weight / weight.sum())
    dist = rng.exponential(radius[city])
    angle = rng.uniform(0, 2 * np.pi, draws)
    col = ((cx[city] + dist * np.cos(angle) - WEST) // RES).astype(np.int64)
    row = ((cy[city] + dist * np.sin(angle) - SOUTH) // RES).astype(np.int64)
    inside = (col >= 0) & (col < (EAST - WEST) // RES) & (row >= 0) & (row < (NORTH - SOUTH) // RES)
    key = np.unique(col[inside] * 100_000 + row[inside])
    key = rng.permutation(key)[:cells]
    col, row = key // 100_000, key % 100_000
    n = len(key)
    x, y = WEST + col * RES, SOUTH + row * RES
    # poverty: patches (hashed 1 km blocks) inside dense areas
    block = (col // 5) * 7919 + (row // 5) * 104_729
    patch = (np.sin(block * 12.9898) * 43_758.5453) % 1
    poor_area = patch < 0.06
    ind = np.round(rng.lognormal(2.2, 1.1, n) + 1).clip(1, 3000)
    ind = np.where(poor_area, ind * 4, ind)
    men = np.round(ind / rng.uniform(1.8, 2.6, n), 1).clip(0.5)
    pov = np.where(poor_area, rng.uniform(0.3, 0.7, n), rng.beta(1.2, 9, n))
    men_pauv = np.round(men * pov, 1)
    level = np.where(poor_area, rng.uniform(11_000, 16_000, n), rng.lognormal(np.log(23_500), 0.2, n))
    imputed = (men < 11).astype(np.int64)
    table = pa.table(
        {
            "idcar_200m": pa.array(format_ids(x, y, RES), pa.string()),
            "i_est_200": imputed,
            "ind": ind,
            "men": men,
            "men_pauv": men_pauv,
            "men_1ind": np.round(men * 0.35, 1),
            "men_5ind": np.round(men * 0.05, 1),
            "men_prop": np.round(men * 0.5, 1),
            "men_fmp": np.round(men * 0.08, 1),
            "ind_snv": np.round(ind * level, 1),
            "men_surf": np.round(men * 85, 0),
            "men_coll": np.round(men * 0.4, 1),
            "men_mais": np.round(men * 0.6, 1),
            "lcog_geo": pa.array(["00000"] * n),
        }
    )
    # the same cells either way; sorted by column, then row, like the 2019 Amiens extract
    return table if shuffled else table.take(np.argsort(key))


def write_synthetic(path: Path, cells: int = 2_300_000, seed: int = 0, shuffled: bool = False) -> Path:
    """Write the synthetic grid as CSV (once; reused if present: the name must say size and order)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pacsv.write_csv(synthetic_grid(cells, seed, shuffled), path)
    return path

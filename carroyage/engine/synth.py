"""Synthetic households consistent with a Filosofi grid: realistic, reproducible, never real.

:func:`synthesise` draws, for every cell of a Filosofi grid (docs/households.md, "Synthetic
households"):

* **households**: ``men`` rounded at random to a whole number (at least one where the cell has
  residents); ``men_1ind`` of them of one person and ``men_5ind`` of five or more (scaled and
  rounded at random), the others of two to four persons with the mean that brings the cell's
  persons to ``ind`` (in expectation);
* **ages**: each person other than the first is under 14 with probability
  :data:`~carroyage.settings.SYNTH_UNDER14_SHARE`; consumption units follow the INSEE scale;
* **standard of living** (disposable income per UC): log-normal in each cell, its mean
  ``ind_snv / ind`` and its spread solved so that the share of households below 60 % of the
  national median is ``men_pauv / men``; then exactly ``men_pauv`` households (rounded at random)
  are drawn below that line and the others above it (stratified inverse-CDF draws);
* **declared income** from the standard of living through a stated tax-benefit bridge
  (:func:`declared_from_disposable`): transfers of 6,000 € per UC at zero income withdrawn at 30 %,
  income tax of 20 % above 25,000 €. It keeps incomes' order, lifts the poor and leaves the middle
  (20,000–25,000 €) unchanged.

Positions are uniform in the cell. Every draw comes from one ``numpy`` generator seeded with
``seed``: the same grid and seed give the same households, and the same Parquet bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import ndtr, ndtri

from ..errors import InputError
from ..labels import SYNTHETIC_NOTE
from ..manifest import shown_path
from ..settings import (
    POVERTY_LINE_FRACTION,
    POVERTY_NATIONAL_MEDIAN_EUR,
    SYNTH_BENEFIT_FLOOR_EUR,
    SYNTH_BENEFIT_TAPER,
    SYNTH_SPREAD_BOUNDS,
    SYNTH_TAX_RATE,
    SYNTH_TAX_START_EUR,
    SYNTH_UNDER14_SHARE,
)
from .readers import CellTable, read_grid

_BRIDGE_TOP = 1e9


@dataclass(frozen=True)
class Synthetic:
    """Synthetic households and how they were drawn.

    Attributes
    ----------
    table : pyarrow.Table
        One row per household: ``household``, ``idcar_200m``, ``x``, ``y`` (grid CRS),
        ``persons``, ``under14``, ``uc``, ``income_declared`` and ``income_disposable`` (the
        household's, € a year).
    facts : dict
        Seed, grid, CRS, bridge, counts: written into the file's metadata.
    """

    table: pa.Table
    facts: dict[str, object]


def _bridge_points() -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints of the piecewise-linear bridge: declared per UC → disposable per UC."""
    end = SYNTH_BENEFIT_FLOOR_EUR / SYNTH_BENEFIT_TAPER  # transfers are gone here
    declared = np.array([0.0, end, max(end, SYNTH_TAX_START_EUR), _BRIDGE_TOP])
    disposable = declared + np.maximum(0.0, SYNTH_BENEFIT_FLOOR_EUR - SYNTH_BENEFIT_TAPER * declared)
    disposable -= SYNTH_TAX_RATE * np.maximum(0.0, declared - SYNTH_TAX_START_EUR)
    return declared, disposable


def disposable_from_declared(declared: np.ndarray) -> np.ndarray:
    """The synthetic bridge: disposable income per UC from declared income per UC.

    Examples
    --------
    >>> disposable_from_declared(np.array([0.0, 10_000, 22_040, 35_000])).tolist()
    [6000.0, 13000.0, 22040.0, 33000.0]
    """
    points, values = _bridge_points()
    result: np.ndarray = np.interp(declared, points, values)
    return result


def declared_from_disposable(disposable: np.ndarray) -> np.ndarray:
    """The bridge's inverse; a standard of living below the transfers' floor has no declared income.

    Examples
    --------
    >>> declared_from_disposable(np.array([4000.0, 13000, 22040, 33000])).tolist()
    [0.0, 10000.0, 22040.0, 35000.0]
    """
    points, values = _bridge_points()
    result: np.ndarray = np.interp(disposable, values, points, left=0.0)
    return result


def _extra_columns(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Columns the grid reader does not keep (``men_1ind``, ``men_5ind``), read from the file."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        header = path.open(encoding="utf-8-sig").readline()
        delimiter = ";" if header.count(";") > header.count(",") else ","
        present = {c.strip().strip('"').lower(): c.strip().strip('"') for c in header.split(delimiter)}
        wanted = [present[n] for n in names if n in present]
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(include_columns=wanted),
        )
    elif suffix == ".parquet":
        schema = pq.read_schema(path)
        present = {n.lower(): n for n in schema.names}
        table = pq.read_table(path, columns=[present[n] for n in names if n in present])
    else:
        import pyogrio

        fields = {str(f).lower(): str(f) for f in pyogrio.read_info(path)["fields"]}
        _, table = pyogrio.read_arrow(path, columns=[fields[n] for n in names if n in fields], read_geometry=False)
    return {
        c.lower(): np.nan_to_num(np.asarray(table.column(c).to_numpy(), dtype=np.float64)) for c in table.column_names
    }


def synthesise(
    grid: CellTable | str | Path,
    seed: int = 0,
    *,
    national_median: float = POVERTY_NATIONAL_MEDIAN_EUR,
    sizes: dict[str, np.ndarray] | None = None,
) -> Synthetic:
    """Draw households consistent with a Filosofi grid (see the module docstring).

    Parameters
    ----------
    grid : CellTable, str or Path
        A Filosofi grid with ``ind``, ``men``, ``men_pauv`` and ``ind_snv``; ``men_1ind`` and
        ``men_5ind`` are read from the file when present.
    seed : int
        Seed of the one random generator.
    national_median : float
        National median standard of living behind ``men_pauv`` (2019: 22,040 €).
    sizes : dict, optional
        ``men_1ind`` and ``men_5ind`` per cell, for a ``CellTable`` given in memory.

    Returns
    -------
    Synthetic

    Examples
    --------
    >>> from carroyage.data import AMIENS_2019
    >>> a, b = synthesise(AMIENS_2019, seed=3), synthesise(AMIENS_2019, seed=3)
    >>> a.table.equals(b.table), a.table.num_rows == int(a.facts["households"])
    (True, True)
    """
    path = None if isinstance(grid, CellTable) else Path(grid)
    cells = read_grid(path) if path is not None else grid
    assert isinstance(cells, CellTable)
    frame = cells.frame
    for needed, column in (("households", "men"), ("poor_households", "men_pauv"), ("income_sum", "ind_snv")):
        if needed not in frame:
            raise InputError(
                f"{cells.source} : pas de colonne {column} ; attendu un carroyage Filosofi (men, men_pauv, ind_snv)"
            )
    if cells.income_concept != "disposable":
        raise InputError(
            f"{cells.source} : le carroyage donne des revenus déclarés ; attendu ind_snv (niveau de vie) pour synth"
        )
    if sizes is None and path is not None:
        sizes = _extra_columns(path, ("men_1ind", "men_5ind"))
    sizes = sizes or {}
    rng = np.random.default_rng(seed)
    ind = frame["population"].to_numpy(dtype=np.float64)
    men = frame["households"].to_numpy(dtype=np.float64)
    poor = frame["poor_households"].to_numpy(dtype=np.float64)
    level_sum = frame["income_sum"].to_numpy(dtype=np.float64)
    n_cells = len(frame)

    def stochastic_round(values: np.ndarray) -> np.ndarray:
        rounded: np.ndarray = np.floor(values + rng.random(len(values))).astype(np.int64)
        return rounded

    count = np.where(ind > 0, np.maximum(stochastic_round(men), 1), 0)
    scale = np.where(men > 0, count / np.where(men > 0, men, 1), 0)
    one = np.minimum(stochastic_round(sizes.get("men_1ind", 0.37 * men) * scale), count)
    five = np.minimum(stochastic_round(sizes.get("men_5ind", 0.06 * men) * scale), count - one)
    middle = count - one - five
    persons_target = stochastic_round(ind)
    with np.errstate(divide="ignore", invalid="ignore"):
        middle_mean = np.clip((persons_target - one - 5.4 * five) / np.where(middle > 0, middle, 1), 2, 4)
    # households in cell order: one-person, five-plus, then the others, each cell a contiguous run
    cell = np.repeat(np.arange(n_cells), count)
    start = np.repeat(np.cumsum(count) - count, count)
    rank = np.arange(len(cell)) - start
    kind = np.where(rank < one[cell], 1, np.where(rank < (one + five)[cell], 5, 3))
    persons = np.where(
        kind == 1,
        1,
        np.where(
            kind == 5,
            5 + rng.poisson(0.4, len(cell)),
            2 + rng.binomial(2, np.clip((middle_mean[cell] - 2) / 2, 0, 1)),
        ),
    ).astype(np.int64)
    share = np.where(persons == 2, SYNTH_UNDER14_SHARE[2], SYNTH_UNDER14_SHARE[3])
    under14 = rng.binomial(np.maximum(persons - 1, 0), share).astype(np.int64)
    uc = 1 + 0.5 * (persons - 1 - under14) + 0.3 * under14
    # standard of living: log-normal per cell, exactly round(men_pauv) households below the line
    line = POVERTY_LINE_FRACTION * national_median
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(ind > 0, level_sum / np.where(ind > 0, ind, 1), national_median)
        poor_share = np.clip(np.where(men > 0, poor / np.where(men > 0, men, 1), 0), 0.005, 0.995)
        a = ndtri(poor_share)
        root = a + np.sqrt(a * a + 2 * np.log(mean / line))
    sigma = np.clip(np.where(np.isfinite(root) & (root > 0), root, SYNTH_SPREAD_BOUNDS[0]), *SYNTH_SPREAD_BOUNDS)
    mu = np.log(mean) - sigma**2 / 2
    below_line = ndtr((np.log(line) - mu) / sigma)
    poor_count = np.minimum(stochastic_round(poor * scale), count)
    is_poor = _shuffled_within_cells(rng, cell, rank, poor_count)
    u = rng.random(len(cell))
    p_line = below_line[cell]
    u = np.where(is_poor, u * p_line, p_line + u * (1 - p_line))
    u = np.clip(u, 1e-9, 1 - 1e-9)
    level = np.exp(mu[cell] + sigma[cell] * ndtri(u))
    declared = declared_from_disposable(level)
    x0, y0 = frame["x"].to_numpy(), frame["y"].to_numpy()
    size = cells.resolution
    # centimetres, floored: a household never rounds onto its cell's east or north edge
    x = x0[cell] + np.floor(rng.random(len(cell)) * size * 100) / 100
    y = y0[cell] + np.floor(rng.random(len(cell)) * size * 100) / 100
    ids = frame["id"].to_numpy(dtype=object)
    crs = f"EPSG:{cells.epsg}"
    table = pa.table(
        {
            "household": pa.array(np.arange(len(cell), dtype=np.int64)),
            "idcar_200m": pa.array(ids[cell], pa.string()) if len(cell) else pa.array([], pa.string()),
            "x": x,
            "y": y,
            "persons": persons,
            "under14": under14,
            "uc": uc,
            "income_declared": np.round(declared * uc, 0),
            "income_disposable": np.round(level * uc, 0),
        }
    )
    grid_name = Path(cells.source).name
    facts: dict[str, object] = {
        "synthetic": True,
        "note": SYNTHETIC_NOTE.format(seed=seed, grid=grid_name),
        "seed": int(seed),
        "grid": {"path": shown_path(cells.source), "sha256": cells.sha256, "cells": n_cells},
        "crs": crs,
        "households": int(len(cell)),
        "persons": int(persons.sum()),
        "grid_persons": float(ind.sum()),
        "grid_households": float(men.sum()),
        "national_median": national_median,
        "poverty_line": line,
        "bridge": {
            "disposable_per_uc": "declared + max(0, floor − taper × declared) "
            "− tax_rate × max(0, declared − tax_start)",
            "floor": SYNTH_BENEFIT_FLOOR_EUR,
            "taper": SYNTH_BENEFIT_TAPER,
            "tax_start": SYNTH_TAX_START_EUR,
            "tax_rate": SYNTH_TAX_RATE,
        },
        "columns": {
            "x, y": f"position in {crs}, uniform in the cell",
            "income_declared": "household declared income, € a year (revenu fiscal déclaré)",
            "income_disposable": "household disposable income, € a year (niveau de vie × uc)",
            "uc": "INSEE consumption units from persons and under14",
        },
    }
    return Synthetic(table, facts)


def _shuffled_within_cells(
    rng: np.random.Generator, cell: np.ndarray, rank: np.ndarray, chosen: np.ndarray
) -> np.ndarray:
    """Mark exactly ``chosen[c]`` households of each cell, at random among the cell's households."""
    key = cell + rng.random(len(cell))  # cells stay in order, households shuffle within each
    order = np.argsort(key, kind="stable")
    marked = np.zeros(len(cell), dtype=bool)
    marked[order] = rank < chosen[cell]
    return marked


def write_synthetic(synthetic: Synthetic, out: Path) -> Path:
    """Write synthetic households as Parquet (metadata ``carroyage``: the facts) or CSV.

    Parquet files carry the CRS, so ``carroyage grid`` and ``delimit --households`` need no
    ``--crs``; a CSV gets ``OUT.manifest.json`` beside it.
    """
    import pyarrow.parquet as pq

    from ..files import atomic_path

    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError(f"{out} : format de sortie inconnu ; attendu un nom en .parquet ou .csv")
    facts = json.dumps(synthetic.facts, ensure_ascii=False, sort_keys=True)
    with atomic_path(out) as temporary:
        if suffix == ".parquet":
            table = synthetic.table.replace_schema_metadata({"carroyage": facts})
            pq.write_table(table, temporary, compression="zstd")
        else:
            pd.DataFrame(synthetic.table.to_pandas()).to_csv(temporary, index=False)
    if suffix == ".csv":
        with atomic_path(out.with_name(out.name + ".manifest.json")) as temporary:
            temporary.write_text(facts + "\n", encoding="utf-8")
    return out

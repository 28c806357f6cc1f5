"""Per-cell low-income share: exact when the input gives it, otherwise estimated.

The public Filosofi grid gives, per cell, the number of residents ``ind``, the sum of their
standard of living ``ind_snv`` (disposable income per UC) and, from 2015 on, the households ``men``
and the poor households ``men_pauv`` (below 60 % of the national median standard of living). It
gives no cell median, and its income is disposable while the decree tests declared income
(docs/facts.md, "INSEE Filosofi 200 m gridded data" and "National reference figures").

The estimator (documented in ``docs/method.md``) has four parts:

0. **Imputed cells take their neighbourhood.** INSEE fills the cells of small groups of
   households (``i_est_200 = 1``) with the group's figures, so they carry no local information.
   :func:`pool_imputed` gives each of them the Gaussian-weighted poor-household rate and mean
   standard of living of the 5 × 5 cells around it (``imputed_pooling_bandwidth``, fitted);
   measured cells keep their own (``shrinkage_households = 0``, set by INSEE's secrecy rule, not
   fitted: a cell of at least 11 households is published with the counts of its own residents,
   which are what the decree tests).
1. **Cell distribution.** Each cell's standard of living is log-normal. Its mean is
   ``ind_snv / ind``. Its spread is fitted so that the share of *residents* below the poverty line
   matches the cell's poor households: the odds of the poor-household rate (kept half a household
   from 0 and 1) are turned into a share of residents with the sizes of poor and other households,
   fitted on the whole grid at hand by least squares
   (``ind ≈ s_poor × men_pauv + s_other × (men − men_pauv)``). Without household columns, or
   when the fit has no solution, the national spread is used, from the national median and first
   decile.
2. **Income bridge.** Redistribution compresses incomes: ranking is kept but the log-spread of
   disposable income is ``r`` times that of declared income. A declared threshold at fraction ``f``
   of the reference median then sits at fraction ``f ** r`` of the disposable reference median.
   The national derivation, from the poverty rates before and after redistribution, gives
   ``r = 0.73``; the default is the value **fitted** on the validation cities, ``r = 0.62``
   (:data:`CALIBRATION`), and both are recorded in the manifest.
3. **Pooling.** A quartier's share below the threshold is the population-weighted mean of its cells'
   shares; its median is the median of the mixture of its cells' distributions.

Every figure it yields is marked ``estimated``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import cast

import numpy as np
from scipy.sparse import csr_matrix
from scipy.special import ndtr, ndtri

from .grid import Grid
from .readers import CellTable


@dataclass(frozen=True)
class IncomeModel:
    """Assumptions of the estimator; national figures only, so it holds for any French city.

    Parameters
    ----------
    national_median : float
        National median standard of living (disposable income per UC), € a year. Default: 2019,
        22,040 € (Insee Première n°1875). ``--national-median`` replaces it.
    national_first_decile : float
        National first decile of the standard of living, 2019: 11,660 € (same source). With the
        median it gives the national log-spread, used where a cell's own cannot be fitted.
    poverty_line_fraction : float
        Filosofi's poverty line as a fraction of the national median (``men_pauv``), 0.6.
    poverty_rate_before_redistribution, poverty_rate_after_redistribution : float
        National shares of people below the poverty line before transfers and taxes (about 22 %)
        and after (14.6 % in 2019), INSEE ERFS. Their ratio of normal quantiles is the bridge
        exponent ``r``.
    sigma_bounds : tuple of float
        Fitted cell log-spreads are clipped to this range.
    bridge_exponent_fitted : float or None
        The bridge exponent ``r`` fitted on the validation cities (0.62, :data:`CALIBRATION`);
        ``None`` uses the national derivation from the two poverty rates (0.73).
    imputed_pooling_bandwidth : float
        Standard deviation, in cells, of the Gaussian weights with which imputed cells take their
        neighbourhood's figures (1.0, fitted); 0 switches the pooling off.
    imputed_pooling_reach : int
        Half-width of the neighbourhood window, in cells (2: 5 × 5 cells; structural, not fitted).
    shrinkage_households : float
        Prior strength, in households, with which *measured* cells are also pulled toward their
        neighbourhood (weight of their own figures ``men / (men + k)``). 0, not fitted: INSEE
        publishes a cell's own figures only when it holds at least 11 fiscal households (its
        secrecy rule, docs/facts.md), so a measured cell's ``men_pauv`` is the count of its actual
        poor households, the very population the decree tests; shrinking it would estimate
        something else. A value above 0 is kept for sensitivity runs.

    Examples
    --------
    >>> m = IncomeModel()
    >>> m.bridge_exponent, round(m.bridge_exponent_national, 2)
    (0.62, 0.73)
    >>> round(IncomeModel(bridge_exponent_fitted=None).bridge_exponent, 2)
    0.73
    """

    national_median: float = 22_040.0
    national_first_decile: float = 11_660.0
    poverty_line_fraction: float = 0.6
    poverty_rate_before_redistribution: float = 0.22
    poverty_rate_after_redistribution: float = 0.146
    sigma_bounds: tuple[float, float] = (0.2, 1.0)
    # The two fitted parameters: a joint grid search on amiens, saint-quentin and abbeville
    # (Filosofi 2019 grid against the official 2024 QPVs, issue #11), loss and figures in
    # CALIBRATION below; `python benchmarks/fidelity.py` re-runs the fit.
    bridge_exponent_fitted: float | None = 0.62
    imputed_pooling_bandwidth: float = 1.0
    shrinkage_households: float = 0.0  # INSEE's secrecy rule: measured cells are counts, not fitted
    imputed_pooling_reach: int = 2  # 5 × 5 window: structural, not fitted

    @property
    def national_sigma(self) -> float:
        """Log-spread of the national standard of living, from its median and first decile."""
        return float(np.log(self.national_median / self.national_first_decile) / -ndtri(0.1))

    @property
    def bridge_exponent_national(self) -> float:
        """``r`` derived from national figures: Φ⁻¹(poverty rate before) / Φ⁻¹(after), INSEE ERFS."""
        before, after = self.poverty_rate_before_redistribution, self.poverty_rate_after_redistribution
        return float(ndtri(before) / ndtri(after))

    @property
    def bridge_exponent(self) -> float:
        """``r``: log-spread of disposable income over that of declared income (fitted if set)."""
        if self.bridge_exponent_fitted is not None:
            return float(self.bridge_exponent_fitted)
        return self.bridge_exponent_national

    @property
    def bridge_source(self) -> str:
        """Where ``bridge_exponent`` comes from, for the manifest."""
        if self.bridge_exponent_fitted is None:
            return "national: INSEE ERFS poverty rates before and after redistribution"
        return "fitted on the validation cities (calibration)"

    def describe(self) -> dict[str, object]:
        """Parameters and derived constants, for the run manifest."""
        return {
            **asdict(self),
            "national_sigma": self.national_sigma,
            "bridge_exponent_national": self.bridge_exponent_national,
            "bridge_exponent": self.bridge_exponent,
            "bridge_source": self.bridge_source,
        }


FITTED_PARAMETERS = ("bridge_exponent_fitted", "imputed_pooling_bandwidth")
"""The :class:`IncomeModel` fields fitted by the calibration; their values are the defaults."""


@dataclass(frozen=True)
class Calibration:
    """How the default parameters were fitted, and how well they hold out (issue #11).

    The fitted values themselves live once, as :class:`IncomeModel` defaults (``parameters``);
    this record holds what they were fitted on and the figures the fit gives. The figures are
    measured by ``benchmarks/fidelity.py``, which prints them; ``tests/test_fidelity.py`` checks
    that re-scoring gives these very numbers.

    Attributes
    ----------
    fitted_on : tuple of str
        Validation cities (``carroyage.data.VALIDATION_CITIES``).
    data : str
        Which grid against which official geography.
    loss : str
        What the grid search minimised.
    search : dict
        The values tried for each fitted parameter, and how ties are broken.
    structural : dict
        Choices of the method that were not fitted.
    fitted : dict
        Per city: recall, precision, QPVs detected, official QPVs, quartiers, at the joint fit.
    leave_one_out : dict
        Per held-out city: parameters fitted on the two others and its scores with them.
    superseded : dict
        The earlier procedure, its leave-one-out figures and why and when it was changed, so that
        the figures can be read both ways.
    """

    fitted_on: tuple[str, ...]
    data: str
    loss: str
    search: dict[str, object]
    structural: dict[str, object]
    fitted: dict[str, dict[str, float]] = field(default_factory=dict)
    leave_one_out: dict[str, dict[str, float]] = field(default_factory=dict)
    superseded: dict[str, object] = field(default_factory=dict)

    @property
    def parameters(self) -> dict[str, object]:
        """The fitted values (the :class:`IncomeModel` defaults)."""
        defaults = IncomeModel()
        return {name: getattr(defaults, name) for name in FITTED_PARAMETERS}

    def describe(self, model: IncomeModel | None = None) -> dict[str, object]:
        """The record for the run manifest; says whether ``model`` runs with the fitted values."""
        record: dict[str, object] = {"parameters": self.parameters, **asdict(self)}
        record["fitted_on"] = list(self.fitted_on)
        if model is not None:
            record["run_uses_fitted_parameters"] = all(
                getattr(model, name) == value for name, value in self.parameters.items()
            )
        return record


CALIBRATION = Calibration(
    fitted_on=("amiens", "saint-quentin", "abbeville"),
    data="Filosofi 2019 200 m grid (data/validation) against the official 2024 QPV perimeters; "
    "scores on cell centres (carroyage.around.validate)",
    loss="sum over cities of (1 - recall) + (1 - precision) + 0.05 per missed official QPV, "
    "averaged over bridge_exponent ± 0.01",
    search={
        "bridge_exponent_fitted": "0.50 to 0.70 step 0.01",
        "imputed_pooling_bandwidth": [0.75, 1.0, 1.25, 1.5, 2.0],
        "ties": "larger bandwidth, bridge exponent nearer 0.6",
    },
    structural={
        "rule": "decree-2014",
        "contiguity": "queen",
        "contour_ring_cells": 1,
        "imputed_pooling_reach": 2,
        "shrinkage_households": 0.0,
        "shrinkage_reason": "INSEE's secrecy rule: a cell is published with its own figures only from 11 "
        "fiscal households, so a measured cell's men_pauv counts its actual residents, the population "
        "the decree tests; only imputed cells (i_est_200 = 1) take their neighbourhood's",
        "low_income_share": 0.5,
        "min_population": 1000,
        "national_median": 22_040,
    },
    # Measured by benchmarks/fidelity.py, which prints them and says whether they still hold;
    # tests/test_fidelity.py re-scores them. Kept here only: the manifest copies this record.
    fitted={
        "amiens": {"recall": 1.0, "precision": 0.8999, "detected": 6, "official": 7, "quartiers": 8},
        "saint-quentin": {"recall": 0.9964, "precision": 0.9751, "detected": 4, "official": 4, "quartiers": 5},
        "abbeville": {"recall": 0.9601, "precision": 0.998, "detected": 3, "official": 3, "quartiers": 3},
    },
    leave_one_out={
        "amiens": {
            "bridge_exponent_fitted": 0.62,
            "imputed_pooling_bandwidth": 1.0,
            "recall": 1.0,
            "precision": 0.8999,
            "detected": 6,
            "official": 7,
            "quartiers": 8,
        },
        "saint-quentin": {
            "bridge_exponent_fitted": 0.63,
            "imputed_pooling_bandwidth": 1.0,
            "recall": 0.9964,
            "precision": 0.9751,
            "detected": 4,
            "official": 4,
            "quartiers": 5,
        },
        "abbeville": {
            "bridge_exponent_fitted": 0.62,
            "imputed_pooling_bandwidth": 1.0,
            "recall": 0.9601,
            "precision": 0.998,
            "detected": 3,
            "official": 3,
            "quartiers": 3,
        },
    },
    superseded={
        "procedure": "the same loss and search, with shrinkage_households also searched in "
        "[0, 5, 10, 20, 30, 50] (ties: smaller shrinkage first)",
        "changed": "shrinkage_households was set from INSEE's secrecy rule instead of fitted after these "
        "leave-one-out figures were known (issue #11); the fitted defaults did not change",
        "leave_one_out": {
            "amiens": {
                "bridge_exponent_fitted": 0.6,
                "imputed_pooling_bandwidth": 1.25,
                "shrinkage_households": 10.0,
                "recall": 1.0,
                "precision": 0.8991,
                "detected": 6,
                "official": 7,
                "quartiers": 8,
            },
            "saint-quentin": {
                "bridge_exponent_fitted": 0.62,
                "imputed_pooling_bandwidth": 0.75,
                "shrinkage_households": 30.0,
                "recall": 0.8752,
                "precision": 0.8948,
                "detected": 3,
                "official": 4,
                "quartiers": 4,
            },
            "abbeville": {
                "bridge_exponent_fitted": 0.6,
                "imputed_pooling_bandwidth": 1.5,
                "shrinkage_households": 10.0,
                "recall": 0.9601,
                "precision": 0.9952,
                "detected": 3,
                "official": 3,
                "quartiers": 3,
            },
        },
    },
)
"""The calibration of the default estimator (:class:`Calibration`)."""


@dataclass(frozen=True)
class CellModel:
    """Log-normal ``(mu, sigma)`` of each cell's income and what the fit found."""

    mu: np.ndarray
    sigma: np.ndarray
    facts: dict[str, object]


@dataclass(frozen=True)
class CellIncome:
    """Each cell's income distribution (log-normal) and share below the threshold."""

    mu: np.ndarray
    sigma: np.ndarray
    population: np.ndarray
    low_share: np.ndarray
    estimated: bool
    facts: dict[str, object]

    @property
    def median(self) -> np.ndarray:
        """Median income of each cell."""
        median: np.ndarray = np.exp(self.mu)
        return median


def equivalent_fraction(fraction: float, concept: str, model: IncomeModel) -> float:
    """The fraction of the reference median that a declared-income rule means on ``concept``.

    Examples
    --------
    >>> round(equivalent_fraction(0.6, "disposable", IncomeModel()), 3)   # fitted r = 0.62
    0.729
    >>> round(equivalent_fraction(0.6, "disposable", IncomeModel(bridge_exponent_fitted=None)), 3)
    0.688
    >>> equivalent_fraction(0.6, "declared", IncomeModel())
    0.6
    """
    return fraction if concept == "declared" else float(fraction**model.bridge_exponent)


def cell_distributions(
    cells: CellTable, model: IncomeModel, national_median: float | None = None, grid: Grid | None = None
) -> CellModel:
    """Log-normal income distribution of each cell.

    Filosofi cells: mean ``income_sum / population``, spread fitted on the poor households (see
    the module docstring); with ``grid`` and an ``imputed`` column, imputed cells first take
    their neighbourhood's rate and mean (:func:`pool_imputed`). Exact tables with
    ``median_income``: ``mu = log(median)`` and the national spread, no pooling.

    Parameters
    ----------
    cells : CellTable
    model : IncomeModel
    national_median : float, optional
        Sets the poverty line (``poverty_line_fraction`` of it); the model's otherwise.
    grid : Grid, optional
        Positions of the cells; without it no cell is pooled.

    Returns
    -------
    CellModel

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"population": [100.0, 80.0], "income_sum": [2.2e6, 1.2e6]})
    >>> table = CellTable(frame, 3035, 200, "example", "")
    >>> fitted = cell_distributions(table, IncomeModel())
    >>> fitted.facts["spread"], [round(float(s), 2) for s in fitted.sigma]
    ('national', [0.5, 0.5])
    """
    frame = cells.frame
    default = model.national_sigma
    population = frame["population"].to_numpy()
    if "median_income" not in frame and "income_sum" not in frame:
        unknown = np.full(len(frame), np.nan)
        return CellModel(unknown, unknown, {"spread": "none: no income column"})
    if "median_income" in frame:
        median = np.maximum(frame["median_income"].to_numpy(), 1.0)
        return CellModel(np.log(median), np.full(len(frame), default), {"spread": "national"})
    has_households = "households" in frame and "poor_households" in frame
    pooling = _pooling_applies(cells, model, grid)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(population > 0, frame["income_sum"].to_numpy() / population, np.nan)
    pooled = None
    if pooling and grid is not None:
        pooled = pool_imputed(cells, grid, model)
        mean = np.where(np.isfinite(pooled.mean), pooled.mean, mean)
    sigma = np.full(len(frame), default)
    facts: dict[str, object] = {"spread": "national"}
    if has_households:
        households, poor = frame["households"].to_numpy(), frame["poor_households"].to_numpy()
        size_poor, size_other = household_sizes(population, households, poor)  # on the raw counts
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = pooled.rate if pooled is not None else np.where(households > 0, poor / households, 0.0)
        share = _resident_share(rate, households, size_poor / size_other)
        poverty_line = model.poverty_line_fraction * (national_median or model.national_median)
        sigma = np.clip(_fit_sigma(mean, share, poverty_line, default), *model.sigma_bounds)
        facts = {
            "spread": "fitted on men_pauv/men",
            "poverty_line": poverty_line,
            "residents_per_poor_household": round(size_poor, 3),
            "residents_per_other_household": round(size_other, 3),
            "cells_with_national_spread": int((sigma == default).sum()),
        }
    facts.update(
        {
            "imputed_cells_pooled": pooled.count if pooled is not None else 0,
            "pooling_bandwidth_cells": model.imputed_pooling_bandwidth if pooled is not None else None,
            "pooling_reach_cells": model.imputed_pooling_reach if pooled is not None else None,
            "shrinkage_households": model.shrinkage_households if pooled is not None else None,
            "pooled": "rate and mean" if pooled is not None and has_households else "mean" if pooled else "none",
        }
    )
    return CellModel(np.log(mean) - sigma**2 / 2, sigma, facts)


def _pooling_applies(cells: CellTable, model: IncomeModel, grid: Grid | None) -> bool:
    """Pooling needs positions, an ``imputed`` column and estimated (not exact) figures."""
    frame = cells.frame
    return (
        grid is not None
        and "imputed" in frame
        and "income_sum" in frame
        and not cells.exact
        and model.imputed_pooling_bandwidth > 0
    )


@dataclass(frozen=True)
class PooledCells:
    """Each cell's figures after :func:`pool_imputed`.

    Attributes
    ----------
    rate : array
        Poor-household rate (NaN without household columns).
    mean : array
        Mean standard of living.
    count : int
        Cells that took their neighbourhood's figures.
    """

    rate: np.ndarray
    mean: np.ndarray
    count: int


def pool_imputed(cells: CellTable, grid: Grid, model: IncomeModel) -> PooledCells:
    """Imputed cells take their neighbourhood's poor-household rate and mean income.

    For each cell, the neighbourhood is the ``(2 × reach + 1)²`` window around it, own cell
    excluded, with Gaussian weights ``K(d) = exp(−d² / 2h²)`` (``d`` in cells, ``h`` =
    ``imputed_pooling_bandwidth``): ``p_nb = Σ K·men_pauv / Σ K·men``, ``m_nb = Σ K·ind_snv / Σ K·ind``.
    Each cell gets ``λ × own + (1 − λ) × neighbourhood`` with ``λ = men / (men + k)``
    (``k = shrinkage_households``; ``λ = 1`` when k is 0) for measured cells and ``λ = 0`` for
    imputed ones; a cell with no inhabited neighbour keeps its own figures. The window sums are
    :func:`_window_sums`: one sparse product, linear in the cells (the frame is only a lookup
    table of cell numbers), no loop over cells.

    Parameters
    ----------
    cells : CellTable
        With ``population``, ``income_sum``, ``imputed`` and, when present, ``households`` and
        ``poor_households``.
    grid : Grid
        Positions of the cells.
    model : IncomeModel
        ``imputed_pooling_bandwidth``, ``imputed_pooling_reach``, ``shrinkage_households``.

    Returns
    -------
    PooledCells

    Examples
    --------
    A row of three cells whose middle one is imputed with an extreme value takes the mean of its
    two neighbours:

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"population": [100.0, 5.0, 100.0], "households": [50.0, 2.0, 50.0],
    ...     "poor_households": [5.0, 2.0, 15.0], "income_sum": [2.0e6, 2.5e4, 3.0e6],
    ...     "imputed": [False, True, False]})
    >>> g = Grid.around(np.array([0, 200, 400]), np.array([0, 0, 0]), 200)
    >>> pooled = pool_imputed(CellTable(frame, 3035, 200, "example", ""), g, IncomeModel())
    >>> [round(float(v), 2) for v in pooled.rate], [round(float(v)) for v in pooled.mean], pooled.count
    ([0.1, 0.2, 0.3], [20000, 25000, 30000], 1)
    """
    frame = cells.frame
    n = len(frame)
    population = frame["population"].to_numpy(dtype=float)
    income = frame["income_sum"].to_numpy(dtype=float)
    has_households = "households" in frame and "poor_households" in frame
    households = frame["households"].to_numpy(dtype=float) if has_households else np.zeros(n)
    poor = frame["poor_households"].to_numpy(dtype=float) if has_households else np.zeros(n)
    imputed = frame["imputed"].to_numpy(dtype=bool) if "imputed" in frame else np.zeros(n, dtype=bool)
    reach, bandwidth, k = model.imputed_pooling_reach, model.imputed_pooling_bandwidth, model.shrinkage_households

    sums = _window_sums(grid, np.column_stack([poor, households, income, population]), reach, bandwidth).T
    poor_nb, households_nb, income_nb, population_nb = sums
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_nb = np.where(households_nb > 0, poor_nb / households_nb, np.nan)
        mean_nb = np.where(population_nb > 0, income_nb / population_nb, np.nan)
        rate_own = np.where(households > 0, poor / households, 0.0)
        mean_own = np.where(population > 0, income / population, np.nan)
        own = households if has_households else population
        keep = np.where(imputed, 0.0, own / (own + k) if k > 0 else 1.0)
    keep_rate = np.where(households_nb > 0, keep, 1.0)
    keep_mean = np.where(population_nb > 0, keep, 1.0)
    rate = keep_rate * rate_own + (1 - keep_rate) * np.nan_to_num(rate_nb)
    mean = keep_mean * mean_own + (1 - keep_mean) * np.nan_to_num(mean_nb)
    if not has_households:
        rate = np.full(n, np.nan)
    count = int((imputed & (population_nb > 0)).sum())
    return PooledCells(rate, mean, count)


def _window_sums(grid: Grid, values: np.ndarray, reach: int, bandwidth: float, chunk: int = 1 << 17) -> np.ndarray:
    """Gaussian-weighted sums of ``values`` over each cell's window, own cell excluded.

    The sparse equivalent of a Gaussian convolution of the rasterised grid (a France-sized frame
    holds ~30 million positions for ~2.3 million cells, most of them empty): only the figures of
    the cells are read, never a raster of them. One ``int32`` raster of the frame says which cell
    is at each position (-1: none; 4 bytes a position, ~120 MB for France, built once); each
    cell's ``(2 × reach + 1)² − 1`` window positions are looked up in it, and the neighbours found
    make the rows of a sparse matrix, listed in the window's order (row offsets, then column
    offsets). Its product with the figures adds them in the order a plain loop over the offsets
    would: the sums are the same to the last bit, in time and memory linear in the cells. The
    cells are taken ``chunk`` at a time (a few tens of MB of lookups each), in input order.

    Parameters
    ----------
    grid : Grid
        Positions of the cells.
    values : array, shape (n, m)
        ``m`` figures of each of the ``n`` cells, summed together.
    reach : int
        Half-width of the window, in cells.
    bandwidth : float
        Standard deviation of the Gaussian weights, in cells.
    chunk : int
        Cells whose windows are looked up together (bounds the temporary arrays).

    Returns
    -------
    array, shape (n, m)

    Examples
    --------
    >>> g = Grid.around(np.array([0, 200, 400, 0]), np.array([0, 0, 0, 200]), 200)
    >>> _window_sums(g, np.array([[1.0], [2.0], [4.0], [8.0]]), 1, 1.0).round(3).ravel().tolist()
    [6.065, 5.976, 1.213, 1.342]
    """
    n = len(values)
    table = np.ascontiguousarray(values, dtype=np.float64)
    sums = np.zeros(table.shape)
    if n == 0:
        return sums
    span = 2 * reach + 1
    height, width = grid.shape[0] + 2 * reach, grid.shape[1] + 2 * reach  # a margin: no wrapping around
    small = max(height * width, n) < np.iinfo(np.int32).max
    index = np.int32 if small else np.int64
    keys = ((grid.row.astype(np.int64) + reach) * width + (grid.col.astype(np.int64) + reach)).astype(index)
    at = np.full(height * width, -1, dtype=index)
    at[keys] = np.arange(n, dtype=index)
    d_row, d_col = np.divmod(np.arange(span * span), span)  # the window's order: row offsets, then columns
    d_row, d_col = d_row - reach, d_col - reach
    other = (d_row != 0) | (d_col != 0)  # the cell itself left out
    shifts = (d_row * width + d_col)[other].astype(index)
    weights = np.exp(-(d_row**2 + d_col**2) / (2 * bandwidth * bandwidth))[other]
    tiled = np.tile(weights, min(chunk, n))  # each window slot's weight, row after row
    for start in range(0, n, chunk):  # a few blocks of cells, each one vectorised
        neighbour = at[keys[start : start + chunk, None] + shifts].ravel()  # (cells × slots), -1: empty
        slot = np.flatnonzero(neighbour >= 0)  # row-major: each cell's neighbours in window order
        rows = len(neighbour) // len(shifts)
        indptr = np.searchsorted(slot, np.arange(rows + 1) * len(shifts)).astype(index)
        window = csr_matrix((tiled[slot], neighbour[slot], indptr), shape=(rows, n))
        sums[start : start + rows] = window @ table
    return sums


def household_sizes(population: np.ndarray, households: np.ndarray, poor: np.ndarray) -> tuple[float, float]:
    """Residents per poor and per other household, fitted by least squares over the grid's cells.

    Falls back to the grid's mean household size for both when the fit is degenerate or gives a
    size below one person.
    """
    other = households - poor
    mean_size = float(population.sum() / households.sum()) if households.sum() > 0 else 1.0
    # normal equations of the two-column least squares: a 2 × 2 system, three dot products
    gram = np.array([[poor @ poor, poor @ other], [poor @ other, other @ other]])
    if len(population) < 2 or abs(np.linalg.det(gram)) <= 1e-9 * max(float(np.abs(gram).max()), 1.0) ** 2:
        return mean_size, mean_size
    size_poor, size_other = np.linalg.solve(gram, np.array([poor @ population, other @ population]))
    if not (size_poor >= 1 and size_other >= 1):
        return mean_size, mean_size
    return float(size_poor), float(size_other)


def _resident_share(rate: np.ndarray, households: np.ndarray, size_ratio: float) -> np.ndarray:
    """Share of residents in poor households, from the poor-household rate.

    The rate is kept half a household away from 0 and 1 (``[½ / men, 1 − ½ / men]``), out of
    reach of Φ⁻¹; its odds are then scaled by the ratio of household sizes.

    Examples
    --------
    >>> [round(float(v), 3) for v in _resident_share(np.array([0.0, 0.5]), np.array([10.0, 10.0]), 1.5)]
    [0.073, 0.6]
    """
    half = 0.5 / np.maximum(households, 1.0)
    kept = np.clip(rate, half, 1 - half)
    odds = kept / (1 - kept) * size_ratio
    share: np.ndarray = odds / (1 + odds)
    return share


def _fit_sigma(mean: np.ndarray, share: np.ndarray, line: float, default: float) -> np.ndarray:
    """Solve ``Φ((ln line − ln mean + σ²/2) / σ) = share`` for σ > 0, cell by cell.

    With ``a = Φ⁻¹(share)`` and ``d = ln(mean / line)`` this is ``σ² / 2 − a σ − d = 0``, whose
    positive root is ``a + sqrt(a² + 2d)``; where there is none, the default spread is kept.
    """
    a = ndtri(share)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log(mean / line)
        disc = a**2 + 2 * d
        root = a + np.sqrt(disc)
    ok = np.isfinite(root) & (root > 0) & (disc >= 0)
    return np.where(ok, root, default)


def cell_income(cells: CellTable, fitted: CellModel, threshold: float | None) -> CellIncome:
    """Share of each cell's residents below ``threshold``.

    Exact when the table gives ``population_low``; estimated from ``fitted`` otherwise.
    """
    frame = cells.frame
    population = frame["population"].to_numpy()
    if "population_low" in frame:
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(population > 0, frame["population_low"].to_numpy() / np.maximum(population, 1e-12), 0.0)
        return CellIncome(fitted.mu, fitted.sigma, population, share, False, fitted.facts)
    # threshold is None only when no cell has a finite income (population_low counted instead), see apply_rule
    share = np.where(population > 0, share_below(fitted.mu, fitted.sigma, cast(float, threshold)), 0.0)
    return CellIncome(fitted.mu, fitted.sigma, population, share, True, fitted.facts)


def share_below(mu: np.ndarray, sigma: np.ndarray, value: float | np.ndarray) -> np.ndarray:
    """Share of a log-normal population below ``value``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        share: np.ndarray = np.nan_to_num(ndtr((np.log(value) - mu) / sigma), nan=0.0)
        return share


def pooled_medians(
    mu: np.ndarray, sigma: np.ndarray, population: np.ndarray, group: np.ndarray, groups: int, iterations: int = 12
) -> np.ndarray:
    """Median income of each group of cells (the mixture of their log-normal distributions).

    Newton's method on the log scale from the population-weighted mean of ``mu``, kept inside a
    bisection bracket so that it cannot diverge; all groups at once, each step one vectorised
    pass over the cells, until every group's share below its median is within 1e-10 of one half.

    Parameters
    ----------
    group : array of int
        Group of each cell, in ``0 .. groups - 1``; negative values are left out.
    """
    use = (group >= 0) & (population > 0) & np.isfinite(mu)
    mu, sigma, weight, group = mu[use], sigma[use], population[use], group[use]
    total = np.bincount(group, weights=weight, minlength=groups)
    safe_total = np.where(total > 0, total, 1.0)
    low = np.full(groups, np.log(100.0))
    high = np.full(groups, np.log(1e7))
    guess = np.bincount(group, weights=weight * mu, minlength=groups) / safe_total
    guess = np.clip(guess, low, high)
    for _ in range(iterations):
        z = (guess[group] - mu) / sigma
        excess = np.bincount(group, weights=weight * ndtr(z), minlength=groups) / safe_total - 0.5
        if np.abs(excess).max(initial=0.0) < 1e-10:
            break
        slope = (
            np.bincount(group, weights=weight * np.exp(-z * z / 2) / sigma, minlength=groups)
            / safe_total
            / np.sqrt(2 * np.pi)
        )
        low = np.where(excess < 0, guess, low)
        high = np.where(excess >= 0, guess, high)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = guess - excess / slope
        inside = np.isfinite(step) & (step >= low) & (step <= high)
        guess = np.where(inside, step, (low + high) / 2)
    return np.where(total > 0, np.exp(guess), np.nan)

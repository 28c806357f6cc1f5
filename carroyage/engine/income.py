"""Per-cell low-income share: exact when the input gives it, otherwise estimated.

The public Filosofi grid gives, per cell, the number of residents ``ind``, the sum of their
standard of living ``ind_snv`` (disposable income per UC) and, from 2015 on, the households ``men``
and the poor households ``men_pauv`` (below 60 % of the national median standard of living). It
gives no cell median, and its income is disposable while the decree tests declared income
(docs/facts.md, "INSEE Filosofi 200 m gridded data" and "National reference figures").

The estimator (documented in ``docs/method.md``) has three parts:

1. **Cell distribution.** Each cell's standard of living is log-normal. Its mean is
   ``ind_snv / ind``. Its spread is fitted so that the share of *residents* below the poverty line
   matches the cell's poor households: the odds ``(men_pauv + ½) / (men − men_pauv + ½)`` are turned into a share of
   residents with the sizes of poor and other households, fitted on the whole grid at hand by
   least squares (``ind ≈ s_poor × men_pauv + s_other × (men − men_pauv)``). Without household
   columns, or when the fit has no solution, the national spread is used, from the national median
   and first decile.
2. **Income bridge.** Redistribution compresses incomes: ranking is kept but the log-spread of
   disposable income is ``r`` times that of declared income. A declared threshold at fraction ``f``
   of the reference median then sits at fraction ``f ** r`` of the disposable reference median.
   ``r`` comes from the national poverty rates before and after redistribution.
3. **Pooling.** A quartier's share below the threshold is the population-weighted mean of its cells'
   shares; its median is the median of the mixture of its cells' distributions.

Every figure it yields is marked ``estimated``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import cast

import numpy as np
from scipy.special import ndtr, ndtri

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
    """

    national_median: float = 22_040.0
    national_first_decile: float = 11_660.0
    poverty_line_fraction: float = 0.6
    poverty_rate_before_redistribution: float = 0.22
    poverty_rate_after_redistribution: float = 0.146
    sigma_bounds: tuple[float, float] = (0.2, 1.0)

    @property
    def national_sigma(self) -> float:
        """Log-spread of the national standard of living, from its median and first decile."""
        return float(np.log(self.national_median / self.national_first_decile) / -ndtri(0.1))

    @property
    def bridge_exponent(self) -> float:
        """``r``: log-spread of disposable income over that of declared income."""
        before, after = self.poverty_rate_before_redistribution, self.poverty_rate_after_redistribution
        return float(ndtri(before) / ndtri(after))

    def describe(self) -> dict[str, object]:
        """Parameters and derived constants, for the run manifest."""
        return {**asdict(self), "national_sigma": self.national_sigma, "bridge_exponent": self.bridge_exponent}


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
    >>> round(equivalent_fraction(0.6, "disposable", IncomeModel()), 3)
    0.688
    >>> equivalent_fraction(0.6, "declared", IncomeModel())
    0.6
    """
    return fraction if concept == "declared" else float(fraction**model.bridge_exponent)


def cell_distributions(cells: CellTable, model: IncomeModel, national_median: float | None = None) -> CellModel:
    """Log-normal income distribution of each cell.

    Filosofi cells: mean ``income_sum / population``, spread fitted on the poor households (see
    the module docstring). Exact tables with ``median_income``: ``mu = log(median)`` and the
    national spread.
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
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(population > 0, frame["income_sum"].to_numpy() / population, np.nan)
    sigma = np.full(len(frame), default)
    facts: dict[str, object] = {"spread": "national"}
    if "households" in frame and "poor_households" in frame:
        households, poor = frame["households"].to_numpy(), frame["poor_households"].to_numpy()
        size_poor, size_other = household_sizes(population, households, poor)
        share = _resident_share(poor, households, size_poor / size_other)
        poverty_line = model.poverty_line_fraction * (national_median or model.national_median)
        sigma = np.clip(_fit_sigma(mean, share, poverty_line, default), *model.sigma_bounds)
        facts = {
            "spread": "fitted on men_pauv/men",
            "poverty_line": poverty_line,
            "residents_per_poor_household": round(size_poor, 3),
            "residents_per_other_household": round(size_other, 3),
            "cells_with_national_spread": int((sigma == default).sum()),
        }
    return CellModel(np.log(mean) - sigma**2 / 2, sigma, facts)


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


def _resident_share(poor: np.ndarray, households: np.ndarray, size_ratio: float) -> np.ndarray:
    """Share of residents in poor households; ``+½`` keeps 0 and 1 out of reach of Φ⁻¹."""
    odds = (poor + 0.5) / (households - poor + 0.5)
    share: np.ndarray = odds * size_ratio / (1 + odds * size_ratio)
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

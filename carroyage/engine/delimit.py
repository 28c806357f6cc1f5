"""Delimitation: cell shares → candidate cells → clusters → contour ring → quartier tests → polygons.

The decree tests the quartier, not each cell (docs/facts.md, "The rule"): cells whose share of
low-income residents passes the rule are *candidates*; contiguous candidates (rook or queen), with small
enclosed gaps filled, form clusters (:mod:`carroyage.engine.clusters`); the contour is drawn
``contour_ring_cells`` further out while the quartier keeps its low-income majority
(:func:`~carroyage.engine.clusters.contour_ring`); a cluster becomes a quartier when, with its
ring, it has at least ``min_population`` residents and more than ``low_income_share`` of them are
below the threshold, pooled over the quartier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from ..errors import InputError
from ..geography import Geography
from ..manifest import build_manifest
from .clusters import Clusters, cluster_cells, cluster_polygons, contour_ring
from .grid import Grid
from .income import (
    CALIBRATION,
    CellIncome,
    CellModel,
    IncomeModel,
    cell_distributions,
    cell_income,
    equivalent_fraction,
    pooled_medians,
)
from .readers import CellTable
from .rules import Rule, Threshold, get_rule

Progress = Callable[[str], None]
CODE_PREFIX = "QC"


@dataclass(frozen=True)
class Prepared:
    """What every rule version shares on one grid: cells, frame, income distributions, medians.

    Computed once by :func:`prepare`; :func:`apply_rule` then runs any number of rule variants
    on it without re-reading or re-fitting (``carroyage sensitivity``).
    """

    cells: CellTable
    grid: Grid
    model: IncomeModel
    fitted: CellModel
    national_median: float | None
    agglomeration_median: float | None
    agglomeration_median_source: str
    agglomeration_population: float


@dataclass(frozen=True)
class Outcome:
    """One rule applied to prepared cells."""

    rule: Rule
    threshold: Threshold | None
    income: CellIncome
    flagged: np.ndarray
    clusters: Clusters
    figures: pd.DataFrame  # one row per cluster: population, low_income_share, median_income, cells, kept
    eligible: bool

    def in_quartier(self) -> np.ndarray:
        """Whether each cell lies in a quartier."""
        kept = np.concatenate([[False], self.figures["kept"].to_numpy(dtype=bool)])
        inside: np.ndarray = kept[self.clusters.of_cell]
        return inside


def prepare(
    cells: CellTable,
    *,
    national_median: float | None = None,
    agglomeration_median: float | None = None,
    agglomeration_population: float | None = None,
    model: IncomeModel | None = None,
) -> Prepared:
    """Fit the cells' income distributions and settle the reference medians (see :func:`delimit`)."""
    if cells.frame["population"].sum() <= 0:
        raise InputError(f"{cells.source} : aucun carreau habité ; attendu au moins un carreau de population positive")
    if model is None:
        use_national = national_median is not None and cells.income_concept == "disposable"
        model = (
            IncomeModel(national_median=national_median)
            if use_national and national_median is not None  # use_national implies it: narrows the type
            else IncomeModel()
        )
    grid = Grid.around(cells.frame["x"].to_numpy(), cells.frame["y"].to_numpy(), cells.resolution, cells.epsg)
    fitted = cell_distributions(cells, model, national_median, grid)
    source = "given"
    if agglomeration_median is None and np.isfinite(fitted.mu).any():
        everyone = np.zeros(len(fitted.mu), dtype=np.int64)
        population = cells.frame["population"].to_numpy()
        agglomeration_median = float(pooled_medians(fitted.mu, fitted.sigma, population, everyone, 1)[0])
        source = "estimated from the grid (median of all cells' distributions)"
    if agglomeration_population is None:
        agglomeration_population = float(cells.frame["population"].sum())
    return Prepared(cells, grid, model, fitted, national_median, agglomeration_median, source, agglomeration_population)


def apply_rule(prepared: Prepared, rule: Rule) -> Outcome:
    """Run one rule version on prepared cells: threshold, shares, clusters, quartier test."""
    threshold = None
    if prepared.agglomeration_median is not None:  # None: population_low counted against the user's threshold
        fraction = equivalent_fraction(rule.threshold_fraction, prepared.cells.income_concept, prepared.model)
        threshold = rule.threshold(
            prepared.agglomeration_median, prepared.agglomeration_population, prepared.national_median, fraction
        )
    income = cell_income(prepared.cells, prepared.fitted, threshold.value if threshold else None)
    flagged = income.low_share > rule.low_income_share
    clusters = cluster_cells(prepared.grid, flagged, rule.contiguity, rule.gap_fill_cells)
    clusters = contour_ring(
        prepared.grid,
        clusters,
        income.low_share,
        income.population,
        rule.low_income_share,
        rule.contiguity,
        ring_steps(rule, prepared.cells),
    )
    figures = cluster_figures(clusters, income, flagged)
    eligible = prepared.agglomeration_population >= rule.min_agglomeration_population
    figures["kept"] = (
        eligible
        & (figures["population"] >= rule.min_population)
        & (figures["low_income_share"] > rule.low_income_share)
    )
    return Outcome(rule, threshold, income, flagged, clusters, figures, bool(eligible))


def ring_steps(rule: Rule, cells: CellTable) -> int:
    """Contour-ring steps drawn for this input: the rule's, on estimated grids only.

    The ring was calibrated on public grids (issue #11), where it makes up for contours that cut
    cells and for a grid holding fewer residents than INSEE counted; exact counts
    (``population_low``, ``median_income``) are tested on their candidate clusters as they are.
    """
    return 0 if cells.exact else rule.contour_ring_cells


def delimit(
    cells: CellTable,
    rule: Rule | str = "decree-2014",
    *,
    national_median: float | None = None,
    agglomeration_median: float | None = None,
    agglomeration_population: float | None = None,
    model: IncomeModel | None = None,
    progress: Progress | None = None,
    **parameters: object,
) -> Geography:
    """Delimit priority quartiers on an income grid.

    Parameters
    ----------
    cells : CellTable
        The grid, from :func:`carroyage.read_grid`.
    rule : Rule or str
        Rule version (``"seed"``, ``"decree-2014"``) or a :class:`Rule`.
    national_median : float, optional
        National median income in the grid's income concept (standard of living for Filosofi
        grids: 22,040 € in 2019). Required by ``decree-2014``.
    agglomeration_median : float, optional
        Median income of the unité urbaine; computed from the grid when not given.
    agglomeration_population : float, optional
        Population of the unité urbaine; the grid's total when not given.
    model : IncomeModel, optional
        Estimator assumptions (national figures).
    progress : callable, optional
        Called with a short message, in French, at each stage.
    **parameters
        Rule parameters to override (``contiguity``, ``min_population``, ``threshold_fraction``...).

    Returns
    -------
    Geography

    Examples
    --------
    >>> from carroyage import read_grid
    >>> from carroyage.data import AMIENS_2019
    >>> geo = delimit(read_grid(AMIENS_2019), "decree-2014", national_median=22_040)
    >>> len(geo.qpv) > 0, bool(geo.qpv["estimated"].all())
    (True, True)
    """
    say = progress or (lambda message: None)
    rule = get_rule(rule).with_params(**parameters)
    say("distributions des revenus et médianes de référence")
    prepared = prepare(
        cells,
        national_median=national_median,
        agglomeration_median=agglomeration_median,
        agglomeration_population=agglomeration_population,
        model=model,
    )
    say("parts sous le seuil" + ("" if cells.exact else " estimées") + " et regroupement des carreaux contigus")
    outcome = apply_rule(prepared, rule)
    say("contours des quartiers")
    return build_geography(prepared, outcome)


def build_geography(prepared: Prepared, outcome: Outcome) -> Geography:
    """Layers and manifest of one outcome."""
    cells = prepared.cells
    codes = _codes(outcome.figures["kept"])
    qpv = _quartier_layer(prepared.grid, outcome.clusters, outcome.figures, codes, outcome.income.estimated)
    manifest = build_manifest(
        stage="delimit",
        rule=outcome.rule,
        inputs={"grid": cells.describe()},
        threshold=outcome.threshold,
        agglomeration_median_source=prepared.agglomeration_median_source,
        estimator={**_estimator_record(cells, prepared.model, outcome.rule), "fit": outcome.income.facts},
        agglomeration_population=prepared.agglomeration_population,
        agglomeration_eligible=outcome.eligible,
        clusters=int(outcome.clusters.count),
        quartiers=int(outcome.figures["kept"].sum()),
        contour=_contour_record(ring_steps(outcome.rule, cells), outcome.figures, codes),
    )
    cell_table = _cell_table(cells, outcome.income, outcome.flagged, outcome.clusters, codes)
    return Geography(cell_table, qpv, manifest, resolution=cells.resolution, epsg=cells.epsg)


def cluster_figures(clusters: Clusters, income: CellIncome, flagged: np.ndarray | None = None) -> pd.DataFrame:
    """Residents, pooled share below the threshold, pooled median and cell counts of each cluster.

    One ``bincount`` per figure over all cells; the index is the cluster label (1..count).
    ``core_cells`` counts the candidate cells (``flagged``), ``ring_cells`` those the contour
    ring took in; the rest of ``cells`` are filled gaps.
    """
    n = clusters.count + 1
    label = clusters.of_cell
    population = np.bincount(label, weights=income.population, minlength=n)
    low = np.bincount(label, weights=income.population * income.low_share, minlength=n)
    cells = np.bincount(label, minlength=n)
    core = np.bincount(label, weights=flagged, minlength=n) if flagged is not None else np.zeros(n)
    ring = np.bincount(label, weights=clusters.ring, minlength=n) if clusters.ring is not None else np.zeros(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(population > 0, low / population, 0.0)
    median = pooled_medians(income.mu, income.sigma, income.population, np.where(label > 0, label, -1), n)
    figures: pd.DataFrame = pd.DataFrame(
        {
            "population": population,
            "low_income_share": share,
            "median_income": median,
            "cells": cells,
            "core_cells": core.astype(np.int64),
            "ring_cells": ring.astype(np.int64),
        }
    ).iloc[1:]
    return figures


def _contour_record(steps: int, figures: pd.DataFrame, codes: pd.Series) -> dict[str, object]:
    """How each quartier's contour was drawn: candidate cells and contour-ring cells."""
    kept = figures[figures["kept"]]
    return {
        "ring_steps": steps,
        "minimum_counted_on": "the drawn contour (core, filled gaps and ring)"
        if steps
        else "the candidate cluster (core and filled gaps)",
        "per_quartier": {
            str(codes.loc[label]): {"core_cells": int(row.core_cells), "ring_cells": int(row.ring_cells)}
            for label, row in zip(kept.index, kept.itertuples(), strict=True)
        },
    }


def _codes(keep: pd.Series) -> pd.Series:
    """Codes in label order, i.e. by each quartier's north-west-most cell (raster scan order)."""
    width = max(3, len(str(int(keep.sum()))))
    codes = pd.Series("", index=keep.index, dtype=object)
    # pandas-stubs gap: a boolean mask with a list of values is accepted at runtime
    codes[keep] = [f"{CODE_PREFIX}{i:0{width}d}" for i in range(1, int(keep.sum()) + 1)]  # type: ignore[call-overload]
    return codes


def _quartier_layer(
    grid: Grid, clusters: Clusters, figures: pd.DataFrame, codes: pd.Series, estimated: bool
) -> gpd.GeoDataFrame:
    kept_labels = figures.index[figures["kept"]].to_numpy()
    geometry = cluster_polygons(grid, clusters, kept_labels)
    chosen = figures.loc[kept_labels]
    frame = pd.DataFrame(
        {
            "code": codes.loc[kept_labels].to_numpy(dtype=str),
            "population": chosen["population"].round(1).to_numpy(),
            "median_income": chosen["median_income"].round(0).to_numpy(),
            "low_income_share": chosen["low_income_share"].round(4).to_numpy(),
            "cells": chosen["cells"].to_numpy(dtype=np.int64),
            "area_ha": shapely.area(geometry) / 1e4,
            "estimated": np.full(len(kept_labels), estimated),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=f"EPSG:{grid.epsg}")


def _cell_table(
    cells: CellTable, income: CellIncome, flagged: np.ndarray, clusters: Clusters, codes: pd.Series
) -> pd.DataFrame:
    label = clusters.of_cell
    code_of_label = pa.array(["", *codes.to_list()], type=pa.string())
    table: pd.DataFrame = pd.DataFrame(
        {
            "idcar_200m": cells.frame["id"],
            "population": income.population,
            "low_income_share": np.round(income.low_share, 4),
            "median_income": np.round(income.median, 0),
            "income_spread": np.round(income.sigma, 4),
            "flagged": flagged,
            "cluster": label,
            "qpv": pd.arrays.ArrowStringArray(code_of_label.take(pa.array(label))),
            "x": cells.frame["x"],
            "y": cells.frame["y"],
        },
        copy=False,  # one block per column: no 2.3-million-row copy to consolidate the floats
    )
    return table


def _estimator_record(cells: CellTable, model: IncomeModel, rule: Rule | None = None) -> dict[str, object]:
    """What was estimated and how, with the calibration the defaults come from."""
    if "population_low" in cells.frame:
        return {"method": "exact: population_low given per cell", "estimated": False}
    if "median_income" in cells.frame:
        return {
            "method": "cell test exact (median_income per cell); quartier share and median estimated "
            "from log-normal cells with the national spread",
            "estimated": True,
            "estimated_how": "quartier share and median only; no pooling, no income bridge (declared income given)",
            "model": model.describe(),
        }
    fitted = "households" in cells.frame and "poor_households" in cells.frame
    pooled = "imputed" in cells.frame and model.imputed_pooling_bandwidth > 0
    ring = ring_steps(rule, cells) if rule is not None else 0
    steps = [
        f"imputed cells (i_est) pooled to their Gaussian neighbourhood (h={model.imputed_pooling_bandwidth:g} cell, "
        f"{2 * model.imputed_pooling_reach + 1}x{2 * model.imputed_pooling_reach + 1} window, "
        + (
            "measured cells keep their own figures)"
            if model.shrinkage_households == 0
            else f"measured cells shrunk with k={model.shrinkage_households:g} households)"
        )
        if pooled
        else "no pooling (no imputed-cell column)",
        "log-normal cells (mean ind_snv/ind, spread "
        + ("fitted on men_pauv/men" if fitted else "national, no household columns")
        + ")",
        f"disposable-to-declared bridge r={model.bridge_exponent:.2f} ({model.bridge_source}; "
        f"national derivation {model.bridge_exponent_national:.2f})",
        f"contour ring ({ring} cell, greedy, pooled share kept above the rule's share)" if ring else "no contour ring",
        "pooled per quartier",
    ]
    return {
        "method": "estimated: " + "; ".join(steps),
        "estimated": True,
        "estimated_how": "per-cell distribution from the public aggregates; see docs/method.md §3",
        "model": model.describe(),
        "calibration": CALIBRATION.describe(model),
    }

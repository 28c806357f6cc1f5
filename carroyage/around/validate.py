"""Score a computed geography against an official QPV layer, on the grid's cell centres.

One implementation for ``carroyage validate`` and ``benchmarks/fidelity.py`` (issue #11). Each cell
counts whole, where its centre lies:

* **recall**: residents of the cells whose centre lies in an official QPV that are in a computed
  quartier, over all residents of those cells;
* **precision**: residents of computed-quartier cells whose centre lies within ``near_m`` (300 m)
  of an official QPV, over all computed-quartier residents;
* **detected**: official QPVs of which at least ``detected_share`` (30 %) of the area is covered by
  the squares of computed cells;
* **quartiers**: computed quartiers.

Official polygons that touch no cell of the grid are left out, so a national layer can be given.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import InputError
from ..layers import codes_and_names

NEAR_M = 300.0
"""Precision counts computed residents within this distance of an official QPV (metres)."""
DETECTED_SHARE = 0.30
"""An official QPV is detected when computed cells cover at least this share of its area."""
NO_CELLS = "validate : géographie sans carreaux ; attendu au moins un carreau"


@dataclass(frozen=True)
class Validation:
    """Agreement between a computed and an official geography (see the module docstring).

    Attributes
    ----------
    recall, precision : float
    detected, official, quartiers : int
        Official QPVs detected, official QPVs on the grid, computed quartiers.
    official_residents : float
        Residents of the cells whose centre lies in an official QPV.
    computed_residents : float
        Residents of computed-quartier cells.
    per_official : DataFrame
        One row per official QPV: ``code_qp``, ``lib_qp``, ``residents`` (cells whose centre is in
        it), ``covered`` (of them, in a computed quartier), ``coverage`` (covered / residents),
        ``area_covered`` (share of its area under computed cells), ``detected``.
    """

    recall: float
    precision: float
    detected: int
    official: int
    quartiers: int
    official_residents: float
    computed_residents: float
    per_official: pd.DataFrame

    @property
    def coverage(self) -> float:
        """Former name of :attr:`recall`."""
        return self.recall

    def figures(self) -> dict[str, float]:
        """The headline figures, as a plain dict (benchmark table, calibration record)."""
        return {
            "recall": round(self.recall, 4),
            "precision": round(self.precision, 4),
            "detected": self.detected,
            "official": self.official,
            "quartiers": self.quartiers,
        }


@dataclass(frozen=True)
class Reference:
    """An official layer laid once on a grid's cells, to score any number of delimitations.

    Build it with :meth:`on_cells`; :meth:`score` then costs a few ``bincount`` calls, which is
    what lets the calibration's grid search score hundreds of runs.
    """

    codes: np.ndarray
    names: np.ndarray
    area: np.ndarray
    inside: np.ndarray  # official polygon under each cell centre, -1: none
    near: np.ndarray  # centre within NEAR_M of an official polygon
    overlap_polygon: np.ndarray
    overlap_cell: np.ndarray
    overlap_area: np.ndarray

    @classmethod
    def on_cells(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        resolution: float,
        official: gpd.GeoDataFrame,
        crs: object = "EPSG:3035",
        near_m: float = NEAR_M,
    ) -> Reference:
        """Lay ``official`` on the cells with lower-left corners ``x, y`` (in ``crs``).

        Parameters
        ----------
        x, y : array
            Lower-left corners of the cells.
        resolution : float
            Cell size.
        official : GeoDataFrame
            Official QPV polygons (any CRS); codes and names from the usual columns.
        crs : CRS-like
            The cells' CRS.
        near_m : float
            Distance for precision.

        Examples
        --------
        >>> official = gpd.GeoDataFrame({"code_qp": ["Q1"]}, geometry=[shapely.box(0, 0, 400, 400)], crs=3035)
        >>> ref = Reference.on_cells(np.array([0, 200, 2000]), np.array([0, 0, 0]), 200, official)
        >>> ref.inside.tolist(), ref.near.tolist()
        ([0, 0, -1], [True, True, False])
        >>> ref.score(np.array([100.0, 100.0, 50.0]), np.array([True, False, False]), 1).figures()
        {'recall': 0.5, 'precision': 1.0, 'detected': 0, 'official': 1, 'quartiers': 1}
        """
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if len(x) == 0:
            raise InputError(NO_CELLS)
        squares = shapely.box(x, y, x + resolution, y + resolution)
        official = official.to_crs(crs)
        polygons = official.geometry.to_numpy()
        tree = shapely.STRtree(squares)
        polygon, cell = tree.query(polygons, predicate="intersects")
        on_grid = np.unique(polygon)  # official QPVs touching a cell of the grid
        official, polygons = official.iloc[on_grid], polygons[on_grid]
        polygon = np.searchsorted(on_grid, polygon)
        codes, names = codes_and_names(official, prefix="Q")
        area = shapely.area(shapely.intersection(polygons[polygon], squares[cell]))
        cx, cy = x + resolution / 2, y + resolution / 2
        inside = np.full(len(x), -1, dtype=np.int64)
        if len(polygons):
            centres = shapely.points(cx, cy)
            which, where = shapely.STRtree(polygons).query(centres, predicate="within")
            inside[which] = where
            union = shapely.union_all(polygons)
            near = shapely.dwithin(union, centres, near_m)
        else:
            near = np.zeros(len(x), dtype=bool)
        return cls(codes, names, shapely.area(polygons), inside, np.asarray(near, dtype=bool), polygon, cell, area)

    def score(self, population: np.ndarray, in_quartier: np.ndarray, quartiers: int) -> Validation:
        """Score one delimitation: residents per cell and whether each cell is in a quartier."""
        population = np.asarray(population, dtype=float)
        computed = np.asarray(in_quartier, dtype=bool)
        in_official = self.inside >= 0
        n = len(self.codes)
        residents = np.bincount(self.inside[in_official], weights=population[in_official], minlength=n)
        covered = np.bincount(self.inside[in_official], weights=(population * computed)[in_official], minlength=n)
        with np.errstate(divide="ignore", invalid="ignore"):
            area_covered = (
                np.bincount(self.overlap_polygon, weights=self.overlap_area * computed[self.overlap_cell], minlength=n)
                / self.area
            )
            coverage = np.where(residents > 0, covered / residents, np.nan)
        official_residents = float(residents.sum())
        computed_residents = float(population[computed].sum())
        per_official = pd.DataFrame(
            {
                "code_qp": self.codes,
                "lib_qp": self.names,
                "residents": residents,
                "covered": covered,
                "coverage": coverage,
                "area_covered": area_covered,
                "detected": area_covered >= DETECTED_SHARE,
            }
        )
        return Validation(
            recall=float(covered.sum()) / official_residents if official_residents else float("nan"),
            precision=float(population[computed & self.near].sum()) / computed_residents
            if computed_residents
            else float("nan"),
            detected=int((area_covered >= DETECTED_SHARE).sum()),
            official=n,
            quartiers=int(quartiers),
            official_residents=official_residents,
            computed_residents=computed_residents,
            per_official=per_official,
        )


def validate(cells: pd.DataFrame, official: gpd.GeoDataFrame, resolution: float | None = None) -> Validation:
    """Compare the cells of a geography with official perimeters.

    Parameters
    ----------
    cells : DataFrame or GeoDataFrame
        A geography's cell table (``x``, ``y`` corners) or its ``cells`` layer (cell squares), with
        ``population`` and ``qpv`` (quartier code, empty outside).
    official : GeoDataFrame
        Official QPV polygons (any CRS); only those touching the grid count.
    resolution : float, optional
        Cell size; from the squares (or 200 m) when not given.

    Returns
    -------
    Validation

    Examples
    --------
    >>> official = gpd.GeoDataFrame({"code_qp": ["Q1"], "lib_qp": ["Nord"]},
    ...     geometry=[shapely.box(0, 0, 400, 200)], crs=3035)
    >>> cells = pd.DataFrame({"x": [0, 200, 400], "y": [0, 0, 0], "population": [100.0, 100.0, 100.0],
    ...     "qpv": ["QC001", "QC001", "QC001"]})
    >>> v = validate(cells, official)
    >>> round(v.recall, 2), round(v.precision, 2), v.detected, v.quartiers
    (1.0, 1.0, 1, 1)
    """
    if len(cells) == 0:
        raise InputError(NO_CELLS)
    if "x" in cells and "y" in cells:
        x, y = cells["x"].to_numpy(dtype=float), cells["y"].to_numpy(dtype=float)
        crs: object = getattr(cells, "crs", None) or "EPSG:3035"
        size = float(resolution or 200)
    elif isinstance(cells, gpd.GeoDataFrame):
        bounds = shapely.bounds(cells.geometry.to_numpy())
        x, y = bounds[:, 0], bounds[:, 1]
        size = float(resolution or np.median(bounds[:, 2] - bounds[:, 0]))
        crs = cells.crs
    else:
        raise InputError("validate : carreaux sans coins x, y ni géométries ; attendu l'un ou l'autre")
    codes = cells["qpv"].fillna("").astype(str).to_numpy()
    computed = codes != ""
    reference = Reference.on_cells(x, y, size, official, crs)
    return reference.score(cells["population"].to_numpy(dtype=float), computed, len(np.unique(codes[computed])))

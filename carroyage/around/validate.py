"""Measure a computed geography against an official QPV layer, on the grid's residents.

Residents of a cell are spread evenly over its square, so a cell half inside an official QPV counts
half its residents there. Two figures (docs/facts.md, issue "delimitation engine"):

* **coverage**: share of official-QPV residents that live in a computed quartier;
* **precision**: share of computed-quartier residents that live in an official QPV.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import InputError
from ..layers import cell_overlaps


@dataclass(frozen=True)
class Validation:
    """Agreement between a computed and an official geography."""

    official_residents: float
    computed_residents: float
    shared_residents: float
    per_official: pd.DataFrame

    @property
    def coverage(self) -> float:
        """Share of official-QPV residents inside a computed quartier."""
        return self.shared_residents / self.official_residents if self.official_residents else float("nan")

    @property
    def precision(self) -> float:
        """Share of computed-quartier residents inside an official QPV."""
        return self.shared_residents / self.computed_residents if self.computed_residents else float("nan")


def validate(cells: gpd.GeoDataFrame, official: gpd.GeoDataFrame) -> Validation:
    """Compare the ``cells`` layer of a geography with official perimeters.

    Parameters
    ----------
    cells : GeoDataFrame
        The ``cells`` layer (``population``, ``qpv``, cell squares).
    official : GeoDataFrame
        Official QPV polygons with ``code_qp`` and ``lib_qp`` (any CRS); only those touching the
        grid are used.
    """
    if cells.empty:
        raise InputError("validate: the geography has no cells")
    official = official.to_crs(cells.crs)
    official = official[official.intersects(shapely.box(*cells.total_bounds))]
    polygon, cell, share = cell_overlaps(cells.geometry.to_numpy(), official.geometry.to_numpy())
    population = cells["population"].to_numpy()
    computed = cells["qpv"].fillna("").to_numpy(dtype=str) != ""
    residents = population[cell] * share
    covered = residents * computed[cell]
    per_official = pd.DataFrame(
        {
            "code_qp": official["code_qp"].to_numpy(),
            "lib_qp": official["lib_qp"].to_numpy(),
            "residents": np.bincount(polygon, weights=residents, minlength=len(official)),
            "covered": np.bincount(polygon, weights=covered, minlength=len(official)),
        }
    )
    per_official["coverage"] = per_official["covered"] / per_official["residents"]
    return Validation(
        official_residents=float(residents.sum()),
        computed_residents=float(population[computed].sum()),
        shared_residents=float(covered.sum()),
        per_official=per_official,
    )

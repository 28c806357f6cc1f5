"""Re-run the rule over a grid of parameters on the same prepared cells.

The cells are read and their income distributions fitted once (:func:`carroyage.delimit.prepare`);
each run only recomputes shares, clusters and the quartier test, so a sweep of tens of variants on
a city takes seconds.
"""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely import box

from ..errors import InputError
from ..labels import USAGE
from .delimit import Prepared, apply_rule
from .rules import Rule


def parse_range(text: str, what: str) -> list[float]:
    """``"0.55:0.65:0.01"`` (start:stop:step, both ends included) or ``"0.55,0.6"``.

    A value that is neither is refused in French, as the command line echoes it
    (``--threshold 0.65:0.55 : attendu début:fin:pas ...``).

    Examples
    --------
    >>> parse_range("0.55:0.65:0.05", "--threshold")
    [0.55, 0.6, 0.65]
    """
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0 or stop < start:
                raise ValueError
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            return [round(start + i * step, 10) for i in range(count)]
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        expected = "attendu début:fin:pas (par ex. 0.55:0.65:0.01) ou une liste séparée par des virgules"
        raise InputError(USAGE["bad_value"].format(name=what, value=shlex.quote(text), expected=expected)) from None


def sensitivity(
    prepared: Prepared,
    rule: Rule,
    fractions: Sequence[float],
    contiguities: Sequence[str],
    min_populations: Sequence[int],
) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """Run every combination of parameters.

    Returns
    -------
    runs : DataFrame
        One row per run: ``threshold_fraction``, ``contiguity``, ``min_population``,
        ``threshold``, ``quartiers``, ``residents``.
    stability : GeoDataFrame
        One row per cell: ``idcar_200m``, ``population``, ``stability`` (share of runs in which
        the cell lies in a quartier), cell square.
    """
    rows, inside = [], np.zeros(len(prepared.cells.frame))
    population = prepared.cells.frame["population"].to_numpy()
    combinations = list(itertools.product(fractions, contiguities, min_populations))
    for fraction, contiguity, min_population in combinations:  # one loop step per run, each vectorised
        variant = rule.with_params(
            threshold_fraction=fraction, contiguity=contiguity, min_population=int(min_population)
        )
        outcome = apply_rule(prepared, variant)
        in_quartier = outcome.in_quartier()
        inside += in_quartier
        rows.append(
            {
                "threshold_fraction": fraction,
                "contiguity": contiguity,
                "min_population": int(min_population),
                "threshold": outcome.threshold.value if outcome.threshold else np.nan,
                "quartiers": int(outcome.figures["kept"].sum()),
                "residents": float(population[in_quartier].sum()),
            }
        )
    frame = prepared.cells.frame
    x, y, size = frame["x"].to_numpy(), frame["y"].to_numpy(), prepared.cells.resolution
    stability = gpd.GeoDataFrame(
        {"idcar_200m": frame["id"], "population": population, "stability": np.round(inside / len(combinations), 4)},
        geometry=box(x, y, x + size, y + size),
        crs=f"EPSG:{prepared.cells.epsg}",
    )
    return pd.DataFrame(rows), stability

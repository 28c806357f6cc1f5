"""Around the QPV: quartier vécu and veille active (docs/facts.md, "Around the QPV").

* **Quartier vécu**: the places QPV residents use. No geometric rule exists; the default grows each
  QPV by 300 m, the distance the tax code uses around QPVs (reduced VAT, CGI art. 278 sexies; 500 m
  for NPNRU quartiers), optionally clipped to communes or an EPCI and stretched to reach facilities
  (schools, shops, health, sport, transport) given as points.
* **Veille active**: areas the new geography leaves out but the contract keeps under watch
  (loi 2014-173 art. 13): parts of a previous geography no longer covered, clusters that fail only
  the minimum population, clusters whose median lies just above the threshold, and any area the
  contract designates itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from ..engine.clusters import cluster_cells
from ..engine.grid import Grid
from ..engine.income import pooled_medians, share_below
from ..engine.rules import Rule, get_rule
from ..geography import Geography
from ..labels import PREVIOUS_GEOGRAPHY, WATCH_REASONS
from ..layers import codes_and_names, residents_in
from ..settings import FACILITY_RADIUS_M, FACILITY_REACH_M, NEAR_MARGIN, VECU_DISTANCE_M, WATCH_MIN_POPULATION

FACILITY_CORRIDOR = 50.0  # half-width of the path joining a facility to its quartier
MIN_PART_HA = 1.0  # smaller leftovers of a previous perimeter are drawing noise


def quartier_vecu(
    qpv: gpd.GeoDataFrame,
    distance: float = VECU_DISTANCE_M,
    clip: gpd.GeoDataFrame | None = None,
    facilities: gpd.GeoDataFrame | None = None,
    reach: float = FACILITY_REACH_M,
) -> gpd.GeoDataFrame:
    """Each QPV grown by ``distance`` metres, clipped, and stretched to nearby facilities.

    Parameters
    ----------
    qpv : GeoDataFrame
        Quartiers with a ``code`` column, in a metric CRS (EPSG:3035 from ``delimit``).
    distance : float
        Growth in metres (300 by default; 500 for NPNRU quartiers).
    clip : GeoDataFrame, optional
        Communes or EPCI: the vécu stays inside their union (the QPV itself is always kept).
    facilities : GeoDataFrame, optional
        Points (or shapes, taken at a point inside) used by residents; those within ``reach``
        metres of a QPV are joined to its vécu by a 100 m wide corridor and a 100 m disc.
    reach : float
        How far from the QPV a facility can be and still join its vécu.

    Returns
    -------
    GeoDataFrame
        One feature per QPV (overlaps between QPVs kept): ``code``, ``distance_m``, ``clipped``,
        ``facilities``, ``area_ha``.
    """
    quartiers = qpv.geometry.to_numpy()
    grown = shapely.buffer(quartiers, distance)
    reached = np.zeros(len(qpv), dtype=np.int64)
    if facilities is not None and len(facilities) and len(qpv):
        points = shapely.point_on_surface(facilities.to_crs(qpv.crs).geometry.to_numpy())
        quartier, facility = shapely.STRtree(points).query(quartiers, predicate="dwithin", distance=reach)
        if len(quartier):
            links = shapely.union(
                shapely.buffer(shapely.shortest_line(quartiers[quartier], points[facility]), FACILITY_CORRIDOR),
                shapely.buffer(points[facility], FACILITY_RADIUS_M),
            )
            per_quartier = gpd.GeoDataFrame({"quartier": quartier}, geometry=links, crs=qpv.crs).dissolve("quartier")
            index = per_quartier.index.to_numpy()
            grown[index] = shapely.union(grown[index], per_quartier.geometry.to_numpy())
            reached = np.bincount(quartier, minlength=len(qpv))
    if clip is not None:
        region = shapely.union_all(clip.to_crs(qpv.crs).geometry.to_numpy())
        grown = shapely.union(shapely.intersection(grown, region), quartiers)
    return gpd.GeoDataFrame(
        {
            "code": qpv["code"].to_numpy(),
            "distance_m": np.full(len(qpv), float(distance)),
            "clipped": np.full(len(qpv), clip is not None),
            "facilities": reached,
            "area_ha": shapely.area(grown) / 1e4,
        },
        geometry=grown,
        crs=qpv.crs,
    )


@dataclass(frozen=True)
class WatchSettings:
    """How veille-active zones are found.

    Parameters
    ----------
    near_margin : float
        A cluster is "near the threshold" when its median lies between the threshold and
        ``(1 + near_margin)`` times it (0.1: within 10 %).
    min_population : float
        Smallest cluster of the "population insuffisante" or "near" kinds worth watching.
    """

    near_margin: float = NEAR_MARGIN
    min_population: float = WATCH_MIN_POPULATION


def veille_active(
    geography: Geography,
    previous: gpd.GeoDataFrame | None = None,
    local: gpd.GeoDataFrame | None = None,
    settings: WatchSettings = WatchSettings(),
) -> gpd.GeoDataFrame:
    """Areas to keep under watch, each with its ``reason``.

    Parameters
    ----------
    geography : Geography
        A delimited geography (its cells carry shares, medians and spreads).
    previous : GeoDataFrame, optional
        A previous geography (an earlier QPV list, ZUS, CUCS...): its parts outside the new QPVs.
    local : GeoDataFrame, optional
        Areas the contract designates itself, passed through.
    settings : WatchSettings

    Returns
    -------
    GeoDataFrame
        ``reason`` (French, as users read it), ``source``, ``code``, ``name``, ``population``
        (residents from the grid), ``median_income``, ``area_ha``, polygon in the grid's CRS.
    """
    recorded = cast(dict[str, Any], geography.manifest["rule"])
    rule = get_rule(recorded["name"]).with_params(
        **{k: v for k, v in recorded.items() if k not in ("name", "description")}
    )
    parts = [
        _previous_parts(geography, previous, PREVIOUS_GEOGRAPHY),
        _small_clusters(geography, rule, settings),
        _near_threshold(geography, rule, settings),
        _previous_parts(geography, local, "couche fournie", keep_whole=True),
    ]
    watched = (
        pd.concat([p for p in parts if p is not None and len(p)], ignore_index=True)
        if any(p is not None and len(p) for p in parts)
        else None
    )
    if watched is None:
        return gpd.GeoDataFrame(
            {c: [] for c in ("reason", "source", "code", "name", "population", "median_income", "area_ha")},
            geometry=[],
            crs=geography.qpv.crs,
        )
    watched["area_ha"] = shapely.area(watched.geometry.to_numpy()) / 1e4
    return gpd.GeoDataFrame(watched, geometry="geometry", crs=geography.qpv.crs)


def _previous_parts(
    geography: Geography, layer: gpd.GeoDataFrame | None, source: str, keep_whole: bool = False
) -> gpd.GeoDataFrame | None:
    if layer is None:
        return None
    cells = geography.cells
    layer = layer.to_crs(cells.crs)
    layer = layer[layer.intersects(shapely.box(*cells.total_bounds))]
    codes, names = codes_and_names(layer, prefix="V")
    shapes = layer.geometry.to_numpy()
    if not keep_whole:
        shapes = shapely.difference(shapes, shapely.union_all(geography.qpv.geometry.to_numpy()))
    found = gpd.GeoDataFrame({"code": codes, "name": names}, geometry=shapes, crs=cells.crs).explode(index_parts=False)
    found = found[~found.geometry.is_empty & (found.geometry.area >= (0 if keep_whole else MIN_PART_HA * 1e4))]
    found = found.dissolve(["code", "name"], as_index=False) if len(found) else found
    reason = WATCH_REASONS["local" if keep_whole else "previous"]
    return _watch_frame(
        reason, source, found["code"], found["name"], residents_in(cells, found.geometry), np.nan, found.geometry
    )


def _small_clusters(geography: Geography, rule: Rule, settings: WatchSettings) -> gpd.GeoDataFrame | None:
    table = geography.cell_table
    outside = (table["cluster"] > 0) & (table["qpv"] == "")
    grouped = table[outside].assign(low=table["population"] * table["low_income_share"]).groupby("cluster")
    figures = grouped[["population", "low"]].sum()
    chosen = figures[
        (figures["low"] > rule.low_income_share * figures["population"])
        & (figures["population"] < rule.min_population)
        & (figures["population"] >= settings.min_population)
    ]
    if chosen.empty:
        return None
    shapes = _cluster_shapes(geography, table["cluster"].to_numpy(), chosen.index.to_numpy())
    codes = [f"C{label}" for label in chosen.index]
    return _watch_frame(WATCH_REASONS["small"], "carroyage", codes, "", chosen["population"].to_numpy(), np.nan, shapes)


def _near_threshold(geography: Geography, rule: Rule, settings: WatchSettings) -> gpd.GeoDataFrame | None:
    """Clusters of cells outside the QPVs whose pooled median lies just above the threshold."""
    threshold = (cast(dict[str, Any] | None, geography.manifest.get("threshold")) or {}).get("value")
    table = geography.cell_table
    if threshold is None or table["income_spread"].isna().all():
        return None  # exact population_low inputs carry no distribution to move the threshold on
    mu = np.log(table["median_income"].to_numpy())
    sigma = table["income_spread"].to_numpy()
    population = table["population"].to_numpy()
    relaxed = threshold * (1 + settings.near_margin)
    candidates = (share_below(mu, sigma, relaxed) > rule.low_income_share) & (table["qpv"] == "").to_numpy()
    x, y = table["x"].to_numpy(), table["y"].to_numpy()
    clusters = cluster_cells(
        Grid.around(x, y, geography.resolution, geography.epsg), candidates, rule.contiguity, rule.gap_fill_cells
    )
    label = clusters.of_cell
    members = np.where(table["qpv"].to_numpy() == "", label, 0)  # filled gaps never annex a QPV cell
    size = np.bincount(members, weights=population, minlength=clusters.count + 1)
    below = np.bincount(members, weights=population * share_below(mu, sigma, threshold), minlength=clusters.count + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share_at_threshold = below / size
    chosen = np.flatnonzero(
        (size >= max(rule.min_population, settings.min_population)) & (share_at_threshold <= rule.low_income_share)
    )
    chosen = chosen[chosen > 0]
    if len(chosen) == 0:
        return None
    median = pooled_medians(mu, sigma, population, np.where(members > 0, members, -1), clusters.count + 1)[chosen]
    shapes = _cluster_shapes(geography, members, chosen)
    codes = [f"P{label}" for label in chosen]
    return _watch_frame(WATCH_REASONS["near"], "carroyage", codes, "", size[chosen], np.round(median), shapes)


def _cluster_shapes(geography: Geography, label: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    cells = geography.cells
    inside = np.isin(label, chosen)
    grouped = gpd.GeoDataFrame({"label": label[inside]}, geometry=cells.geometry.to_numpy()[inside], crs=cells.crs)
    dissolved = grouped.dissolve("label", method="coverage")
    shapes: np.ndarray = dissolved.geometry.reindex(chosen).to_numpy()
    return shapes


def _watch_frame(
    reason: str,
    source: str,
    codes: npt.ArrayLike,
    names: npt.ArrayLike,
    population: npt.ArrayLike,
    median: npt.ArrayLike,
    shapes: np.ndarray,
) -> gpd.GeoDataFrame:
    n = len(shapes)
    return gpd.GeoDataFrame(
        {
            "reason": np.full(n, reason, dtype=object),
            "source": np.full(n, source, dtype=object),
            "code": np.asarray(codes, dtype=object),
            "name": np.broadcast_to(np.asarray(names, dtype=object), (n,)),
            "population": np.round(np.asarray(population, dtype=float), 1),
            "median_income": np.broadcast_to(np.asarray(median, dtype=float), (n,)),
        },
        geometry=np.asarray(shapes, dtype=object),
    )

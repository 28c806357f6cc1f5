"""Compare two geographies quartier by quartier, as the 2024 refresh was described.

Quartiers are matched by overlap. Each new quartier is ``new`` (no former one overlaps it),
``unchanged`` (one former quartier, one-to-one, nearly the same shape) or ``modified`` (merged,
split or redrawn); each former quartier that no new one overlaps has ``left``. Residents gained
and lost come from the grid's cells (area-weighted).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..layers import codes_and_names, residents_in
from ..settings import MIN_OVERLAP, UNCHANGED_IOU

CLASSES = ("new", "modified", "unchanged", "left")


@dataclass(frozen=True)
class Comparison:
    """The classified quartiers: one GeoDataFrame per class, and a summary table."""

    layers: dict[str, gpd.GeoDataFrame]

    def summary(self) -> pd.DataFrame:
        """Count, residents gained and lost, and area change per class."""
        rows = []
        for name in CLASSES:
            layer = self.layers[name]
            rows.append(
                {
                    "class": name,
                    "quartiers": len(layer),
                    "residents_gained": float(layer["residents_gained"].sum()) if len(layer) else 0.0,
                    "residents_lost": float(layer["residents_lost"].sum()) if len(layer) else 0.0,
                    "area_change_ha": float(layer["area_change_ha"].sum()) if len(layer) else 0.0,
                }
            )
        table: pd.DataFrame = pd.DataFrame(rows)
        return table


def compare(
    old: gpd.GeoDataFrame,
    new: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame | None = None,
    min_overlap: float = MIN_OVERLAP,
    unchanged_iou: float = UNCHANGED_IOU,
) -> Comparison:
    """Match and classify quartiers of two geographies.

    Parameters
    ----------
    old, new : GeoDataFrame
        Polygon layers (any CRS; compared in the CRS of ``cells``, else EPSG:3035), codes and
        names read from the usual columns (``code``/``code_qp``, ``name``/``lib_qp``).
    cells : GeoDataFrame, optional
        Grid cells with ``population``: residents gained and lost (NaN without).
    min_overlap : float
        Two quartiers match when their overlap is at least this share of the smaller one.
    unchanged_iou : float
        A one-to-one match is ``unchanged`` when intersection over union reaches this.

    Returns
    -------
    Comparison
    """
    crs = cells.crs if cells is not None else "EPSG:3035"
    old, new = old.to_crs(crs), new.to_crs(crs)
    old_shapes, new_shapes = old.geometry.to_numpy(), new.geometry.to_numpy()
    o, n = shapely.STRtree(old_shapes).query(new_shapes, predicate="intersects")[::-1]
    overlap = shapely.area(shapely.intersection(old_shapes[o], new_shapes[n]))
    smaller = np.minimum(shapely.area(old_shapes[o]), shapely.area(new_shapes[n]))
    match = overlap >= min_overlap * smaller
    o, n, overlap = o[match], n[match], overlap[match]
    old_matches = np.bincount(o, minlength=len(old))
    new_matches = np.bincount(n, minlength=len(new))
    union = shapely.area(old_shapes[o]) + shapely.area(new_shapes[n]) - overlap
    one_to_one = (old_matches[o] == 1) & (new_matches[n] == 1) & (overlap / union >= unchanged_iou)
    unchanged_new = np.zeros(len(new), dtype=bool)
    unchanged_new[n[one_to_one]] = True

    all_old, all_new = shapely.union_all(old_shapes), shapely.union_all(new_shapes)
    matched_old = _grouped_union(old_shapes[o], n, len(new))
    detail = np.where(new_matches > 1, "merged", "")
    split = np.zeros(len(new), dtype=bool)
    split[n[old_matches[o] > 1]] = True
    detail = np.where(split & (detail == "merged"), "merged and split", np.where(split, "split", detail))
    new_class = np.where(new_matches == 0, "new", np.where(unchanged_new, "unchanged", "modified"))
    detail = np.where(
        (new_class == "modified") & (detail == ""), "contour", np.where(new_class == "modified", detail, "")
    )

    old_codes, old_names = codes_and_names(old, "A")
    new_codes, new_names = codes_and_names(new, "N")
    former = pd.Series(old_codes[o]).groupby(n).agg(" + ".join).reindex(range(len(new)), fill_value="").to_numpy()
    gained = _residents(cells, shapely.difference(new_shapes, all_old))
    lost = _residents(cells, shapely.difference(matched_old, all_new))
    new_frame = gpd.GeoDataFrame(
        {
            "code": new_codes,
            "name": new_names,
            "class": new_class,
            "detail": detail,
            "former": former,
            "residents_gained": gained,
            "residents_lost": np.where(new_class == "new", 0.0, lost),
            "area_change_ha": (shapely.area(new_shapes) - shapely.area(matched_old)) / 1e4,
        },
        geometry=new_shapes,
        crs=crs,
    )
    left = old_matches == 0
    left_frame = gpd.GeoDataFrame(
        {
            "code": old_codes[left],
            "name": old_names[left],
            "class": "left",
            "detail": "",
            "former": old_codes[left],
            "residents_gained": 0.0,
            "residents_lost": _residents(cells, shapely.difference(old_shapes[left], all_new)),
            "area_change_ha": -shapely.area(old_shapes[left]) / 1e4,
        },
        geometry=old_shapes[left],
        crs=crs,
    )
    layers = {name: new_frame[new_frame["class"] == name].reset_index(drop=True) for name in CLASSES[:3]}
    layers["left"] = left_frame
    return Comparison(layers)


def _grouped_union(shapes: np.ndarray, group: np.ndarray, groups: int) -> np.ndarray:
    """Union of ``shapes`` per group (empty polygon where a group has none)."""
    result = np.array([shapely.Polygon()] * groups, dtype=object)
    if len(shapes):
        dissolved = gpd.GeoDataFrame({"group": group}, geometry=shapes).dissolve("group")
        result[dissolved.index.to_numpy()] = dissolved.geometry.to_numpy()
    return result


def _residents(cells: gpd.GeoDataFrame | None, shapes: np.ndarray) -> np.ndarray:
    return np.full(len(shapes), np.nan) if cells is None else np.round(residents_in(cells, shapes), 1)

"""The ``Geography`` object, and reading one back from disk.

A geography is what ``carroyage delimit`` produces: one row per cell, one polygon per quartier, a
manifest of how it was made, and the layers later stages add (``quartier_vecu``,
``veille_active``). Both wings use it: the publishing side writes it, the address check reads
its zones, so it lives on the ground floor and needs nothing from the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer

from .errors import InputError
from .labels import A_GEOGRAPHY, NO_SUCH_FILE, UNREADABLE

MANIFEST_LAYER = "manifest"
CORE_LAYERS = ("qpv", "cells")
TABLES = (MANIFEST_LAYER, "layer_styles")
"""Non-spatial tables of a geography's GeoPackage: the manifest, and QGIS's styles."""


@dataclass
class Geography:
    """A delimited priority geography.

    Attributes
    ----------
    cell_table : pandas.DataFrame
        One row per input cell: ``idcar_200m``, ``population``, ``low_income_share``,
        ``median_income``, ``flagged`` (candidate), ``cluster`` (0: none), ``qpv`` (code or empty),
        and the lower-left corner ``x``, ``y``.
    qpv : geopandas.GeoDataFrame
        One row per quartier: ``code``, ``population``, ``median_income``, ``low_income_share``,
        ``cells``, ``area_ha``, ``estimated``, polygon in the grid's CRS (EPSG:3035).
    manifest : dict
        How it was made: rule version and parameters, threshold, inputs and their hashes, versions.
    layers : dict
        Further layers (``quartier_vecu``, ``veille_active``...) added by later stages.
    resolution, epsg : int
        Cell size and CRS of the grid.
    """

    cell_table: pd.DataFrame
    qpv: gpd.GeoDataFrame
    manifest: dict[str, object]
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    resolution: int = 200
    epsg: int = 3035

    @cached_property
    def cells(self) -> gpd.GeoDataFrame:
        """The cells as a GeoDataFrame of squares (built on first use: millions of polygons)."""
        x, y = self.cell_table["x"].to_numpy(), self.cell_table["y"].to_numpy()
        squares = shapely.box(x, y, x + self.resolution, y + self.resolution)
        return gpd.GeoDataFrame(self.cell_table.drop(columns=["x", "y"]), geometry=squares, crs=f"EPSG:{self.epsg}")


def is_geography(path: str | Path) -> bool:
    """Whether ``path`` is a GeoPackage written by ``carroyage delimit``."""
    path = Path(path)
    if path.suffix.lower() != ".gpkg" or not path.is_file():
        return False
    try:
        names = {name for name, _ in pyogrio.list_layers(path)}
    except Exception:  # not a GeoPackage after all: let the caller's reader say so
        return False
    return {*CORE_LAYERS, MANIFEST_LAYER} <= names


def read_geography(path: str | Path) -> Geography:
    """Read a GeoPackage written by :func:`write_geography` (every layer, and the manifest)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(NO_SUCH_FILE.format(path=path))
    try:
        names = [name for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio raises DataSourceError for non-GeoPackage files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(UNREADABLE.format(path=path, reason=reason, expected=A_GEOGRAPHY)) from exc
    missing = [name for name in (*CORE_LAYERS, MANIFEST_LAYER) if name not in names]
    if missing:
        what = "couches absentes" if len(missing) > 1 else "couche absente"
        raise InputError(f"{path} : {what} {', '.join(missing)} ; attendu {A_GEOGRAPHY}")
    try:
        layers = {
            name: pyogrio.read_dataframe(path, layer=name, use_arrow=True)
            for name, kind in pyogrio.list_layers(path)
            if name not in TABLES and kind is not None
        }
        table = pyogrio.read_dataframe(path, layer=MANIFEST_LAYER, read_geometry=False)
        manifest = {key: json.loads(value) for key, value in zip(table["key"], table["value"], strict=True)}
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, KeyError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path} : couche illisible ({reason}) ; attendu {A_GEOGRAPHY}") from exc
    cells = layers.pop("cells")
    grid = manifest["inputs"]["grid"]
    epsg, resolution = int(grid["epsg"]), int(grid["resolution_m"])
    in_grid_crs = cells.crs is None or cells.crs.to_epsg() == epsg
    x, y = _corners(cells, epsg, resolution, in_grid_crs)
    table = pd.DataFrame(cells.drop(columns="geometry")).assign(qpv=cells["qpv"].fillna(""), x=x, y=y)
    layers = {name: _working_layer(layer, epsg) for name, layer in layers.items()}
    qpv = layers.pop("qpv")
    geography = Geography(table, qpv, manifest, layers, resolution=resolution, epsg=epsg)
    if in_grid_crs:
        geography.__dict__["cells"] = cells  # already read: no need to rebuild the squares
    return geography


def _corners(cells: gpd.GeoDataFrame, epsg: int, resolution: int, in_grid_crs: bool) -> tuple[np.ndarray, np.ndarray]:
    """Lower-left corners of the cells in the grid's CRS, whatever CRS the file holds them in.

    A cell written in another CRS (Lambert-93 for GIS users) is no longer a grid square there: its
    centre is projected back and snapped to the grid, so the corners come back exact.
    """
    if in_grid_crs:
        bounds = shapely.bounds(cells.geometry.to_numpy())
        return bounds[:, 0], bounds[:, 1]
    centres = shapely.get_coordinates(shapely.centroid(cells.geometry.to_numpy()))
    back = Transformer.from_crs(cells.crs, epsg, always_xy=True)
    cx, cy = (np.asarray(values) for values in back.transform(centres[:, 0], centres[:, 1]))
    half = resolution / 2
    return np.rint((cx - half) / resolution) * resolution, np.rint((cy - half) / resolution) * resolution


def _working_layer(layer: gpd.GeoDataFrame, epsg: int) -> gpd.GeoDataFrame:
    """A quartier or zone layer as the stages use it, whatever CRS and NULLs the file has.

    Files for GIS users may hold these layers in Lambert-93 with NULL for absent text and whole
    residents; in memory they are in the grid's CRS, with ``""`` for absent text and float counts.
    """
    if layer.crs is not None and layer.crs.to_epsg() != epsg:
        layer = layer.to_crs(epsg)
    for column in layer.columns:
        if column == layer.geometry.name:
            continue
        values = layer[column]
        if pd.api.types.is_integer_dtype(values) and column == "population":
            layer[column] = values.astype(float)
        elif not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            layer[column] = values.fillna("")
    return layer

"""Polygon and point layers from other sources, and residents counted inside polygons.

Residents of a cell are spread evenly over its square, so a cell half inside a polygon counts half
its residents there; pairs come from one ``shapely.STRtree`` query, intersections are vectorised.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from .errors import InputError
from .labels import NO_SUCH_FILE, UNREADABLE

POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon
GEOMETRY_KINDS = {"polygons": POLYGONAL, "points": (0, 4)}  # and of Point, MultiPoint
KIND_NAMES = {"polygons": "polygones", "points": "points"}
"""The kinds of :data:`GEOMETRY_KINDS`, as an error message says them."""
CODE_COLUMNS = ("code", "code_qp", "codeqpv", "code_quartier", "id")
NAME_COLUMNS = ("name", "lib_qp", "nom", "libelle", "nom_quartier")


def read_layer(path: str | Path, what: str = "couche", kind: str | None = None) -> gpd.GeoDataFrame:
    """Read any vector file GDAL knows, repairing invalid polygons.

    Parameters
    ----------
    path : str or Path
    what : str
        What the layer is, in French, for error messages, where it is shown in parentheses after
        the problem ("QPV officiels", "--previous", "communes de référence"...).
    kind : {"polygons", "points"}, optional
        The geometries expected; any other kind is refused with one line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(NO_SUCH_FILE.format(path=path) + f" ({what})")
    try:
        layer = gpd.read_file(path)
    except Exception as exc:  # pyogrio's DataSourceError and friends
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            UNREADABLE.format(path=path, reason=reason, expected=f"une couche vectorielle ({what})")
        ) from exc
    if not isinstance(layer, gpd.GeoDataFrame) or layer.geometry.name not in layer.columns:
        raise InputError(
            f"{path} : pas de géométrie ({what}) ; attendu une couche vectorielle (GeoPackage, GeoJSON, Shapefile)"
        )
    if layer.crs is None:
        raise InputError(
            f"{path} : pas de système de coordonnées ({what}) ; attendu un système déclaré (EPSG:4326 pour un GeoJSON)"
        )
    if layer.empty:
        raise InputError(f"{path} : aucune entité ({what}) ; attendu une couche non vide")
    missing = layer.geometry.isna() | layer.geometry.is_empty
    if missing.any():
        raise InputError(
            f"{path} : entité {int(np.flatnonzero(missing.to_numpy())[0]) + 1} : pas de géométrie ({what})"
        )
    shapes = layer.geometry.to_numpy()
    wrong: np.ndarray | list[int] = (
        np.flatnonzero(~np.isin(shapely.get_type_id(shapes), GEOMETRY_KINDS[kind])) if kind is not None else []
    )
    if len(wrong):
        raise InputError(
            f"{path} : l'entité {wrong[0] + 1} est un {shapes[wrong[0]].geom_type} ({what}) ; "
            f"attendu des {KIND_NAMES[str(kind)]} seulement"
        )
    if np.isin(shapely.get_type_id(shapes), POLYGONAL).all():
        # "structure" keeps polygons polygonal (rings collapsed by coordinate rounding vanish
        # instead of turning into lines or points)
        layer["geometry"] = shapely.make_valid(shapes, method="structure", keep_collapsed=False)
    else:
        layer["geometry"] = shapely.make_valid(shapes)
    return layer


def read_official(path: str | Path) -> gpd.GeoDataFrame:
    """Read an official QPV layer (the 2024 national file by default).

    The shipped file has coordinates rounded to 5 decimals, which leaves 85 polygons invalid
    (data/PROVENANCE.md); they are repaired at load.
    """
    return read_layer(path, "QPV officiels")


def codes_and_names(layer: gpd.GeoDataFrame, prefix: str = "Z") -> tuple[np.ndarray, np.ndarray]:
    """The layer's quartier codes and names, from the usual column names (or made up)."""
    lower = {c.lower(): c for c in layer.columns}
    code = next((lower[c] for c in CODE_COLUMNS if c in lower), None)
    name = next((lower[c] for c in NAME_COLUMNS if c in lower), None)
    codes = (
        layer[code].astype(str).to_numpy() if code else np.array([f"{prefix}{i + 1:03d}" for i in range(len(layer))])
    )
    names = layer[name].fillna("").astype(str).to_numpy() if name else np.full(len(layer), "", dtype=object)
    return codes, names


def cell_overlaps(squares: np.ndarray, polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (polygon, cell) that overlap, with the share of the cell's square inside the polygon."""
    if len(polygons) == 0 or len(squares) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    polygon, cell = shapely.STRtree(squares).query(polygons, predicate="intersects")
    share = shapely.area(shapely.intersection(squares[cell], polygons[polygon])) / shapely.area(squares[cell])
    return polygon, cell, share


def residents_in(cells: gpd.GeoDataFrame, polygons: np.ndarray | gpd.GeoSeries) -> np.ndarray:
    """Residents of the grid inside each polygon (area-weighted), same CRS as ``cells``."""
    polygons = np.asarray(polygons, dtype=object)
    polygon, cell, share = cell_overlaps(cells.geometry.to_numpy(), polygons)
    weights = cells["population"].to_numpy()[cell] * share
    return np.bincount(polygon, weights=weights, minlength=len(polygons))

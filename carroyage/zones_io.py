"""Reading zone layers: the official QPV file and other polygon layers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely

from .errors import InputError


def read_official(path: str | Path) -> gpd.GeoDataFrame:
    """Read an official QPV layer (the 2024 national file by default), repairing invalid rings.

    The shipped file has coordinates rounded to 5 decimals, which leaves 85 polygons invalid
    (data/PROVENANCE.md); ``shapely.make_valid`` repairs them at load.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        layer = gpd.read_file(path)
    except Exception as exc:  # pyogrio's DataSourceError and friends
        raise InputError(f"{path}: not a readable vector file ({str(exc).splitlines()[0]})") from exc
    if layer.crs is None:
        raise InputError(f"{path}: no coordinate reference system; expected one (EPSG:4326 for GeoJSON)")
    layer["geometry"] = shapely.make_valid(layer.geometry.to_numpy())
    return layer

"""Write and read geographies: GeoPackage (default), GeoParquet, GeoJSON (EPSG:4326).

A GeoPackage holds the layers ``cells``, ``qpv``, any later layers (``quartier_vecu``,
``veille_active``...), a non-spatial ``manifest`` table (``key``, JSON ``value``) and QGIS's
``layer_styles`` table (:mod:`carroyage.publish.styles`), so QGIS opens the layers styled like the
web map. With ``crs`` (``2154``, ``EPSG:2154``) the quartier and zone layers, the ones users
exchange, are written in that CRS (cheap: a few hundred polygons); the cells stay INSPIRE squares
in the grid's CRS (EPSG:3035), written straight from Arrow, so writing France stays fast and the
squares stay squares. Counts of people are written as integers and absent values as NULL. Files are
written under a temporary name and moved into place only when complete, so a failed run leaves no
half-written output. GDAL's own timestamps are pinned to the manifest date, so two runs on the same
inputs give identical files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import shapely
from pyproj import CRS

from .. import labels
from ..engine.grid import Grid, square_wkb
from ..errors import OutputError
from ..files import atomic_path
from ..geography import MANIFEST_LAYER, Geography, read_geography
from .styles import LAYER_STYLES, layer_styles

COUNT_COLUMNS = ("population",)
"""Columns of the quartier and zone layers that count people: written as integers."""


def parse_crs(value: str | int | None) -> int | None:
    """An EPSG code from ``2154``, ``"2154"`` or ``"EPSG:2154"`` (``None`` stays ``None``).

    >>> parse_crs("EPSG:2154"), parse_crs(3035), parse_crs(None)
    (2154, 3035, None)
    """
    if value is None or value == "":
        return None
    text = str(value).strip().upper().removeprefix("EPSG:")
    try:
        code = int(text)
        CRS.from_epsg(code)
    except Exception as exc:  # pyproj's CRSError, or not a number
        raise OutputError(labels.UNKNOWN_CRS.format(value=value)) from exc
    return code


def exchange_layer(layer: gpd.GeoDataFrame, epsg: int | None = None) -> gpd.GeoDataFrame:
    """A quartier or zone layer as GIS users expect it: counts of people as integers, NULL for
    absent values (never ``""``), in ``epsg`` when given."""
    layer = layer.copy()
    for column in COUNT_COLUMNS:
        if column in layer and pd.api.types.is_numeric_dtype(layer[column]):
            layer[column] = layer[column].round(0).astype("Int64")
    for column in layer.columns:
        values = layer[column]
        if column != layer.geometry.name and not pd.api.types.is_numeric_dtype(values):
            layer[column] = values.astype(object).where(values.notna() & (values != ""), None)
    if epsg is not None and layer.crs is not None and layer.crs.to_epsg() != epsg:
        layer = layer.to_crs(epsg)
    return layer


def write_geography(
    geography: Geography,
    path: str | Path,
    geojson: str | Path | None = None,
    crs: str | int | None = None,
    extra: dict[str, gpd.GeoDataFrame] | None = None,
) -> list[Path]:
    """Write a geography; return the files written.

    Parameters
    ----------
    geography : Geography
    path : str or Path
        ``*.gpkg``: one GeoPackage with every layer. ``*.parquet``: one GeoParquet file per layer,
        ``NAME.qpv.parquet``, ``NAME.cells.parquet``... and ``NAME.manifest.json``.
    geojson : str or Path, optional
        Also write the ``qpv`` layer as GeoJSON in EPSG:4326 (RFC 7946), manifest included.
    crs : str or int, optional
        CRS of the quartier and zone layers (``2154`` or ``EPSG:2154``: Lambert-93 for GIS
        users); default the grid's. The cells stay in the grid's CRS.
    extra : dict, optional
        Further layers to write beside (``official``...), in the same CRS.
    """
    path = Path(path)
    epsg = parse_crs(crs)
    # the big cells layer first: GDAL writes into a new file much faster than into an existing one
    small = {"qpv": geography.qpv, **geography.layers, **(extra or {})}
    layers = {"cells": geography, **{name: exchange_layer(layer, epsg) for name, layer in small.items()}}
    try:
        if path.suffix.lower() == ".gpkg":
            written = [_write_gpkg(layers, geography.manifest, path)]
        elif path.suffix.lower() == ".parquet":
            written = _write_parquet(layers, geography.manifest, path)
        else:
            raise OutputError(f"{path}: unknown output format; expected a .gpkg or .parquet name")
        if geojson is not None:
            written.append(write_geojson(geography.qpv, geography.manifest, Path(geojson)))
    except (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"{path}: cannot write ({str(exc).splitlines()[0]})") from exc
    return written


def _write_gpkg(layers: dict[str, gpd.GeoDataFrame], manifest: dict[str, object], path: Path) -> Path:
    with atomic_path(path) as temporary:
        _write_layers(temporary, layers, manifest)
    return path


# The file is a private temporary until it is complete and renamed, so SQLite need not sync to
# disk or keep a rollback journal while writing it: a crash leaves only a temporary to delete.
# 64 KiB pages (SQLite's largest) make writing millions of cells ~10 % faster than 4 KiB pages;
# the file is written once and read many times, so nothing is lost. SQLite's default page cache
# is kept: rows are appended in order, and a larger cache only costs fresh memory (256 MB of it
# made France 0.1-0.2 s slower).
GPKG_WRITE_OPTIONS = {
    "OGR_SQLITE_SYNCHRONOUS": "OFF",
    "OGR_SQLITE_JOURNAL": "OFF",
    "OGR_SQLITE_PRAGMA": "page_size=65536",
}


def write_layers(
    path: str | Path,
    layers: dict[str, gpd.GeoDataFrame],
    manifest: dict[str, object],
    tables: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write any layers (and non-spatial tables) with a manifest into a new GeoPackage, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise OutputError(f"{path}: expected a .gpkg output name")
    with atomic_path(path) as temporary:
        _write_layers(temporary, layers, manifest, tables)
    return path


def _write_layers(
    path: Path,
    layers: dict[str, gpd.GeoDataFrame | Geography],
    manifest: dict[str, object],
    tables: dict[str, pd.DataFrame] | None = None,
) -> None:
    with _gdal_options({**GPKG_WRITE_OPTIONS, "OGR_CURRENT_DATE": f"{manifest['date']}T00:00:00Z"}):
        for name, table in (tables or {}).items():
            pyogrio.write_dataframe(table, path, layer=name, driver="GPKG")
        for name, layer in layers.items():
            if isinstance(layer, Geography):
                pyogrio.write_arrow(
                    cell_batches(layer),
                    path,
                    layer=name,
                    driver="GPKG",
                    geometry_name="geometry",
                    geometry_type="Polygon",
                    crs=f"EPSG:{layer.epsg}",
                )
            else:
                # polygon layers as MultiPolygon, so that empty and mixed layers get a definite type
                kind = {"geometry_type": "MultiPolygon"} if layer.empty else {}
                pyogrio.write_dataframe(
                    layer, path, layer=name, driver="GPKG", use_arrow=True, promote_to_multi=True, **kind
                )
        pyogrio.write_dataframe(_manifest_table(manifest), path, layer=MANIFEST_LAYER, driver="GPKG")
        names = [str(name) for name, _ in pyogrio.list_layers(path)]
        styles = layer_styles(names, str(manifest["date"]))
        if len(styles):
            pyogrio.write_dataframe(styles, path, layer=LAYER_STYLES, driver="GPKG")


@contextmanager
def _gdal_options(options: dict[str, str]) -> Iterator[None]:
    """GDAL options for our own writes only: they are process-wide, so the caller's are restored.

    Without this, a notebook user's next GeoPackage write would silently run without a journal.
    """
    previous = {name: pyogrio.get_gdal_config_option(name) for name in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(previous)


def add_layers(path: str | Path, layers: dict[str, gpd.GeoDataFrame], manifest: dict[str, object]) -> Path:
    """Add or replace layers in an existing GeoPackage and rewrite its manifest, atomically.

    The new layers take the CRS of the file's ``qpv`` layer, so that a geography written in
    Lambert-93 stays in Lambert-93 when ``carroyage zones`` adds to it.
    """
    path = Path(path)
    epsg = _qpv_epsg(path)
    layers = {name: exchange_layer(layer, epsg) for name, layer in layers.items()}
    with atomic_path(path, start_from=path) as temporary:
        _write_layers(temporary, layers, manifest)  # writing a layer name again replaces that layer
    return path


def _qpv_epsg(path: Path) -> int | None:
    try:
        crs = pyogrio.read_info(path, layer="qpv").get("crs")
    except Exception:  # no qpv layer: the layers keep their own CRS
        return None
    return CRS.from_user_input(crs).to_epsg() if crs else None


CELL_BATCH_ROWS = 1 << 16


def cell_batches(geography: Geography) -> pa.RecordBatchReader:
    """The cells layer as a stream of Arrow batches with WKB squares, without GEOS objects.

    Squares are built one batch at a time as GDAL consumes them, rather than 200 MB of them at once
    for France. Rows keep the input's order when it already runs along grid rows or columns, as
    INSEE's files do; otherwise they are put in raster order. GDAL writes a GeoPackage's R-tree far
    faster for spatially ordered rows (its rowid table then fills in order): about 2 s less for
    France.
    """
    table = geography.cell_table
    x, y = table["x"].to_numpy(), table["y"].to_numpy()
    order = Grid.around(x, y, geography.resolution).spatial_order() if len(table) else None
    attributes = pa.Table.from_pandas(table.drop(columns=["x", "y"]), preserve_index=False)
    schema = attributes.schema.append(pa.field("geometry", pa.large_binary()))

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(table), CELL_BATCH_ROWS):
            rows = slice(start, start + CELL_BATCH_ROWS) if order is None else order[start : start + CELL_BATCH_ROWS]
            part = attributes.slice(start, CELL_BATCH_ROWS) if order is None else attributes.take(rows)
            squares = square_wkb(x[rows], y[rows], geography.resolution)
            yield from pa.Table.from_arrays([*part.columns, squares], schema=schema).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())


def _cells_geoparquet(geography: Geography) -> pa.Table:
    """The cells layer with GeoParquet 1.1 metadata, from Arrow: no GEOS object per cell."""
    column: dict[str, object] = {
        "encoding": "WKB",
        "geometry_types": ["Polygon"],
        "crs": CRS.from_epsg(geography.epsg).to_json_dict(),
    }
    x, y = geography.cell_table["x"], geography.cell_table["y"]
    if len(x):
        column["bbox"] = [
            float(x.min()),
            float(y.min()),
            float(x.max() + geography.resolution),
            float(y.max() + geography.resolution),
        ]
    geo = {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}
    return cell_batches(geography).read_all().replace_schema_metadata({"geo": json.dumps(geo)})


def _manifest_table(manifest: dict[str, object]) -> pd.DataFrame:
    table: pd.DataFrame = pd.DataFrame(
        {
            "key": list(manifest),
            "value": [json.dumps(v, ensure_ascii=False, sort_keys=True, default=str) for v in manifest.values()],
        }
    )
    return table


def _write_parquet(layers: dict[str, gpd.GeoDataFrame], manifest: dict[str, object], path: Path) -> list[Path]:
    stem = path.name[: -len(path.suffix)]
    targets = {name: path.with_name(f"{stem}.{name}.parquet") for name in layers}
    targets[MANIFEST_LAYER] = path.with_name(f"{stem}.manifest.json")
    for name, layer in layers.items():
        with atomic_path(targets[name]) as temporary:
            if isinstance(layer, Geography):
                pq.write_table(_cells_geoparquet(layer), temporary)
            else:
                layer.to_parquet(temporary, index=False)
    with atomic_path(targets[MANIFEST_LAYER]) as temporary:
        temporary.write_text(json.dumps(manifest, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return list(targets.values())


def write_geojson(layer: gpd.GeoDataFrame, manifest: dict[str, object], path: Path) -> Path:
    """Write one layer as RFC 7946 GeoJSON (EPSG:4326) with the manifest as a ``carroyage`` member."""
    collection = layer.to_crs(4326).to_geo_dict(drop_id=True)
    collection["carroyage"] = manifest
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(collection, ensure_ascii=False, default=str), encoding="utf-8")
    return path


def most_overlapped(qpv: gpd.GeoDataFrame, official: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """For each quartier, the code and name of the official QPV it overlaps most (``None`` when none)."""
    ours, theirs = qpv.to_crs(3035).geometry.to_numpy(), official.to_crs(3035).geometry.to_numpy()
    mine, other = shapely.STRtree(theirs).query(ours, predicate="intersects")
    overlap = pd.DataFrame(
        {"mine": mine, "other": other, "area": shapely.area(shapely.intersection(ours[mine], theirs[other]))}
    )
    overlap = overlap[overlap["area"] > 0]
    best = overlap.loc[overlap.groupby("mine")["area"].idxmax()] if len(overlap) else overlap
    codes, names = np.full(len(qpv), None, dtype=object), np.full(len(qpv), None, dtype=object)
    codes[best["mine"].to_numpy()] = official["code"].to_numpy()[best["other"].to_numpy()]
    names[best["mine"].to_numpy()] = official["name"].to_numpy()[best["other"].to_numpy()]
    return codes, names


EXCHANGE_EPSG = 2154
"""Lambert-93: the CRS of French GIS work, for the layers users exchange (see docs/publishing.md)."""


def export_geography(
    path: str | Path,
    out: str | Path,
    crs: str | int | None = EXCHANGE_EPSG,
    official: gpd.GeoDataFrame | None = None,
) -> Path:
    """A geography's GeoPackage for GIS users: Lambert-93 (by default), QGIS styles, official names.

    The quartiers get ``code_qp`` and ``lib_qp``, the official QPV each overlaps most (NULL when
    none), and the official QPV that meet the grid are written beside as the ``official`` layer
    (``code_qp``, ``lib_qp``). The file stays a geography: every ``carroyage`` command reads it.
    """
    from ..layers import codes_and_names

    geography = read_geography(path)
    extra: dict[str, gpd.GeoDataFrame] = {}
    if official is not None:
        near = official.to_crs(geography.cells.crs)
        table = geography.cell_table
        extent = shapely.box(
            table["x"].min(),
            table["y"].min(),
            table["x"].max() + geography.resolution,
            table["y"].max() + geography.resolution,
        )
        near = near[near.intersects(extent)]
        codes, names = codes_and_names(near, "O")
        reference = gpd.GeoDataFrame({"code": codes, "name": names}, geometry=near.geometry.to_numpy(), crs=near.crs)
        qpv = geography.qpv.copy()
        if "name" not in qpv:
            qpv.insert(1, "name", "")  # so that readers take the quartier's own (empty) name, not lib_qp
        qpv["code_qp"], qpv["lib_qp"] = most_overlapped(qpv, reference)
        geography = Geography(
            geography.cell_table, qpv, geography.manifest, geography.layers, geography.resolution, geography.epsg
        )
        extra["official"] = gpd.GeoDataFrame(
            {"code_qp": codes, "lib_qp": names}, geometry=near.geometry.to_numpy(), crs=near.crs
        )
    return write_geography(geography, out, crs=crs, extra=extra)[0]

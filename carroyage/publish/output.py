"""Write and read geographies: GeoPackage (default), GeoParquet, GeoJSON (EPSG:4326).

A GeoPackage holds the layers ``cells``, ``qpv``, any later layers (``quartier_vecu``,
``veille_active``...) and a non-spatial ``manifest`` table (``key``, JSON ``value``). Files are
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
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
from pyproj import CRS

from ..engine.grid import Grid, square_wkb
from ..errors import OutputError
from ..files import atomic_path
from ..geography import MANIFEST_LAYER, Geography


def write_geography(geography: Geography, path: str | Path, geojson: str | Path | None = None) -> list[Path]:
    """Write a geography; return the files written.

    Parameters
    ----------
    geography : Geography
    path : str or Path
        ``*.gpkg``: one GeoPackage with every layer. ``*.parquet``: one GeoParquet file per layer,
        ``NAME.qpv.parquet``, ``NAME.cells.parquet``... and ``NAME.manifest.json``.
    geojson : str or Path, optional
        Also write the ``qpv`` layer as GeoJSON in EPSG:4326 (RFC 7946), manifest included.
    """
    path = Path(path)
    # the big cells layer first: GDAL writes into a new file much faster than into an existing one
    layers = {"cells": geography, "qpv": geography.qpv, **geography.layers}
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
    """Add or replace layers in an existing GeoPackage and rewrite its manifest, atomically."""
    path = Path(path)
    with atomic_path(path, start_from=path) as temporary:
        _write_layers(temporary, layers, manifest)  # writing a layer name again replaces that layer
    return path


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

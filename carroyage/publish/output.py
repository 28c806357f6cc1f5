"""Write and read geographies: GeoPackage (default), GeoParquet, GeoJSON (EPSG:4326).

A GeoPackage holds the layers ``cells``, ``qpv``, any later layers (``quartier_vecu``,
``veille_active``...), a non-spatial ``manifest`` table (``key``, JSON ``value``) and QGIS's
``layer_styles`` table (:mod:`carroyage.publish.styles`), so QGIS opens the layers styled like the
web map. Every layer of a file is in one CRS: Lambert-93 (EPSG:2154) for a metropolitan grid, the
grid's own CRS overseas, or the ``crs`` asked for (:func:`output_epsg`); the computation stays in
the grid's CRS, where INSPIRE cell ids are defined. Cells are reprojected corner by corner, each
corner shared by neighbouring cells transformed once, and streamed to GDAL as Arrow batches of WKB,
so writing France stays fast. Counts of people are written as integers and absent values as NULL.
Files are written under a temporary name and moved into place only when complete, so a failed run
leaves no half-written output. GDAL's own timestamps are pinned to the manifest date, so two runs
on the same inputs give identical files.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyogrio
import shapely
from pyproj import CRS, Transformer

from .. import labels
from ..engine.grid import Grid, square_wkb
from ..errors import CarroyageWarning, InputError, OutputError
from ..files import atomic_path
from ..geography import MANIFEST_LAYER, Geography, read_geography
from ..settings import METROPOLITAN_OUTPUT_EPSG
from .styles import LAYER_STYLES, layer_styles

COUNT_COLUMNS = ("population", "residents_gained", "residents_lost")
"""Columns of the quartier, zone and comparison layers that count people: written as integers."""
METROPOLITAN_GRID_EPSG = 3035
"""INSEE's metropolitan grid (ETRS89-LAEA): its files are written in Lambert-93 by default."""
GEOMETRY_COLUMN = "geometry"
"""The geometry column of every layer written (QGIS finds a layer's style by it)."""


def parse_crs(value: str | int | None) -> int | None:
    """An EPSG code from ``2154``, ``"2154"`` or ``"EPSG:2154"`` (``None`` stays ``None``).

    >>> parse_crs("EPSG:2154"), parse_crs(3035), parse_crs(None)
    (2154, 3035, None)
    >>> parse_crs("EPSG:99999")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    carroyage.errors.InputError: EPSG:99999 : système de coordonnées inconnu ; attendu un code EPSG...
    """
    if value is None or value == "":
        return None
    text = str(value).strip().upper().removeprefix("EPSG:")
    try:
        code = int(text)
        CRS.from_epsg(code)
    except Exception as exc:  # pyproj's CRSError, or not a number
        raise InputError(labels.UNKNOWN_CRS.format(value=value)) from exc
    return code


def output_epsg(grid_epsg: int, crs: str | int | None = None) -> int:
    """The CRS a file is written in: ``crs`` when given, else the default for the grid.

    Lambert-93 (:data:`~carroyage.settings.METROPOLITAN_OUTPUT_EPSG`) for a metropolitan grid
    (EPSG:3035), the grid's own CRS otherwise (INSEE builds the overseas grids in their local CRS).

    >>> output_epsg(3035), output_epsg(2975), output_epsg(3035, "EPSG:3035")
    (2154, 2975, 3035)
    """
    chosen = parse_crs(crs)
    if chosen is not None:
        return chosen
    return METROPOLITAN_OUTPUT_EPSG if grid_epsg == METROPOLITAN_GRID_EPSG else grid_epsg


def exchange_layer(
    layer: gpd.GeoDataFrame, epsg: int | None = None, name: str = "", path: str | Path = ""
) -> gpd.GeoDataFrame:
    """A quartier or zone layer as GIS users expect it: counts of people as integers, NULL for
    absent values (never ``""`` or NaN), in ``epsg`` when given (``name`` and ``path`` name the
    layer and file if it cannot be projected there)."""
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
        if len(layer) and not np.isfinite(layer.total_bounds).all():
            raise OutputError(labels.OUTSIDE_CRS.format(path=path, layer=name, epsg=epsg))
    return layer


GEOGRAPHY_SUFFIXES = (".gpkg", ".parquet")
"""The outputs :func:`write_geography` writes: one GeoPackage, or GeoParquet files."""


def check_suffix(path: Path, suffixes: tuple[str, ...] = GEOGRAPHY_SUFFIXES) -> None:
    """Refuse an output name with none of ``suffixes``: commands call it before any work.

    >>> check_suffix(Path("z.shp"))
    Traceback (most recent call last):
    ...
    carroyage.errors.OutputError: z.shp : format de sortie inconnu ; attendu un nom en .gpkg ou .parquet
    """
    if path.suffix.lower() not in suffixes:
        raise OutputError(labels.OUTPUT_FORMAT.format(path=path, suffixes=labels.one_of(suffixes)))


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
        CRS of every layer (``2154`` or ``EPSG:2154``); default :func:`output_epsg` of the grid:
        Lambert-93 for a metropolitan grid, the grid's own CRS overseas.
    extra : dict, optional
        Further layers to write beside (``official``...), in the same CRS.
    """
    path = Path(path)
    epsg = output_epsg(geography.epsg, crs)
    warn_if_elsewhere(geography, epsg, path)
    try:
        # the big cells layer first: GDAL writes into a new file much faster than into an existing one
        small = {"qpv": geography.qpv, **geography.layers, **(extra or {})}
        layers = {
            "cells": geography,
            **{name: exchange_layer(layer, epsg, name, path) for name, layer in small.items()},
        }
        check_suffix(path)
        if path.suffix.lower() == ".gpkg":
            written = [_write_gpkg(layers, geography.manifest, path, epsg)]
        else:
            written = _write_parquet(layers, geography.manifest, path, epsg)
        if geojson is not None:
            written.append(write_geojson(geography.qpv, geography.manifest, Path(geojson)))
    except OutsideCrs as exc:
        raise OutputError(labels.OUTSIDE_CRS.format(path=path, layer="cells", epsg=exc.epsg)) from exc
    except (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        if isinstance(exc, OutputError):
            raise
        if isinstance(exc, OSError) and exc.errno:  # the file system's refusal, in French
            reason = labels.os_reason(exc)
        else:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OutputError(labels.CANNOT_WRITE.format(path=path, reason=reason)) from exc
    return written


def warn_if_elsewhere(geography: Geography, epsg: int, path: str | Path) -> None:
    """Warn when the output CRS is meant for another part of the world than the grid (a likely typo)."""
    area = CRS.from_epsg(epsg).area_of_use
    table = geography.cell_table
    if area is None or not len(table):
        return
    to_degrees = Transformer.from_crs(geography.epsg, 4326, always_xy=True)
    west, south, east, north = to_degrees.transform_bounds(
        float(table["x"].min()),
        float(table["y"].min()),
        float(table["x"].max() + geography.resolution),
        float(table["y"].max() + geography.resolution),
    )
    if east < area.west or west > area.east or north < area.south or south > area.north:
        message = labels.CRS_ELSEWHERE.format(path=path, epsg=epsg, name=CRS.from_epsg(epsg).name)
        warnings.warn(message, CarroyageWarning, stacklevel=3)


class OutsideCrs(ValueError):
    """Cells that the output CRS cannot hold (internal: the writer turns it into an OutputError)."""

    def __init__(self, epsg: int) -> None:
        super().__init__(epsg)
        self.epsg = epsg


def _write_gpkg(
    layers: dict[str, gpd.GeoDataFrame | Geography], manifest: dict[str, object], path: Path, epsg: int
) -> Path:
    with atomic_path(path) as temporary:
        _write_layers(temporary, layers, manifest, epsg=epsg)
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
    crs: str | int | None = None,
) -> Path:
    """Write any layers (and non-spatial tables) with a manifest into a new GeoPackage, atomically.

    With ``crs``, the layers are written as GIS users exchange them (:func:`exchange_layer`:
    integer counts of people, NULL for absent values) in that CRS.
    """
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise OutputError(labels.OUTPUT_FORMAT.format(path=path, suffixes=".gpkg"))
    epsg = parse_crs(crs)
    if epsg is not None:
        layers = {name: exchange_layer(layer, epsg, name, path) for name, layer in layers.items()}
    with atomic_path(path) as temporary:
        _write_layers(temporary, dict(layers), manifest, tables)
    return path


def _write_layers(
    path: Path,
    layers: dict[str, gpd.GeoDataFrame | Geography],
    manifest: dict[str, object],
    tables: dict[str, pd.DataFrame] | None = None,
    epsg: int | None = None,
) -> None:
    """Write ``layers`` into ``path`` (a :class:`Geography` stands for its cells, in ``epsg``)."""
    with _gdal_options({**GPKG_WRITE_OPTIONS, "OGR_CURRENT_DATE": f"{manifest['date']}T00:00:00Z"}):
        for name, table in (tables or {}).items():
            pyogrio.write_dataframe(table, path, layer=name, driver="GPKG")
        for name, layer in layers.items():
            if isinstance(layer, Geography):
                target = epsg or layer.epsg
                pyogrio.write_arrow(
                    cell_batches(layer, target),
                    path,
                    layer=name,
                    driver="GPKG",
                    geometry_name=GEOMETRY_COLUMN,
                    geometry_type="Polygon",
                    crs=f"EPSG:{target}",
                    layer_options={"GEOMETRY_NAME": GEOMETRY_COLUMN},
                )
            else:
                # polygon layers as MultiPolygon, so that empty and mixed layers get a definite type
                kind = {"geometry_type": "MultiPolygon"} if layer.empty else {}
                pyogrio.write_dataframe(
                    layer,
                    path,
                    layer=name,
                    driver="GPKG",
                    use_arrow=True,
                    promote_to_multi=True,
                    layer_options={"GEOMETRY_NAME": GEOMETRY_COLUMN},
                    **kind,
                )
        pyogrio.write_dataframe(_manifest_table(manifest), path, layer=MANIFEST_LAYER, driver="GPKG")
        spatial = {
            str(name): str(pyogrio.read_info(path, layer=name)["geometry_name"] or GEOMETRY_COLUMN)
            for name, kind in pyogrio.list_layers(path)
            if kind is not None
        }
        styles = layer_styles(spatial, str(manifest["date"]))
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


def add_layers(
    path: str | Path, layers: dict[str, gpd.GeoDataFrame], manifest: dict[str, object], crs: str | int | None = None
) -> Path:
    """Add or replace layers in an existing GeoPackage and rewrite its manifest, atomically.

    The new layers take ``crs``, by default the CRS of the file's ``qpv`` layer (:func:`file_epsg`),
    so that a geography written in Lambert-93 stays in Lambert-93 when ``carroyage zones`` adds to it.
    """
    path = Path(path)
    epsg = parse_crs(crs) or file_epsg(path)
    layers = {name: exchange_layer(layer, epsg, name, path) for name, layer in layers.items()}
    with atomic_path(path, start_from=path) as temporary:
        _write_layers(temporary, dict(layers), manifest)  # writing a layer name again replaces that layer
    return path


def file_epsg(path: str | Path) -> int | None:
    """The EPSG code of a GeoPackage's ``qpv`` layer (``None`` without one, or without a code)."""
    try:
        crs = pyogrio.read_info(path, layer="qpv").get("crs")
    except Exception:  # no qpv layer: the layers keep their own CRS
        return None
    return CRS.from_user_input(crs).to_epsg() if crs else None


CELL_BATCH_ROWS = 1 << 16


def cell_batches(
    geography: Geography, epsg: int | None = None, bounds: list[np.ndarray] | None = None
) -> pa.RecordBatchReader:
    """The cells layer as a stream of Arrow batches with WKB polygons, without GEOS objects.

    Squares are built one batch at a time as GDAL consumes them, rather than 200 MB of them at once
    for France; in another CRS than the grid's (``epsg``) their corners are reprojected batch by
    batch (:func:`projected_squares`). Rows keep the input's order when it already runs along grid
    rows or columns, as INSEE's files do; otherwise they are put in raster order. GDAL writes a
    GeoPackage's R-tree far faster for spatially ordered rows (its rowid table then fills in
    order): about 2 s less for France. Absent text (``qpv`` outside every quartier) is NULL.
    ``bounds``, when given, receives each batch's ``[west, south, east, north]``.
    """
    table = geography.cell_table
    x, y = table["x"].to_numpy(), table["y"].to_numpy()
    order = Grid.around(x, y, geography.resolution).spatial_order() if len(table) else None
    attributes = _absent_as_null(pa.Table.from_pandas(table.drop(columns=["x", "y"]), preserve_index=False))
    schema = attributes.schema.append(pa.field(GEOMETRY_COLUMN, pa.large_binary()))
    transformer = None
    if epsg is not None and epsg != geography.epsg:
        transformer = Transformer.from_crs(geography.epsg, epsg, always_xy=True)

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(table), CELL_BATCH_ROWS):
            rows = slice(start, start + CELL_BATCH_ROWS) if order is None else order[start : start + CELL_BATCH_ROWS]
            part = attributes.slice(start, CELL_BATCH_ROWS) if order is None else attributes.take(rows)
            if transformer is None:
                squares = square_wkb(x[rows], y[rows], geography.resolution)
                if bounds is not None:
                    west, south = x[rows].min(), y[rows].min()
                    east, north = x[rows].max() + geography.resolution, y[rows].max() + geography.resolution
                    bounds.append(np.array([west, south, east, north], dtype=float))
            else:
                squares = projected_squares(x[rows], y[rows], geography.resolution, transformer, bounds)
            yield from pa.Table.from_arrays([*part.columns, squares], schema=schema).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())


def _absent_as_null(table: pa.Table) -> pa.Table:
    """Empty strings as NULL (NaN numbers are already NULL once in Arrow)."""
    for index, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            column = table.column(index)
            blank = pc.equal(column, "")
            if pc.any(blank).as_py():
                table = table.set_column(index, field, pc.if_else(blank, pa.scalar(None, field.type), column))
    return table


def projected_squares(
    x: np.ndarray, y: np.ndarray, size: float, transformer: Transformer, bounds: list[np.ndarray] | None = None
) -> pa.Array:
    """WKB polygons of the cells with lower-left corners ``x, y``, reprojected by ``transformer``.

    Neighbouring cells share corners (about 2.3 distinct corners per cell for France instead of
    4), so each distinct corner of the batch is transformed once; shared corners stay identical
    and the cells still tile without gaps or overlaps. Raises :class:`OutsideCrs` if a corner has
    no finite position in the target CRS.
    """
    x, y = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    if not len(x):
        return _ring_wkb(np.zeros((0, 4)), np.zeros((0, 4)))
    step = int(size)
    west, south = int(x.min()), int(y.min())
    col, row = (x - west) // step, (y - south) // step
    width = int(col.max()) + 2
    base = row * width + col
    keys = np.stack([base, base + 1, base + width + 1, base + width], axis=1).ravel()  # ll, lr, ur, ul
    corner, inverse = _distinct(keys, width * (int(row.max()) + 2))
    corner_x = (west + (corner % width) * step).astype(np.float64)
    corner_y = (south + (corner // width) * step).astype(np.float64)
    px, py = (np.asarray(values) for values in transformer.transform(corner_x, corner_y))
    if not (np.isfinite(px).all() and np.isfinite(py).all()):
        target = transformer.target_crs
        raise OutsideCrs(int((target.to_epsg() if target is not None else None) or 0))
    if bounds is not None:
        bounds.append(np.array([px.min(), py.min(), px.max(), py.max()]))
    ring = inverse.reshape(-1, 4)
    return _ring_wkb(px[ring], py[ring])


def _distinct(keys: np.ndarray, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys in ``[0, frame)``, sorted, and each key's index among them.

    A batch of cells in scan order covers a compact band of the grid, so marking its corners in a
    frame-sized table is linear and several times faster than sorting them (``np.unique``), which
    is kept for batches spread over a large frame.
    """
    if frame > 16 * len(keys):
        distinct, inverse = np.unique(keys, return_inverse=True)
        return distinct, inverse.ravel()
    seen = np.zeros(frame, dtype=bool)
    seen[keys] = True
    distinct = np.flatnonzero(seen)
    index = np.empty(frame, dtype=np.int64)
    index[distinct] = np.arange(len(distinct))
    return distinct, index[keys]


_RING_HEADER = np.frombuffer(
    b"\x01" + (3).to_bytes(4, "little") + (1).to_bytes(4, "little") + (5).to_bytes(4, "little"), np.uint8
)
"""Little-endian WKB polygon of one ring of five points (the fourth corner closes it)."""


def _ring_wkb(xs: np.ndarray, ys: np.ndarray) -> pa.Array:
    """WKB quadrilaterals from their four corners (``n × 4`` arrays, anticlockwise), built in numpy."""
    record = np.empty(len(xs), dtype=[("header", np.uint8, len(_RING_HEADER)), ("ring", "<f8", (10,))])
    record["header"] = _RING_HEADER
    ring = record["ring"]
    ring[:, 0:8:2], ring[:, 1:8:2] = xs, ys
    ring[:, 8], ring[:, 9] = xs[:, 0], ys[:, 0]
    offsets = np.arange(len(xs) + 1, dtype=np.int64) * record.dtype.itemsize
    return pa.Array.from_buffers(pa.large_binary(), len(xs), [None, pa.py_buffer(offsets), pa.py_buffer(record)])


def _cells_geoparquet(geography: Geography, epsg: int) -> pa.Table:
    """The cells layer with GeoParquet 1.1 metadata, from Arrow: no GEOS object per cell."""
    bounds: list[np.ndarray] = []
    table = cell_batches(geography, epsg, bounds).read_all()
    column: dict[str, object] = {
        "encoding": "WKB",
        "geometry_types": ["Polygon"],
        "crs": CRS.from_epsg(epsg).to_json_dict(),
    }
    if bounds:
        every = np.vstack(bounds)
        column["bbox"] = [*every[:, :2].min(axis=0).tolist(), *every[:, 2:].max(axis=0).tolist()]
    geo = {"version": "1.1.0", "primary_column": GEOMETRY_COLUMN, "columns": {GEOMETRY_COLUMN: column}}
    return table.replace_schema_metadata({"geo": json.dumps(geo)})


def _manifest_table(manifest: dict[str, object]) -> pd.DataFrame:
    table: pd.DataFrame = pd.DataFrame(
        {
            "key": list(manifest),
            "value": [json.dumps(v, ensure_ascii=False, sort_keys=True, default=str) for v in manifest.values()],
        }
    )
    return table


def _write_parquet(
    layers: dict[str, gpd.GeoDataFrame | Geography], manifest: dict[str, object], path: Path, epsg: int
) -> list[Path]:
    stem = path.name[: -len(path.suffix)]
    targets = {name: path.with_name(f"{stem}.{name}.parquet") for name in layers}
    targets[MANIFEST_LAYER] = path.with_name(f"{stem}.manifest.json")
    for name, layer in layers.items():
        with atomic_path(targets[name]) as temporary:
            if isinstance(layer, Geography):
                pq.write_table(_cells_geoparquet(layer, epsg), temporary)
            else:
                layer.to_parquet(temporary, index=False)
    with atomic_path(targets[MANIFEST_LAYER]) as temporary:
        temporary.write_text(json.dumps(manifest, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return list(targets.values())


def write_geojson(layer: gpd.GeoDataFrame, manifest: dict[str, object], path: Path) -> Path:
    """Write one layer as RFC 7946 GeoJSON (EPSG:4326) with the manifest as a ``carroyage`` member.

    As in the GeoPackage, counts of people are integers and absent values ``null``.
    """
    collection = exchange_layer(layer, 4326, path.name, path).to_geo_dict(drop_id=True)
    collection["carroyage"] = manifest
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(collection, ensure_ascii=False, default=str), encoding="utf-8")
    return path


def most_overlapped(
    qpv: gpd.GeoDataFrame, official: gpd.GeoDataFrame, min_share: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """For each quartier, the code and name of the official QPV it overlaps most (``None`` when none).

    ``min_share``: only overlaps of at least this share of the smaller polygon count (as
    ``carroyage compare`` matches quartiers); by default any overlap.
    """
    ours, theirs = qpv.to_crs(3035).geometry.to_numpy(), official.to_crs(3035).geometry.to_numpy()
    mine, other = shapely.STRtree(theirs).query(ours, predicate="intersects")
    area = shapely.area(shapely.intersection(ours[mine], theirs[other]))
    smaller = np.minimum(shapely.area(ours[mine]), shapely.area(theirs[other]))
    overlap = pd.DataFrame({"mine": mine, "other": other, "area": area})
    overlap = overlap[(area > 0) & (area >= min_share * smaller)]
    best = overlap.loc[overlap.groupby("mine")["area"].idxmax()] if len(overlap) else overlap
    codes, names = np.full(len(qpv), None, dtype=object), np.full(len(qpv), None, dtype=object)
    codes[best["mine"].to_numpy()] = official["code"].to_numpy()[best["other"].to_numpy()]
    names[best["mine"].to_numpy()] = official["name"].to_numpy()[best["other"].to_numpy()]
    return codes, names


def export_geography(
    path: str | Path,
    out: str | Path,
    crs: str | int | None = None,
    official: gpd.GeoDataFrame | None = None,
) -> Path:
    """A geography's GeoPackage for GIS users: QGIS styles, official names, in ``crs``.

    ``crs`` defaults to :func:`output_epsg` of the grid (Lambert-93 for a metropolitan grid).

    The quartiers get ``code_qp`` and ``lib_qp``, the official QPV each overlaps most (NULL when
    none), and the official QPV that meet the grid are written beside as the ``official`` layer
    (``code_qp``, ``lib_qp``). The file stays a geography: every ``carroyage`` command reads it.
    """
    from ..layers import codes_and_names

    geography = read_geography(path)
    extra: dict[str, gpd.GeoDataFrame] = {}
    if official is not None:
        near = official.to_crs(geography.epsg)
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

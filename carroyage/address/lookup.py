"""Points → zones: in, out or uncertain, with the signed distance to each zone's boundary.

Zones are measured in a metric CRS of their territory (Lambert-93 in metropolitan France, the
local UTM projections overseas), so distances are metres on the ground. All points are located at
once: one ``STRtree`` query for candidates, vectorised point-in-polygon on prepared polygons and
distances only for the points close to a zone.

``distance_m`` is negative inside a zone and positive outside. A point is ``in`` when it lies in a
zone farther than the tolerance from its boundary, ``uncertain`` when it lies within the tolerance
of a boundary (or its geocoding is weak), ``out`` otherwise.

Neither pandas nor geopandas is imported to locate points in zones read from the cache (see
:func:`load_zones`): a batch of coordinates starts in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely

from .. import __version__
from ..files import atomic_path, output_set
from ..manifest import sha256
from ..settings import AROUND_RADIUS_M, NEAREST_WITHIN_M

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

# (name, EPSG, lon/lat bounds) of the territories QPVs lie in
TERRITORIES = (
    ("métropole", 2154, (-5.8, 41.0, 10.0, 51.6)),
    ("Guadeloupe", 5490, (-62.0, 15.8, -60.8, 16.6)),
    ("Martinique", 5490, (-61.3, 14.3, -60.7, 14.95)),
    ("Guyane", 2972, (-54.7, 2.0, -51.5, 6.0)),
    ("La Réunion", 2975, (55.1, -21.5, 56.0, -20.8)),
    ("Mayotte", 4471, (44.9, -13.1, 45.4, -12.5)),
    ("Saint-Martin", 5490, (-63.2, 18.0, -62.9, 18.15)),
    ("Polynésie française", 3297, (-152.0, -18.0, -148.0, -16.0)),
)
GEOGRAPHY_LAYERS = {"qpv": "qpv", "quartier_vecu": "quartier_vecu", "veille_active": "veille_active"}
FIELDS = ("type", "code", "name", "source")
"""What is known of each zone (one text each)."""
STATUS = ("in", "out", "uncertain")
"""The status of a located point, by code (:meth:`Located.status_codes`)."""

_NUMPY_TYPES = {pa.int8(): np.int8, pa.int32(): np.int32, pa.int64(): np.int64, pa.float64(): np.float64}


# Arrow's own conversions (pa.array, to_numpy, Python scalars given to compute functions) first
# import pandas, 0.3 s of a batch of coordinates that never needs it: these go through buffers.
def numpy_of(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numpy copy of an Arrow array of numbers or booleans, read from its buffers.

    >>> numpy_of(arrow_of(np.array([1.5, 2.0]))).tolist(), numpy_of(arrow_of(np.array([True, False]))).tolist()
    ([1.5, 2.0], [True, False])
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
    if array.null_count or (array.type != pa.bool_() and array.type not in _NUMPY_TYPES):
        return np.asarray(array.to_numpy(zero_copy_only=False))  # nulls or another type: Arrow's way
    start, stop = array.offset, array.offset + len(array)
    data = array.buffers()[1]
    if data is None or not len(array):
        return np.zeros(0, dtype=bool if array.type == pa.bool_() else _NUMPY_TYPES[array.type])
    if array.type == pa.bool_():
        return np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[start:stop].astype(bool)
    return np.array(np.frombuffer(data, _NUMPY_TYPES[array.type])[start:stop])


def arrow_of(values: np.ndarray) -> pa.Array:
    """An Arrow array of a numpy array of numbers or booleans (no null), built on its buffer."""
    values = np.ascontiguousarray(values)
    if values.dtype == bool:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def strings_of(values: list[str] | tuple[str, ...]) -> pa.Array:
    """An Arrow text array of Python strings, built from their UTF-8 bytes.

    >>> strings_of(["a", "", "é"]).to_pylist()
    ['a', '', 'é']
    """
    encoded = [value.encode("utf-8") for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    return pa.Array.from_buffers(
        pa.large_string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    ).cast(pa.string())


def string_scalar(value: str) -> pa.Scalar:
    """An Arrow text scalar (a Python string given to a compute function is converted by pandas' shim)."""
    return strings_of([value])[0]


COARSE = 250.0  # metres: side of the bitmap cells that rule out points far from every zone
LONLAT_CELL = 0.01  # degrees: the same before projection
ORDER_CELL_M = 2000.0  # metres: points are searched for cell by cell of this side
VERTEX_SPACING_M = 25.0  # metres between the boundary vertices the nearest zone is looked up by


def prefetch_nearest() -> threading.Thread:
    """Start importing the nearest search's library (scipy, ~0.3 s) in a thread, now.

    The first chunk of a file is read, parsed and located meanwhile, mostly in libraries that
    release the interpreter lock; :meth:`Territory.vertices` then finds it imported. The thread
    is not a daemon: an interpreter never exits in the middle of an import.
    """
    thread = threading.Thread(target=importlib.import_module, args=("scipy.spatial",), name="carroyage-prefetch")
    thread.start()
    return thread


@dataclass
class _Bitmap:
    """Cells (of side ``cell``, in the coordinates' unit) that boxes grown by a margin touch."""

    bitmap: np.ndarray
    west: float
    south: float
    cell: float

    @classmethod
    def of(cls, boxes: np.ndarray, dx: float | np.ndarray, dy: float | np.ndarray, cell: float) -> _Bitmap:
        """From ``(xmin, ymin, xmax, ymax)`` boxes grown by ``dx`` and ``dy`` (each, or one for all)."""
        x0, y0 = boxes[:, 0] - dx, boxes[:, 1] - dy
        x1, y1 = boxes[:, 2] + dx, boxes[:, 3] + dy
        west, south = float(x0.min()), float(y0.min())
        col0, col1 = ((x0 - west) // cell).astype(int), ((x1 - west) // cell).astype(int)
        row0, row1 = ((y0 - south) // cell).astype(int), ((y1 - south) // cell).astype(int)
        bitmap = np.zeros((row1.max() + 1, col1.max() + 1), dtype=bool)
        for r0, r1, c0, c1 in zip(row0, row1, col0, col1, strict=True):  # one slice per box (zone), not per point
            bitmap[r0 : r1 + 1, c0 : c1 + 1] = True
        return cls(bitmap, west, south, cell)

    def hits(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Which points fall in a marked cell."""
        col = np.floor((x - self.west) / self.cell)
        row = np.floor((y - self.south) / self.cell)
        rows, cols = self.bitmap.shape
        inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
        hit = np.zeros(len(x), dtype=bool)
        hit[inside] = self.bitmap[row[inside].astype(int), col[inside].astype(int)]
        return hit


@dataclass
class _Vertices:
    """A territory's boundary vertices, every :data:`VERTEX_SPACING_M` metres, and their k-d tree."""

    part: np.ndarray  # the zone part of each vertex
    tree: Any  # scipy.spatial.cKDTree
    coords: np.ndarray
    before: np.ndarray  # the vertex before each one on its line (around a closed ring; itself at an open end)
    after: np.ndarray


@dataclass
class Territory:
    """The zones of one territory, projected, exploded and indexed."""

    epsg: int
    zone: np.ndarray  # zone row of each polygon part
    parts: np.ndarray  # polygons, prepared
    boundaries: np.ndarray
    tree: shapely.STRtree
    lonlat_bounds: tuple[float, float, float, float]
    lonlat_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # of its zones, WGS84
    _near: dict[float, _Bitmap] = field(default_factory=dict)
    _reach: dict[float, _Bitmap] = field(default_factory=dict)
    _vertices: _Vertices | None = None
    geos: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    """Held around every GEOS call on the parts, boundaries and tree: GEOS builds a prepared
    geometry's indexes on first use without a lock (GEOS issue 825), and two threads doing so at
    once corrupt the heap (the service answers address lookups on several threads)."""

    @cached_property
    def to_metric(self) -> pyproj.Transformer:
        """WGS84 → the territory's CRS (made when first needed: most files touch one territory)."""
        return pyproj.Transformer.from_crs(4326, self.epsg, always_xy=True)

    def vertices(self) -> _Vertices:
        """The parts' boundary vertices and their k-d tree (built when first needed)."""
        if self._vertices is None:
            from scipy.spatial import cKDTree

            dense = shapely.segmentize(self.boundaries, VERTEX_SPACING_M)
            lines, part = shapely.get_parts(dense, return_index=True)
            coords, line = shapely.get_coordinates(lines, return_index=True)
            before, after = _ring_neighbours(coords, line)
            self._vertices = _Vertices(part[line], cKDTree(coords), coords, before, after)
        return self._vertices

    def near(self, x: np.ndarray, y: np.ndarray, tolerance: float) -> np.ndarray:
        """Which points (metric) may lie within ``tolerance`` of a zone: a bitmap of the parts' extents.

        Most points of a national file are far from every QPV; they are ruled out with array
        indexing, before any geometry is built for them.
        """
        if tolerance not in self._near:
            cell = max(COARSE, tolerance / 4)  # a wide margin gains nothing from fine cells
            self._near[tolerance] = _Bitmap.of(shapely.bounds(self.parts), tolerance, tolerance, cell)
        return self._near[tolerance].hits(x, y)

    def reachable(self, lon: np.ndarray, lat: np.ndarray, metres: float) -> np.ndarray:
        """Which points (WGS84) may lie within ``metres`` of a zone, told before they are projected.

        The zones' lon/lat boxes are grown by ``metres`` turned into degrees with room to spare
        (a degree of latitude is at least 110.5 km, one of longitude that times the cosine of the
        box's farthest latitude; 10 % more for the projection's scale), so that no point within
        reach is left out: a point ruled out here is farther than ``metres`` from every zone.
        """
        if metres not in self._reach:
            boxes = self.lonlat_boxes
            dlat = 1.1 * metres / 110_500 + 1e-6
            farthest = np.minimum(np.maximum(np.abs(boxes[:, 1]), np.abs(boxes[:, 3])) + dlat, 89.0)
            dlon = 1.1 * metres / (110_500 * np.cos(np.radians(farthest))) + 1e-6
            self._reach[metres] = _Bitmap.of(boxes, dlon, dlat, LONLAT_CELL)
        return self._reach[metres].hits(lon, lat)

    def nearest_boundary(self, x: np.ndarray, y: np.ndarray, within: float) -> tuple[np.ndarray, np.ndarray]:
        """The zone with the nearest boundary to each point within ``within`` metres, and its
        distance (-1 and NaN: none); see :meth:`ZoneSet.nearest_many`."""
        zone = np.full(len(x), -1, dtype=np.int64)
        distance = np.full(len(x), np.nan)
        close = np.flatnonzero(self.near(x, y, within))
        if not len(close):
            return zone, distance
        vertices = self.vertices()
        close = close[_spatial_order(x[close], y[close])]  # neighbours in turn: the tree stays in cache, ~4x faster
        _, vertex = vertices.tree.query(
            np.c_[x[close], y[close]], distance_upper_bound=within + VERTEX_SPACING_M, workers=-1
        )
        hit = vertex < len(vertices.part)
        close, vertex = close[hit], vertex[hit]
        px, py, coords = x[close], y[close], vertices.coords
        # exact distance to the boundary: the two segments on either side of the nearest vertex
        metres = np.hypot(coords[vertex, 0] - px, coords[vertex, 1] - py)
        for neighbour in (vertices.before[vertex], vertices.after[vertex]):
            metres = np.minimum(metres, _to_segment(px, py, coords[vertex], coords[neighbour]))
        keep = metres <= within
        zone[close[keep]] = self.zone[vertices.part[vertex[keep]]]
        distance[close[keep]] = metres[keep]
        return zone, distance


@dataclass
class _Projected:
    """The points a territory looks at (``members``), in its metric CRS."""

    territory: Territory
    members: np.ndarray
    x: np.ndarray
    y: np.ndarray


@dataclass
class ZoneSet:
    """Zones of several types (``qpv``, ``quartier_vecu``, ``veille_active``...) ready for lookups.

    Attributes
    ----------
    fields : dict of str to ndarray
        One text per zone for each of :data:`FIELDS`: ``type``, ``code``, ``name``, ``source``.
    dropped : list of str
        Zones left out because their geometry has no area (e.g. collapsed by coordinate rounding).
    """

    fields: dict[str, np.ndarray]
    territories: list[Territory]
    shapes: np.ndarray  # WGS84 geometry of each zone
    dropped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        boxes = shapely.bounds(self.shapes)
        for territory in self.territories:
            territory.lonlat_boxes = boxes[np.unique(territory.zone)]

    @cached_property
    def table(self) -> pd.DataFrame:
        """The zones as a DataFrame: one row per zone, columns ``type``, ``code``, ``name``, ``source``."""
        import pandas as pd

        frame: pd.DataFrame = pd.DataFrame({c: self.fields[c] for c in FIELDS})
        return frame

    @classmethod
    def from_layers(cls, layers: list[tuple[str, gpd.GeoDataFrame, str]]) -> ZoneSet:
        """Build from ``(type, layer, source)`` triples."""
        from ..layers import codes_and_names

        columns: dict[str, list[np.ndarray]] = {c: [np.zeros(0, dtype=object)] for c in FIELDS}
        pieces: list[np.ndarray] = [np.zeros(0, dtype=object)]
        for kind, layer, source in layers:
            codes, names = codes_and_names(layer, "Z")
            for name, values in (("type", [kind] * len(codes)), ("code", codes), ("name", names)):
                columns[name].append(np.array([str(v) for v in values], dtype=object))
            columns["source"].append(np.array([source] * len(codes), dtype=object))
            pieces.append(layer.to_crs(4326).geometry.to_numpy())
        fields = {c: np.concatenate(columns[c]) for c in FIELDS}
        shapes = np.concatenate(pieces)
        empty = shapely.is_empty(shapes) | (shapely.area(shapes) == 0)
        dropped = [f"{t} {c}" for t, c in zip(fields["type"][empty], fields["code"][empty], strict=True)]
        return cls(fields, _territories(shapes, ~empty), shapes, dropped)

    @property
    def zone_count(self) -> int:
        """The number of zones (those without area included)."""
        return len(self.fields["code"])

    def locate(
        self, lon: np.ndarray, lat: np.ndarray, tolerance: float = 0.0, reach: float = NEAREST_WITHIN_M
    ) -> Located:
        """Locate points given in WGS84 degrees.

        Returns every (point, zone) pair where the point is inside the zone or within
        ``tolerance`` metres of it, with the signed distance, and each point's status. Points
        within ``reach`` of a zone are projected once, for :meth:`Located.nearest` too; the
        others are ruled out before that.
        """
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        reach = max(reach, tolerance)
        projected = self._project(lon, lat, reach)
        points: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        zones: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        distances: list[np.ndarray] = [np.zeros(0)]
        for where in projected:
            found, part_zone, signed = _pairs(where.territory, where.x, where.y, tolerance)
            points.append(where.members[found])
            zones.append(part_zone)
            distances.append(signed)
        point, zone, distance = np.concatenate(points), np.concatenate(zones), np.concatenate(distances)
        order = np.lexsort((zone, distance, point))  # by point, nearest boundary (deepest inside) first
        point, zone, distance = point[order], zone[order], distance[order]
        # a zone split into parts appears once per point: keep its first (deepest) part
        _, first = np.unique(point * (self.zone_count + 1) + zone, return_index=True)
        keep = np.sort(first)
        return Located(self, len(lon), point[keep], zone[keep], distance[keep], tolerance, projected, reach, lon, lat)

    def around(self, lon: float, lat: float, radius_m: float = AROUND_RADIUS_M) -> dict[str, Any]:
        """Zones within about ``radius_m`` of a point, as a GeoJSON FeatureCollection (WGS84)."""
        degrees = radius_m / 111_000
        box = shapely.box(
            lon - degrees / np.cos(np.radians(lat)),
            lat - degrees,
            lon + degrees / np.cos(np.radians(lat)),
            lat + degrees,
        )
        rows = np.flatnonzero(shapely.intersects(self.shapes, box))
        import geopandas as gpd

        frame = gpd.GeoDataFrame(self.table.iloc[rows][["type", "code", "name"]], geometry=self.shapes[rows], crs=4326)
        collection: dict[str, Any] = frame.to_geo_dict(drop_id=True)
        return collection

    def nearest_many(
        self, lon: np.ndarray, lat: np.ndarray, within: float = NEAREST_WITHIN_M
    ) -> tuple[np.ndarray, np.ndarray]:
        """The nearest zone to each point within ``within`` metres, and its distance (-1 and NaN: none).

        Points farther than ``within`` from every zone's extent are ruled out with the territory's
        bitmap (array indexing); for the others the zone is the one with the nearest boundary vertex
        (boundaries segmented every :data:`VERTEX_SPACING_M` metres, a k-d tree), and the distance
        is exact, to the boundary segments on either side of that vertex. Two zones whose
        distances differ by less than the spacing may be confused; an exact nearest search
        (``STRtree.query_nearest``) costs about 15 µs a point, more than the whole lookup.

        >>> zones = load_zones([__import__("carroyage.data").data.QPV_2024])
        >>> zone, metres = zones.nearest_many(np.array([2.2905, 2.10, np.nan]), np.array([49.8974, 49.95, 1.0]))
        >>> one = zones.nearest(2.2905, 49.8974)  # the exact search, for one point
        >>> int(zone[0]) == one[0], bool(abs(metres[0] - one[1]) < 0.01), int(zone[1]), int(zone[2])
        (True, True, -1, -1)
        """
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        return _nearest(self._project(lon, lat, within), np.arange(len(lon)), len(lon), within)

    def nearest(self, lon: float, lat: float) -> tuple[int, float] | None:
        """The nearest zone to one point and its distance in metres (for a human answer)."""
        for territory, _ in _assign(self.territories, np.array([lon]), np.array([lat])):
            x, y = territory.to_metric.transform(lon, lat)
            where = shapely.Point(x, y)
            with territory.geos:
                index = territory.tree.nearest(where)
                return int(territory.zone[index]), float(shapely.distance(territory.parts[index], where))
        return None

    def _project(self, lon: np.ndarray, lat: np.ndarray, reach: float) -> list[_Projected]:
        """Each territory's points within ``reach`` of a zone, in its metric CRS (projected once
        for every later question)."""
        projected = []
        for territory, members in _assign(self.territories, lon, lat):
            members = members[territory.reachable(lon[members], lat[members], reach)]
            x, y = territory.to_metric.transform(lon[members], lat[members])
            projected.append(_Projected(territory, members, np.asarray(x), np.asarray(y)))
        return projected


@dataclass
class Located:
    """The answer for a set of points: (point, zone, signed distance) pairs, nearest first."""

    zones: ZoneSet
    count: int
    point: np.ndarray
    zone: np.ndarray
    distance: np.ndarray  # metres, negative inside
    tolerance: float
    projected: list[_Projected] = field(default_factory=list)
    reach: float = 0.0  # metres: the points projected are all those within it of a zone
    lon: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lat: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def status_codes(self) -> np.ndarray:
        """Each point's status as a code, an index into :data:`STATUS` (geocoding not considered)."""
        codes = np.full(self.count, STATUS.index("out"), dtype=np.int8)
        codes[self.point[np.abs(self.distance) <= self.tolerance]] = STATUS.index("uncertain")
        codes[self.point[self.distance < -self.tolerance]] = STATUS.index("in")  # deep in one zone wins
        return codes

    def status(self) -> np.ndarray:
        """``in``, ``out`` or ``uncertain`` for each point (geocoding not considered)."""
        return np.asarray(np.array(STATUS, dtype=object)[self.status_codes()])

    def quartiers(self, point: int) -> list[dict[str, object]]:
        """The zones one point lies in or near, nearest boundary first."""
        rows = np.flatnonzero(self.point == point)
        fields = self.zones.fields
        return [
            {
                "type": str(fields["type"][z]),
                "code": str(fields["code"][z]),
                "name": str(fields["name"][z]),
                "distance_m": round(float(d), 1),
            }
            for z, d in zip(self.zone[rows], self.distance[rows], strict=True)
        ]

    def main_zone(self) -> tuple[np.ndarray, np.ndarray]:
        """One zone per point (the one it is deepest in, else the nearest within tolerance).

        Returns the zone row of each point (-1: none) and its signed distance (NaN: none).
        """
        first = (
            np.flatnonzero(np.r_[True, self.point[1:] != self.point[:-1]])
            if len(self.point)
            else np.zeros(0, dtype=np.int64)
        )
        zone = np.full(self.count, -1, dtype=np.int64)
        distance = np.full(self.count, np.nan)
        zone[self.point[first]] = self.zone[first]
        distance[self.point[first]] = self.distance[first]
        return zone, distance

    def nearest(self, rows: np.ndarray, within: float = NEAREST_WITHIN_M) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`ZoneSet.nearest_many` for the points ``rows``, reusing their projection."""
        rows = np.asarray(rows, dtype=np.int64)
        if within > self.reach:  # farther than the points projected: project them again
            return self.zones.nearest_many(self.lon[rows], self.lat[rows], within)
        return _nearest(self.projected, rows, self.count, within)


def _nearest(projected: list[_Projected], rows: np.ndarray, count: int, within: float) -> tuple[np.ndarray, np.ndarray]:
    """The nearest zone within ``within`` of the points ``rows`` (of ``count`` projected)."""
    wanted = np.zeros(count, dtype=bool)
    wanted[rows] = True
    zone = np.full(count, -1, dtype=np.int64)
    distance = np.full(count, np.nan)
    for where in projected:
        # a point already answered by another territory keeps that answer
        pick = np.flatnonzero(wanted[where.members] & (zone[where.members] < 0))
        found, metres = where.territory.nearest_boundary(where.x[pick], where.y[pick], within)
        zone[where.members[pick]], distance[where.members[pick]] = found, metres
    return zone[rows], distance[rows]


def _spatial_order(x: np.ndarray, y: np.ndarray, cell: float = ORDER_CELL_M) -> np.ndarray:
    """An order of points by grid cell (column, then row): a file's rows come in no spatial order,
    and a tree searched for neighbours in turn stays in the processor's cache."""
    if not len(x):
        return np.zeros(0, dtype=np.int64)
    col, row = (x - x.min()) // cell, (y - y.min()) // cell
    return np.argsort(col * (row.max() + 1) + row, kind="stable")


def _ring_neighbours(coords: np.ndarray, line: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vertex before and after each vertex of consecutive lines (``line``: each vertex's line).

    A closed ring's first and last vertices are one point: the k-d tree may return either, so
    each must see the segments on both sides of it (the one closing the ring included).

    >>> square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=float)
    >>> before, after = _ring_neighbours(square, np.zeros(5, dtype=int))
    >>> before.tolist(), after.tolist()
    ([3, 0, 1, 2, 3], [1, 2, 3, 4, 1])
    """
    index = np.arange(len(line))
    start = np.r_[True, line[1:] != line[:-1]]
    first = np.maximum.accumulate(np.where(start, index, 0))  # each vertex's line's first vertex
    end = np.r_[line[1:] != line[:-1], True]
    last = np.minimum.accumulate(np.where(end, index, len(line))[::-1])[::-1]
    closed = (coords[first] == coords[last]).all(axis=1) & (last - first > 1)
    before = np.where(index > first, index - 1, np.where(closed, last - 1, index))
    after = np.where(index < last, index + 1, np.where(closed, first + 1, index))
    return before, after


def _to_segment(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points to segments ``a``-``b`` (arrays of the same length)."""
    dx, dy = b[:, 0] - a[:, 0], b[:, 1] - a[:, 1]
    length = dx * dx + dy * dy
    t = np.clip(((px - a[:, 0]) * dx + (py - a[:, 1]) * dy) / np.where(length > 0, length, 1.0), 0.0, 1.0)
    return np.asarray(np.hypot(a[:, 0] + t * dx - px, a[:, 1] + t * dy - py))


def _territories(shapes: np.ndarray, usable: np.ndarray) -> list[Territory]:
    """Split zones by territory and prepare each in its metric CRS."""
    parts = shapely.get_parts(shapes[usable], return_index=True)
    part_shapes, part_zone = parts[0], np.flatnonzero(usable)[parts[1]]
    centre = shapely.point_on_surface(part_shapes)
    cx, cy = shapely.get_x(centre), shapely.get_y(centre)
    territories, assigned = [], np.zeros(len(part_shapes), dtype=bool)
    for _, epsg, (west, south, east, north) in TERRITORIES:
        inside = (cx >= west) & (cx <= east) & (cy >= south) & (cy <= north) & ~assigned
        assigned |= inside
        if inside.any():
            territories.append(_territory(part_shapes[inside], part_zone[inside], epsg))
    if (~assigned).any():  # elsewhere: the UTM zone of those parts
        import geopandas as gpd

        crs = gpd.GeoSeries(part_shapes[~assigned], crs=4326).estimate_utm_crs()
        territories.append(_territory(part_shapes[~assigned], part_zone[~assigned], crs.to_epsg()))
    return territories


def _territory(shapes: np.ndarray, zone: np.ndarray, epsg: int) -> Territory:
    import geopandas as gpd

    projected = gpd.GeoSeries(shapes, crs=4326).to_crs(epsg).to_numpy()
    lonlat = shapely.total_bounds(shapes)
    return _prepared(projected, zone, epsg, (lonlat[0], lonlat[1], lonlat[2], lonlat[3]))


def _prepared(
    projected: np.ndarray, zone: np.ndarray, epsg: int, lonlat: tuple[float, float, float, float]
) -> Territory:
    """A territory from its projected parts: prepared, with boundaries and an index."""
    shapely.prepare(projected)
    boundaries = shapely.boundary(projected)
    shapely.prepare(boundaries)
    return Territory(epsg, zone, projected, boundaries, shapely.STRtree(projected), lonlat)


def _assign(territories: list[Territory], lon: np.ndarray, lat: np.ndarray) -> Iterator[tuple[Territory, np.ndarray]]:
    """Which points each territory should look at (by the extent of its zones)."""
    valid = np.isfinite(lon) & np.isfinite(lat)
    for territory in territories:
        west, south, east, north = territory.lonlat_bounds
        margin = 0.05  # degrees: a few km, more than any tolerance
        members = np.flatnonzero(
            valid & (lon >= west - margin) & (lon <= east + margin) & (lat >= south - margin) & (lat <= north + margin)
        )
        if len(members):
            yield territory, members


def _pairs(
    territory: Territory, x: np.ndarray, y: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    near = np.flatnonzero(territory.near(x, y, tolerance))
    near = near[_spatial_order(x[near], y[near])]  # neighbours in turn: the tree and the parts stay in cache
    points = shapely.points(x[near], y[near])
    with territory.geos:
        if tolerance > 0:
            found, part = territory.tree.query(points, predicate="dwithin", distance=tolerance)
        else:
            found, part = territory.tree.query(points, predicate="intersects")
        point, points = near[found], points[found]
        inside = shapely.contains_xy(territory.parts[part], x[point], y[point])
        to_boundary = shapely.distance(territory.boundaries[part], points)
    signed = np.where(inside, -to_boundary, to_boundary)
    return point, territory.zone[part], signed


ZONES_CACHE_VERSION = "1"
SUFFIXES = (".zones.carroyage-index.parquet", ".zone-parts.carroyage-index.parquet")
"""The two files of a zone cache (the zones, their projected parts), named like the BAN index."""


def load_zones(paths: list[str | Path], cache_dir: str | Path | None = None) -> ZoneSet:
    """Zones from files: a carroyage geography gives its ``qpv``, ``quartier_vecu`` and
    ``veille_active`` layers, each with its type; any other polygon file is one layer of type
    ``qpv`` (the official file) or named after the file.

    Zones from plain files (not GeoPackages) are prepared once (repaired, projected, exploded)
    and cached as Parquet next to the first file (or in the user cache, ``cache_dir`` or
    ``$XDG_CACHE_HOME/carroyage``, when that folder is read-only), like the BAN index. The cache
    is keyed on the files' contents (sha256) and on the format's version, so it is rebuilt
    whenever a file changes, even keeping its size and date; an unreadable or foreign cache is
    ignored and rebuilt. Reading it needs neither GDAL, geopandas nor pandas.
    """
    files = [Path(p) for p in paths]
    cacheable = bool(files) and all(p.suffix.lower() != ".gpkg" and p.is_file() for p in files)
    if not cacheable:
        return _load_zones(files)
    # the files' content (not size and date), and how they are prepared
    preparation = hashlib.sha256(repr((ZONES_CACHE_VERSION, __version__, TERRITORIES)).encode()).hexdigest()[:16]
    stamp = preparation + "|" + "|".join(f"{p.resolve()}:{sha256(p)}" for p in files)
    candidates = _zone_cache_paths(files, cache_dir)
    for candidate in candidates:
        cached = _read_zone_cache(candidate, stamp)
        if cached is not None:
            return cached
    zones = _load_zones(files)
    for candidate in candidates:
        try:
            _write_zone_cache(zones, candidate, stamp)
            break
        except OSError:  # a read-only folder (OutputError is one too): the next place
            continue
    return zones


def _zone_cache_paths(files: list[Path], cache_dir: str | Path | None) -> list[Path]:
    key = hashlib.sha256("|".join(str(p.resolve()) for p in files).encode()).hexdigest()[:16]
    user = (
        Path(cache_dir) if cache_dir else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "carroyage"
    )
    beside = files[0].with_name(files[0].name + ("" if len(files) == 1 else f".{key}"))
    return [beside, user / f"zones-{key}"]


def _write_zone_cache(zones: ZoneSet, base: Path, stamp: str) -> None:
    """The zones and their prepared parts, both stamped, written together or not at all."""
    territories = [{"epsg": t.epsg, "lonlat": list(t.lonlat_bounds)} for t in zones.territories]
    meta = {"carroyage_stamp": stamp, "dropped": json.dumps(zones.dropped), "territories": json.dumps(territories)}
    table = pa.table(
        {
            **{c: pa.array([str(v) for v in zones.fields[c]], pa.string()) for c in FIELDS},
            "wkb": pa.array(shapely.to_wkb(zones.shapes).tolist(), pa.binary()),
        }
    ).replace_schema_metadata(meta)
    parts = pa.table(
        {
            "territory": pa.array(
                np.concatenate(
                    [np.full(len(t.parts), i) for i, t in enumerate(zones.territories)] or [np.zeros(0, int)]
                ),
                pa.int32(),
            ),
            "zone": pa.array(np.concatenate([t.zone for t in zones.territories] or [np.zeros(0, int)]), pa.int64()),
            "wkb": pa.array(
                np.concatenate([shapely.to_wkb(t.parts) for t in zones.territories] or [np.zeros(0, object)]).tolist(),
                pa.binary(),
            ),
        }
    ).replace_schema_metadata({"carroyage_stamp": stamp})
    base.parent.mkdir(parents=True, exist_ok=True)
    with output_set():
        for suffix, content in ((SUFFIXES[0], table), (SUFFIXES[1], parts)):
            with atomic_path(base.with_name(base.name + suffix)) as temporary:
                pq.write_table(content, temporary)


def _read_zone_cache(base: Path, stamp: str) -> ZoneSet | None:
    """The cached zones, or ``None`` when missing, unreadable or stamped for other files."""
    files = [base.with_name(base.name + suffix) for suffix in SUFFIXES]
    if not all(f.is_file() for f in files):
        return None
    try:
        # ParquetFile, not read_table: the latter imports pandas and the dataset machinery
        opened = [pq.ParquetFile(f) for f in files]
        if any((o.schema_arrow.metadata or {}).get(b"carroyage_stamp", b"").decode() != stamp for o in opened):
            return None
        table, parts = (o.read() for o in opened)
        meta = table.schema.metadata or {}
        # to_pylist, not to_numpy: Arrow turns text into objects through pandas, a 0.3 s import
        fields = {c: np.array(table[c].to_pylist(), dtype=object) for c in FIELDS}
        shapes = shapely.from_wkb(np.array(table["wkb"].to_pylist(), dtype=object))
        territory = numpy_of(parts["territory"])
        zone = numpy_of(parts["zone"])
        projected = shapely.from_wkb(np.array(parts["wkb"].to_pylist(), dtype=object))
        described = json.loads(meta[b"territories"])
    except (OSError, KeyError, ValueError, shapely.errors.ShapelyError, pa.ArrowException):
        return None  # not a cache this version wrote: rebuilt
    territories = [
        _prepared(projected[territory == i], zone[territory == i], int(d["epsg"]), tuple(d["lonlat"]))
        for i, d in enumerate(described)
    ]
    return ZoneSet(fields, territories, shapes, json.loads(meta[b"dropped"]))


def _load_zones(paths: list[Path]) -> ZoneSet:
    from ..geography import is_geography, read_geography
    from ..layers import read_layer

    layers = []
    for path in paths:
        path = Path(path)
        if is_geography(path):
            geo = read_geography(path)
            found = {"qpv": geo.qpv, **geo.layers}
            layers += [
                (kind, found[name], str(path))
                for name, kind in GEOGRAPHY_LAYERS.items()
                if name in found and len(found[name])
            ]
        else:
            layer = read_layer(path, "zones")
            kind = "qpv" if "code_qp" in {c.lower() for c in layer.columns} else path.stem
            layers.append((kind, layer, str(path)))
    return ZoneSet.from_layers(layers)

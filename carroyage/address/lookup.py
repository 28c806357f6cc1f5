"""Points → zones: in, out or uncertain, with the signed distance to each zone's boundary.

Zones are measured in a metric CRS of their territory (Lambert-93 in metropolitan France, the
local UTM projections overseas), so distances are metres on the ground. All points are located at
once: one ``STRtree`` query for candidates, vectorised point-in-polygon on prepared polygons and
distances only for the points close to a zone.

``distance_m`` is negative inside a zone and positive outside. A point is ``in`` when it lies in a
zone farther than the tolerance from its boundary, ``uncertain`` when it lies within the tolerance
of a boundary (or its geocoding is weak), ``out`` otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely

from ..manifest import sha256
from ..settings import AROUND_RADIUS_M, NEAREST_WITHIN_M

if TYPE_CHECKING:
    import geopandas as gpd

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


COARSE = 1000.0  # metres: side of the bitmap cells that rule out points far from every zone
VERTEX_SPACING_M = 25.0  # metres between the boundary vertices the nearest zone is looked up by


@dataclass
class Territory:
    """The zones of one territory, projected, exploded and indexed."""

    epsg: int
    zone: np.ndarray  # zone row of each polygon part
    parts: np.ndarray  # polygons, prepared
    boundaries: np.ndarray
    tree: shapely.STRtree
    to_metric: pyproj.Transformer
    lonlat_bounds: tuple[float, float, float, float]
    _near: dict[float, tuple[np.ndarray, float, float, int, int]] = field(default_factory=dict)
    _vertices: tuple[np.ndarray, Any, np.ndarray, np.ndarray, np.ndarray] | None = None

    def vertices(self) -> tuple[np.ndarray, Any, np.ndarray, np.ndarray, np.ndarray]:
        """The parts' boundary vertices every :data:`VERTEX_SPACING_M` metres: their part, a k-d
        tree, their coordinates, and whether the previous / next vertex is on the same line."""
        if self._vertices is None:
            from scipy.spatial import cKDTree

            dense = shapely.segmentize(self.boundaries, VERTEX_SPACING_M)
            lines, part = shapely.get_parts(dense, return_index=True)
            coords, line = shapely.get_coordinates(lines, return_index=True)
            same = line[1:] == line[:-1]
            self._vertices = (part[line], cKDTree(coords), coords, np.r_[False, same], np.r_[same, False])
        return self._vertices

    def near(self, x: np.ndarray, y: np.ndarray, tolerance: float) -> np.ndarray:
        """Which points may lie within ``tolerance`` of a zone: a bitmap of the zones' extents.

        Most points of a national file are far from every QPV; they are ruled out with array
        indexing, before any geometry is built for them.
        """
        if tolerance not in self._near:
            bounds = shapely.bounds(self.parts)
            west, south = bounds[:, 0].min() - tolerance, bounds[:, 1].min() - tolerance
            col0 = ((bounds[:, 0] - tolerance - west) // COARSE).astype(int)
            col1 = ((bounds[:, 2] + tolerance - west) // COARSE).astype(int)
            row0 = ((bounds[:, 1] - tolerance - south) // COARSE).astype(int)
            row1 = ((bounds[:, 3] + tolerance - south) // COARSE).astype(int)
            bitmap = np.zeros((row1.max() + 1, col1.max() + 1), dtype=bool)
            for r0, r1, c0, c1 in zip(row0, row1, col0, col1, strict=True):  # one slice per zone part
                bitmap[r0 : r1 + 1, c0 : c1 + 1] = True
            self._near[tolerance] = (bitmap, west, south, *bitmap.shape)
        bitmap, west, south, rows, cols = self._near[tolerance]
        col = np.floor((x - west) / COARSE)
        row = np.floor((y - south) / COARSE)
        inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
        hit = np.zeros(len(x), dtype=bool)
        hit[inside] = bitmap[row[inside].astype(int), col[inside].astype(int)]
        return hit


@dataclass
class ZoneSet:
    """Zones of several types (``qpv``, ``quartier_vecu``, ``veille_active``...) ready for lookups.

    Attributes
    ----------
    table : DataFrame
        One row per zone: ``type``, ``code``, ``name``, ``source``.
    dropped : list of str
        Zones left out because their geometry has no area (e.g. collapsed by coordinate rounding).
    """

    table: pd.DataFrame
    territories: list[Territory]
    shapes: np.ndarray  # WGS84 geometry of each zone
    dropped: list[str] = field(default_factory=list)

    @classmethod
    def from_layers(cls, layers: list[tuple[str, gpd.GeoDataFrame, str]]) -> ZoneSet:
        """Build from ``(type, layer, source)`` triples."""
        from ..layers import codes_and_names

        frames: list[pd.DataFrame] = []
        pieces: list[np.ndarray] = []
        for kind, layer, source in layers:
            codes, names = codes_and_names(layer, "Z")
            wgs = layer.to_crs(4326).geometry.to_numpy()
            frames.append(pd.DataFrame({"type": kind, "code": codes, "name": names, "source": source}))
            pieces.append(wgs)
        table = (
            pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["type", "code", "name", "source"])
        )
        shapes = np.concatenate(pieces) if pieces else np.array([], dtype=object)
        empty = shapely.is_empty(shapes) | (shapely.area(shapes) == 0)
        dropped = [f"{t} {c}" for t, c in zip(table["type"][empty], table["code"][empty], strict=True)]
        return cls(table, _territories(shapes, ~empty), shapes, dropped)

    def locate(self, lon: np.ndarray, lat: np.ndarray, tolerance: float = 0.0) -> Located:
        """Locate points given in WGS84 degrees.

        Returns every (point, zone) pair where the point is inside the zone or within
        ``tolerance`` metres of it, with the signed distance, and each point's status.
        """
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        points: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        zones: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        distances: list[np.ndarray] = [np.zeros(0)]
        for territory, members in _assign(self.territories, lon, lat):
            x, y = territory.to_metric.transform(lon[members], lat[members])
            found, part_zone, signed = _pairs(territory, np.asarray(x), np.asarray(y), tolerance)
            points.append(members[found])
            zones.append(part_zone)
            distances.append(signed)
        point, zone, distance = np.concatenate(points), np.concatenate(zones), np.concatenate(distances)
        order = np.lexsort((distance, point))  # by point, nearest boundary (deepest inside) first
        point, zone, distance = point[order], zone[order], distance[order]
        # a zone split into parts appears once per point: keep its first (deepest) part
        _, first = np.unique(point * (len(self.table) + 1) + zone, return_index=True)
        keep = np.sort(first)
        return Located(self, len(lon), point[keep], zone[keep], distance[keep], tolerance)

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
        zone = np.full(len(lon), -1, dtype=np.int64)
        distance = np.full(len(lon), np.nan)
        for territory, members in _assign(self.territories, lon, lat):
            members = members[zone[members] < 0]  # a point already answered by another territory
            x, y = (np.asarray(v) for v in territory.to_metric.transform(lon[members], lat[members]))
            close = np.flatnonzero(territory.near(x, y, within))
            vertex_part, kdtree, coords, same_prev, same_next = territory.vertices()
            _, vertex = kdtree.query(np.c_[x[close], y[close]], distance_upper_bound=within + VERTEX_SPACING_M)
            hit = vertex < len(vertex_part)
            close, vertex = close[hit], vertex[hit]
            px, py = x[close], y[close]
            # exact distance to the boundary: the two segments on either side of the nearest vertex
            metres = np.hypot(coords[vertex, 0] - px, coords[vertex, 1] - py)
            for neighbour, valid in ((vertex - 1, same_prev[vertex]), (vertex + 1, same_next[vertex])):
                neighbour = np.where(valid, neighbour, vertex)
                metres = np.minimum(metres, _to_segment(px, py, coords[vertex], coords[neighbour]))
            keep = metres <= within
            zone[members[close[keep]]] = territory.zone[vertex_part[vertex[keep]]]
            distance[members[close[keep]]] = metres[keep]
        return zone, distance

    def nearest(self, lon: float, lat: float) -> tuple[int, float] | None:
        """The nearest zone to one point and its distance in metres (for a human answer)."""
        for territory, _ in _assign(self.territories, np.array([lon]), np.array([lat])):
            x, y = territory.to_metric.transform(lon, lat)
            where = shapely.Point(x, y)
            index = territory.tree.nearest(where)
            return int(territory.zone[index]), float(shapely.distance(territory.parts[index], where))
        return None


@dataclass
class Located:
    """The answer for a set of points: (point, zone, signed distance) pairs, nearest first."""

    zones: ZoneSet
    count: int
    point: np.ndarray
    zone: np.ndarray
    distance: np.ndarray  # metres, negative inside
    tolerance: float

    def status(self) -> np.ndarray:
        """``in``, ``out`` or ``uncertain`` for each point (geocoding not considered)."""
        deep = np.zeros(self.count, dtype=bool)
        near = np.zeros(self.count, dtype=bool)
        deep[self.point[self.distance < -self.tolerance]] = True
        near[self.point[np.abs(self.distance) <= self.tolerance]] = True
        return np.where(deep, "in", np.where(near, "uncertain", "out")).astype(object)

    def quartiers(self, point: int) -> list[dict[str, object]]:
        """The zones one point lies in or near, nearest boundary first."""
        rows = np.flatnonzero(self.point == point)
        table = self.zones.table
        return [
            {
                "type": table.at[z, "type"],
                "code": table.at[z, "code"],
                "name": table.at[z, "name"],
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
    transformer = pyproj.Transformer.from_crs(4326, epsg, always_xy=True)
    return Territory(epsg, zone, projected, boundaries, shapely.STRtree(projected), transformer, lonlat)


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
    points = shapely.points(x[near], y[near])
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
    and cached as Parquet next to the first file (or in the user cache when that folder is
    read-only), like the BAN index; the cache is keyed on the files' contents (sha256), so it is
    rebuilt whenever one changes. Reading it needs neither GDAL nor geopandas.
    """
    files = [Path(p) for p in paths]
    cacheable = bool(files) and all(p.suffix.lower() != ".gpkg" and p.is_file() for p in files)
    if not cacheable:
        return _load_zones(files)
    stamp = (
        ZONES_CACHE_VERSION + "|" + "|".join(f"{p.resolve()}:{sha256(p)}" for p in files)  # content, not size and date
    )
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
        except OSError:
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
    base.parent.mkdir(parents=True, exist_ok=True)
    territories = [{"epsg": t.epsg, "lonlat": list(t.lonlat_bounds)} for t in zones.territories]
    meta = {"carroyage_stamp": stamp, "dropped": json.dumps(zones.dropped), "territories": json.dumps(territories)}
    table = pa.table(
        {
            **{
                c: pa.array(zones.table[c].astype(str).tolist(), pa.string())
                for c in ("type", "code", "name", "source")
            },
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
    for suffix, content in ((SUFFIXES[0], table), (SUFFIXES[1], parts)):
        target = base.with_name(base.name + suffix)
        temporary = target.with_name(target.name + f".{os.getpid()}.tmp")
        pq.write_table(content, temporary)
        os.replace(temporary, target)


def _read_zone_cache(base: Path, stamp: str) -> ZoneSet | None:
    files = [base.with_name(base.name + suffix) for suffix in SUFFIXES]
    if not all(f.is_file() for f in files):
        return None
    try:
        table, parts = (pq.read_table(f) for f in files)
    except (OSError, pa.ArrowInvalid):
        return None
    meta = table.schema.metadata or {}
    if meta.get(b"carroyage_stamp", b"").decode() != stamp:
        return None
    if (parts.schema.metadata or {}).get(b"carroyage_stamp", b"").decode() != stamp:
        return None
    frame = pd.DataFrame({c: table[c].to_pylist() for c in ("type", "code", "name", "source")})
    shapes = shapely.from_wkb(np.array(table["wkb"].to_pylist(), dtype=object))
    territory = parts["territory"].to_numpy()
    zone = parts["zone"].to_numpy()
    projected = shapely.from_wkb(np.array(parts["wkb"].to_pylist(), dtype=object))
    described = json.loads(meta[b"territories"])
    territories = [
        _prepared(projected[territory == i], zone[territory == i], int(d["epsg"]), tuple(d["lonlat"]))
        for i, d in enumerate(described)
    ]
    return ZoneSet(frame, territories, shapes, json.loads(meta[b"dropped"]))


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

"""Contiguity: candidate cells → clusters (gaps filled) → quartier polygons.

Cells are handled as a sparse set of integer keys (``row × width + col``), not as a raster of the
whole frame: a France-sized frame has about 30 million positions, of which a few percent are
candidates, so labelling, gap filling and polygon building all scale with the candidates instead
(``docs/method.md``, "Why sparse"). Rook contiguity links cells sharing an edge, queen also those
sharing a corner; components come from ``scipy.sparse.csgraph.connected_components``. Polygons are
the GEOS coverage union of the cells of each kept cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .grid import Grid

# half neighbourhoods: each pair of neighbours is linked once
HALF_OFFSETS = {"rook": ((0, 1), (1, 0)), "queen": ((0, 1), (1, 0), (1, 1), (1, -1))}
OTHER = {"rook": "queen", "queen": "rook"}


@dataclass(frozen=True)
class KeyFrame:
    """Integer keys for raster positions, with a margin so that neighbours never wrap around."""

    grid: Grid
    margin: int

    @property
    def width(self) -> int:
        return self.grid.shape[1] + 2 * self.margin

    def keys(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        return (row.astype(np.int64) + self.margin) * self.width + (col.astype(np.int64) + self.margin)

    def row_col(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return keys // self.width - self.margin, keys % self.width - self.margin

    def shift(self, keys: np.ndarray, d_row: int, d_col: int) -> np.ndarray:
        return keys + d_row * self.width + d_col


@dataclass(frozen=True)
class Clusters:
    """Clusters of candidate cells (and of the gaps filled between them).

    Attributes
    ----------
    keys : array of int64
        Sorted keys of every position in a cluster (candidate cells and filled gaps).
    label : array of int64
        Cluster of each key, ``1 .. count``, numbered by each cluster's north-west-most cell.
    count : int
    of_cell : array of int64
        Cluster of each input cell (0: none).
    frame : KeyFrame
        How keys map to raster positions.
    """

    keys: np.ndarray
    label: np.ndarray
    count: int
    of_cell: np.ndarray
    frame: KeyFrame


def cluster_cells(grid: Grid, flagged: np.ndarray, contiguity: str, gap_fill_cells: int = 0) -> Clusters:
    """Group contiguous candidate cells, then fill enclosed gaps of at most ``gap_fill_cells``.

    Parameters
    ----------
    grid : Grid
        Positions of the cells.
    flagged : array of bool
        Candidate cells.
    contiguity : {"rook", "queen"}
    gap_fill_cells : int
        Largest enclosed gap (in positions, inhabited or not) that joins its cluster; 0: none.

    Examples
    --------
    >>> g = Grid.around(np.array([0, 200, 400]), np.array([0, 200, 0]), 200)
    >>> cluster_cells(g, np.array([True, True, True]), "rook").count
    3
    >>> cluster_cells(g, np.array([True, True, True]), "queen").count
    1
    """
    frame = KeyFrame(grid, margin=_reach(gap_fill_cells) + 1)
    cell_keys = frame.keys(grid.row, grid.col)
    candidates = np.flatnonzero(flagged)
    candidates = candidates[np.argsort(cell_keys[candidates])]
    keys = cell_keys[candidates]
    count, label = _components(frame, keys, contiguity)
    of_cell = np.zeros(len(cell_keys), dtype=np.int64)
    of_cell[candidates] = label
    if gap_fill_cells > 0 and count:
        # a gap is enclosed by one cluster, so filling it never joins two clusters
        enclosing = np.bincount(label)[label] >= SMALLEST_RING[contiguity]
        hole_keys, hole_label = _small_holes(frame, keys, label, enclosing, contiguity, gap_fill_cells)
        of_cell = np.maximum(of_cell, _lookup(hole_keys, hole_label, cell_keys))
        order = np.argsort(np.concatenate([keys, hole_keys]), kind="stable")
        keys, label = np.concatenate([keys, hole_keys])[order], np.concatenate([label, hole_label])[order]
    return Clusters(keys, label, count, of_cell, frame)


def _reach(gap_fill_cells: int) -> int:
    """How far from a candidate a gap cell can lie.

    A gap cell whose whole 3 × 3 neighbourhood is gap makes a gap of at least 9 cells (5 for the
    rook-connected gaps of queen clusters), so up to 4 cells every gap cell touches a candidate.
    """
    return 1 if gap_fill_cells <= 4 else (gap_fill_cells + 1) // 2


def _components(frame: KeyFrame, keys: np.ndarray, contiguity: str) -> tuple[int, np.ndarray]:
    """Connected components of sorted keys, labelled 1.. in key (raster scan) order."""
    if len(keys) == 0:
        return 0, np.zeros(0, dtype=np.int64)
    sources, targets = [], []
    for d_row, d_col in HALF_OFFSETS[contiguity]:
        found, index = _find(keys, frame.shift(keys, d_row, d_col))
        sources.append(np.flatnonzero(found))
        targets.append(index[found])
    source, target = np.concatenate(sources), np.concatenate(targets)
    graph = coo_matrix((np.ones(len(source), dtype=np.int8), (source, target)), shape=(len(keys), len(keys)))
    count, label = connected_components(graph, directed=False)
    return int(count), label.astype(np.int64) + 1


def _small_holes(
    frame: KeyFrame, keys: np.ndarray, label: np.ndarray, enclosing: np.ndarray, contiguity: str, max_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keys of enclosed gaps of at most ``max_cells`` positions, and the cluster enclosing each.

    Gaps are connected the other way round from clusters (a rook cluster encloses
    queen-connected gaps). The positions around the candidates of clusters large enough to enclose
    anything are labelled; a component is an enclosed gap when none of its positions has a
    neighbour outside the candidates and that ring.
    """
    reach = _reach(max_cells)
    around = keys[enclosing]
    shifts = [(r, c) for r in range(-reach, reach + 1) for c in range(-reach, reach + 1) if (r, c) != (0, 0)]
    ring = _unique_sorted(np.concatenate([frame.shift(around, r, c) for r, c in shifts]))
    ring = ring[~_find(keys, ring)[0]]
    gap_contiguity = OTHER[contiguity]
    count, component = _components(frame, ring, gap_contiguity)
    open_component = np.zeros(count + 1, dtype=bool)
    owner = np.zeros(count + 1, dtype=np.int64)
    for d_row, d_col in HALF_OFFSETS[gap_contiguity] + tuple((-r, -c) for r, c in HALF_OFFSETS[gap_contiguity]):
        neighbour = frame.shift(ring, d_row, d_col)
        in_ring = _find(ring, neighbour)[0]
        is_candidate, index = _find(keys, neighbour)
        open_component[component[~in_ring & ~is_candidate]] = True
        np.maximum.at(owner, component[is_candidate], label[index[is_candidate]])
    sizes = np.bincount(component, minlength=count + 1)
    enclosed = ~open_component & (sizes <= max_cells) & (owner > 0)
    enclosed[0] = False
    chosen = enclosed[component]
    return ring[chosen], owner[component[chosen]]


SMALLEST_RING = {"rook": 8, "queen": 4}  # fewest cells that can enclose a gap


def _unique_sorted(values: np.ndarray) -> np.ndarray:
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])] if len(values) else values


def _find(sorted_keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which ``wanted`` keys are in ``sorted_keys``, and where."""
    index = np.searchsorted(sorted_keys, wanted)
    index = np.minimum(index, len(sorted_keys) - 1)
    return sorted_keys[index] == wanted, index


def _lookup(keys: np.ndarray, label: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    if len(keys) == 0:
        return np.zeros(len(wanted), dtype=np.int64)
    found, index = _find(keys, wanted)
    return np.where(found, label[index], 0)


def cluster_polygons(grid: Grid, clusters: Clusters, kept: np.ndarray) -> np.ndarray:
    """One (multi)polygon per kept cluster, in the order of ``kept`` (cluster labels).

    The GEOS coverage union of all kept positions at once, split into parts; each part goes to
    the cluster of the position under a point inside it, and parts are regrouped per cluster.
    """
    if len(kept) == 0:
        return np.array([], dtype=object)
    rank = np.full(clusters.count + 1, -1, dtype=np.int64)
    rank[kept] = np.arange(len(kept))
    chosen = clusters.keys[rank[clusters.label] >= 0]
    x, y = grid.corners(*clusters.frame.row_col(chosen))
    boxes = shapely.box(x, y, x + grid.resolution, y + grid.resolution)
    parts = shapely.get_parts(shapely.coverage_union_all(boxes))
    inside = shapely.point_on_surface(parts)
    row = ((grid.north - shapely.get_y(inside)) // grid.resolution).astype(np.int64)
    col = ((shapely.get_x(inside) - grid.west) // grid.resolution).astype(np.int64)
    owner = rank[_lookup(clusters.keys, clusters.label, clusters.frame.keys(row, col))]
    order = np.argsort(owner, kind="stable")
    return np.asarray(shapely.multipolygons(shapely.simplify(parts[order], 0), indices=owner[order]), dtype=object)

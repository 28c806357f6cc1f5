"""Contiguity: candidate cells → clusters (gaps filled) → contour ring → quartier polygons.

Cells are handled as a sparse set of integer keys (``row × width + col``), not as a raster of the
whole frame: a France-sized frame has about 30 million positions, of which a few percent are
candidates, so labelling, gap filling and polygon building all scale with the candidates instead
(``docs/method.md``, "Why sparse"). Rook contiguity links cells sharing an edge, queen also those
sharing a corner; components come from ``scipy.sparse.csgraph.connected_components``. The contour
ring (:func:`contour_ring`) then takes in bordering cells while each quartier as a whole keeps its
low-income majority. Polygons are the GEOS coverage union of the cells of each kept cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    ring : array of bool, optional
        Whether each input cell joined its cluster through the contour ring (None: no ring drawn).
    """

    keys: np.ndarray
    label: np.ndarray
    count: int
    of_cell: np.ndarray
    frame: KeyFrame
    ring: np.ndarray | None = None


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


def raster_order(grid: Grid) -> np.ndarray:
    """The permutation that puts the cells in raster order (north to south, then west to east).

    The stable ``argsort`` of the row-major keys, computed as two linear-time radix passes on
    16-bit rows and columns (a France-sized frame has about 5,500 of each) instead of a
    comparison sort of 64-bit keys.

    Examples
    --------
    >>> g = Grid.around(np.array([0, 200, 0]), np.array([0, 0, 200]), 200)
    >>> raster_order(g).tolist()
    [2, 0, 1]
    """
    if max(grid.shape) <= np.iinfo(np.uint16).max:
        by_col = np.argsort(grid.col.astype(np.uint16), kind="stable")
        ordered: np.ndarray = by_col[np.argsort(grid.row[by_col].astype(np.uint16), kind="stable")]
        return ordered
    return np.argsort(grid.row.astype(np.int64) * grid.shape[1] + grid.col, kind="stable")


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


ALL_OFFSETS = {
    name: tuple(offset for d_row, d_col in half for offset in ((d_row, d_col), (-d_row, -d_col)))
    for name, half in HALF_OFFSETS.items()
}


def contour_ring(
    grid: Grid,
    clusters: Clusters,
    share: np.ndarray,
    population: np.ndarray,
    min_share: float = 0.5,
    contiguity: str = "queen",
    steps: int = 1,
) -> Clusters:
    """Draw each cluster's contour one cell further out, as long as the quartier stays low-income.

    Official contours follow streets (décret 2014-767 art. 3), so they take in the blocks that
    border the low-income core. At each step, every inhabited cell outside the clusters that
    touches one (``contiguity``) is offered to it (to the least populated one when it touches
    several, ties to the lowest-numbered: a ring cell never merges two clusters). Per cluster
    the offered cells are sorted by
    decreasing ``share`` and taken as a prefix while the whole quartier (core, filled gaps and
    ring so far) keeps more than ``min_share`` of its residents below the threshold: one
    ``lexsort`` and cumulative sums per cluster, the first cell that would tip the share stops
    the cluster. The quartier test therefore always holds on the final contour.

    Parameters
    ----------
    grid : Grid
    clusters : Clusters
        From :func:`cluster_cells`.
    share : array
        Share of each cell's residents below the threshold.
    population : array
        Residents of each cell.
    min_share : float
        The rule's ``low_income_share``.
    contiguity : {"rook", "queen"}
        Which cells count as bordering.
    steps : int
        Ring steps (``Rule.contour_ring_cells``); 0 returns ``clusters`` unchanged.

    Returns
    -------
    Clusters
        The same clusters with their ring cells (``ring`` marks them).

    Examples
    --------
    A 2-cell core at 0.8 below the threshold, with one neighbour at 0.4 and one at 0: the first
    joins (pooled 0.67), the second would leave the quartier at one half (0.50, not above it)
    and stays out.

    >>> g = Grid.around(np.array([0, 200, 400, 600]), np.array([0, 0, 0, 0]), 200)
    >>> share = np.array([0.4, 0.8, 0.8, 0.0])
    >>> core = cluster_cells(g, share > 0.5, "queen")
    >>> ringed = contour_ring(g, core, share, np.full(4, 100.0))
    >>> ringed.of_cell.tolist(), ringed.ring.tolist()
    ([1, 1, 1, 0], [True, False, False, False])
    """
    ring = np.zeros(len(population), dtype=bool) if clusters.ring is None else clusters.ring.copy()
    if steps <= 0 or clusters.count == 0:
        return replace(clusters, ring=ring)
    frame = clusters.frame
    cell_keys = frame.keys(grid.row, grid.col)
    by_key = raster_order(grid)  # the stable argsort of cell_keys (row-major), in two radix passes
    sorted_cell_keys = cell_keys[by_key]
    of_cell = clusters.of_cell.copy()
    keys, label = clusters.keys, clusters.label
    low = population * share
    for _ in range(steps):  # ring steps (1 by default), each one vectorised over all clusters
        # offered cells: (cell, cluster) pairs for the outside inhabited neighbours of every position
        offered_cell, offered_label = [], []
        for d_row, d_col in ALL_OFFSETS[contiguity]:
            found, index = _find(sorted_cell_keys, frame.shift(keys, d_row, d_col))
            cell = by_key[index[found]]
            outside = (of_cell[cell] == 0) & (population[cell] > 0)
            offered_cell.append(cell[outside])
            offered_label.append(label[found][outside])
        cell, owner = np.concatenate(offered_cell), np.concatenate(offered_label)
        if len(cell) == 0:
            break
        core_population = np.bincount(of_cell, weights=population, minlength=clusters.count + 1)
        # each cell once, to the least populated cluster it touches (ties: lowest-numbered)
        first = np.lexsort((owner, core_population[owner], cell))
        cell, owner = cell[first], owner[first]
        single = np.concatenate([[True], cell[1:] != cell[:-1]])
        cell, owner = cell[single], owner[single]
        # per cluster, most low-income first (ties: raster order), then a greedy prefix
        order = np.lexsort((cell_keys[cell], -share[cell], owner))
        cell, owner = cell[order], owner[order]
        core_low = np.bincount(of_cell, weights=low, minlength=clusters.count + 1)
        start = np.searchsorted(owner, owner)  # first offered cell of each one's cluster
        added_population = _cumsum_from(population[cell], start)
        added_low = _cumsum_from(low[cell], start)
        holds = core_low[owner] + added_low > min_share * (core_population[owner] + added_population)
        failures = _cumsum_from((~holds).astype(np.int64), start)
        taken = cell[failures == 0]
        if len(taken) == 0:
            break
        of_cell[taken] = owner[failures == 0]
        ring[taken] = True
        merged = np.concatenate([keys, cell_keys[taken]])
        order = np.argsort(merged, kind="stable")
        keys, label = merged[order], np.concatenate([label, owner[failures == 0]])[order]
    return Clusters(keys, label, clusters.count, of_cell, frame, ring)


def _cumsum_from(values: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each group: ``start[i]`` is where ``i``'s group begins."""
    total = np.cumsum(values)
    before = np.concatenate([np.zeros(1, dtype=total.dtype), total])[start]
    result: np.ndarray = total - before
    return result


def cluster_polygons(grid: Grid, clusters: Clusters, kept: np.ndarray) -> np.ndarray:
    """One (multi)polygon per kept cluster, in the order of ``kept`` (cluster labels).

    The GEOS coverage union of all kept positions at once, split into parts; each part goes to
    the cluster of the position under a point inside it, and parts are regrouped per cluster.
    Clusters whose positions share an edge with another kept cluster's (possible once contour
    rings are drawn) would fuse in that union: those few are unioned cluster by cluster instead,
    in one call on a padded array.
    """
    if len(kept) == 0:
        return np.array([], dtype=object)
    rank = np.full(clusters.count + 1, -1, dtype=np.int64)
    rank[kept] = np.arange(len(kept))
    chosen = rank[clusters.label] >= 0
    touching = _touching(clusters, chosen)
    shapes = np.empty(len(kept), dtype=object)
    alone = chosen & ~touching[clusters.label]
    if alone.any():
        keys, label = clusters.keys[alone], clusters.label[alone]
        x, y = grid.corners(*clusters.frame.row_col(keys))
        boxes = shapely.box(x, y, x + grid.resolution, y + grid.resolution)
        parts = shapely.get_parts(shapely.coverage_union_all(boxes))
        inside = shapely.point_on_surface(parts)
        row = ((grid.north - shapely.get_y(inside)) // grid.resolution).astype(np.int64)
        col = ((shapely.get_x(inside) - grid.west) // grid.resolution).astype(np.int64)
        owner = rank[_lookup(keys, label, clusters.frame.keys(row, col))]
        order = np.argsort(owner, kind="stable")
        present = np.unique(owner)
        dense = np.searchsorted(present, owner[order])  # multipolygons wants indices 0..k-1
        shapes[present] = np.asarray(shapely.multipolygons(shapely.simplify(parts[order], 0), indices=dense))
    fused = chosen & touching[clusters.label]
    if fused.any():
        keys, owner = clusters.keys[fused], rank[clusters.label[fused]]
        order = np.argsort(owner, kind="stable")
        keys, owner = keys[order], owner[order]
        x, y = grid.corners(*clusters.frame.row_col(keys))
        boxes = shapely.box(x, y, x + grid.resolution, y + grid.resolution)
        present, first, counts = np.unique(owner, return_index=True, return_counts=True)
        padded = np.full((len(present), int(counts.max())), None, dtype=object)
        padded[np.repeat(np.arange(len(present)), counts), np.arange(len(owner)) - np.repeat(first, counts)] = boxes
        unions = shapely.simplify(shapely.coverage_union_all(padded, axis=1), 0)
        parts, which = shapely.get_parts(unions, return_index=True)
        shapes[present] = np.asarray(shapely.multipolygons(parts, indices=which), dtype=object)
    return shapes


def _touching(clusters: Clusters, chosen: np.ndarray) -> np.ndarray:
    """Per cluster label: whether one of its chosen positions shares an edge with another's."""
    touching = np.zeros(clusters.count + 1, dtype=bool)
    keys, label = clusters.keys[chosen], clusters.label[chosen]
    for d_row, d_col in HALF_OFFSETS["rook"]:
        found, index = _find(keys, clusters.frame.shift(keys, d_row, d_col))
        other = found & (label[index] != label)
        touching[label[other]] = True
        touching[label[index[other]]] = True
    return touching

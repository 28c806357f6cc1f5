"""Exact figures from household microdata: read, validate, grid, and delimit with no estimate.

Analysts who hold geolocated fiscal households (one row per household: a point, its declared
income, its persons, optionally its consumption units) can apply the decree's rule exactly
(docs/households.md):

1. :func:`read_households` reads CSV, Parquet (or GeoParquet) or GeoPackage points in any CRS,
   counts the unusable rows per reason and stops above
   :data:`~carroyage.settings.HOUSEHOLDS_MAX_BAD_SHARE`.
2. :func:`grid_households` puts every household in its INSPIRE cell with the lower-left rule: the
   cell whose corner is ``floor(x / size) × size, floor(y / size) × size`` in EPSG:3035 metres (in
   the local CRS for the overseas grids), so a point on a west or south edge belongs to the cell
   east or north of it; one in-place sort of packed 64-bit keys (:func:`grouped_order`) orders
   the households by cell, then income, and the cells are the runs. No loop over rows.
3. :func:`exact_cells` gives each cell its persons below the threshold ``population_low`` and its
   exact person-weighted median of declared income per UC; :func:`delimit_households` runs the
   rule on them (with the exact agglomeration median) and replaces every quartier's median by its
   exact person-weighted one. Outputs say ``estimated = false``.
4. :func:`filosofi_cells` writes the Filosofi-like table (``ind``, ``men``, ``men_pauv``,
   ``ind_snv``...) and :func:`apply_secrecy` INSEE's rule that cells under 11 households are not
   published alone.
5. :func:`grid_reference` finds, in the manifest ``carroyage grid`` writes beside such a table,
   the exact agglomeration median, so that delimiting the table reuses it.

Income per consumption unit is the household's income divided by its UC: the ``uc`` column when
given, else the INSEE scale ``1 + 0.5 × others aged 14+ + 0.3 × under-14s`` with ages from an
``under14`` column, else (ages unknown) each other person counting the national average 0.44 UC.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import labels
from ..errors import InputError
from ..files import csv_header, input_kind, parse_decimals
from ..manifest import sha256, shown_path
from ..settings import (
    HOUSEHOLDS_MAX_BAD_SHARE,
    HOUSEHOLDS_THREADS,
    OVERSEAS_GRID_EPSG,
    POVERTY_LINE_FRACTION,
    POVERTY_NATIONAL_MEDIAN_EUR,
    SECRECY_BLOCKS_M,
    SECRECY_MIN_HOUSEHOLDS,
    UNDER14_SHARE_OF_OTHER_PERSONS,
)
from .grid import format_ids
from .readers import CellTable

if TYPE_CHECKING:
    from ..geography import Geography
    from .rules import Rule

Progress = Callable[[str], None]

SUFFIXES = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".gpkg": "layer"}
UC_FIRST, UC_ADULT, UC_CHILD = 1.0, 0.5, 0.3


@dataclass(frozen=True)
class HouseholdColumns:
    """Which columns of a household file hold what.

    Parameters
    ----------
    x, y : str, optional
        Coordinates (default ``x`` and ``y``; a GeoPackage or GeoParquet file uses its geometry).
    income : str
        The household's declared income, € a year (``revenu fiscal déclaré``; not per UC).
    persons : str
        The household's persons (a whole number ≥ 1).
    uc : str, optional
        The household's consumption units; computed with the INSEE scale when absent.
    under14 : str, optional
        Persons under 14, for the INSEE scale when ``uc`` is absent.
    disposable : str, optional
        The household's disposable income, € a year: makes ``men_pauv`` and ``ind_snv`` the
        Filosofi concept (standard of living) in :func:`filosofi_cells`.
    """

    x: str | None = None
    y: str | None = None
    income: str = "income"
    persons: str = "persons"
    uc: str | None = None
    under14: str | None = None
    disposable: str | None = None

    def wanted(self) -> list[str]:
        """The named columns, in order, without repeats."""
        names = [self.x, self.y, self.income, self.persons, self.uc, self.under14, self.disposable]
        return list(dict.fromkeys(n for n in names if n))


@dataclass(frozen=True)
class Households:
    """Usable households, with their coordinates in the grid's CRS.

    Attributes
    ----------
    x, y : numpy.ndarray
        Position in the grid CRS (EPSG:3035, or the local overseas CRS), metres.
    income : numpy.ndarray
        Declared income per UC, € a year.
    persons : numpy.ndarray
        Persons (whole numbers, as floats: the weights of every figure).
    uc : numpy.ndarray
        Consumption units.
    disposable : numpy.ndarray or None
        Disposable income per UC (standard of living), when given.
    grid_epsg : int
        CRS of ``x`` and ``y``.
    facts : dict
        Source, hash, CRS, columns, row counts and bad rows per reason, for the manifest.
    """

    x: np.ndarray
    y: np.ndarray
    income: np.ndarray
    persons: np.ndarray
    uc: np.ndarray
    disposable: np.ndarray | None
    grid_epsg: int
    facts: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def bad(self) -> dict[str, int]:
        """Unusable rows per reason (only reasons that occurred)."""
        return cast(dict[str, int], self.facts.get("bad_rows", {}))


def consumption_units(persons: np.ndarray, under14: np.ndarray | None = None) -> np.ndarray:
    """INSEE consumption units: 1 for the first person, 0.5 per other aged 14+, 0.3 per under-14.

    Without ages each other person counts the national average
    ``0.5 × (1 − p) + 0.3 × p`` with ``p`` = :data:`~carroyage.settings.UNDER14_SHARE_OF_OTHER_PERSONS`.

    Examples
    --------
    >>> consumption_units(np.array([1.0, 4.0]), np.array([0.0, 2.0])).tolist()
    [1.0, 2.1]
    >>> consumption_units(np.array([1.0, 3.0])).round(2).tolist()
    [1.0, 1.88]
    """
    others = np.maximum(np.asarray(persons, dtype=np.float64) - 1, 0)
    if under14 is None:
        share = UNDER14_SHARE_OF_OTHER_PERSONS
        units: np.ndarray = UC_FIRST + others * (UC_ADULT * (1 - share) + UC_CHILD * share)
        return units
    children = np.asarray(under14, dtype=np.float64)
    units = UC_FIRST + (others - children) * UC_ADULT + children * UC_CHILD
    return units


def weighted_median(
    values: np.ndarray, weights: np.ndarray, groups: np.ndarray | None = None, count: int | None = None
) -> np.ndarray:
    """Exact weighted median of each group: the median of the values repeated by their weights.

    With whole weights it equals ``np.median(np.repeat(values, weights))`` (the mean of the two
    middle values for an even total). Groups are ``0 .. count - 1``; negative groups, NaN values
    and weights ≤ 0 are left out; a group with no weight gets NaN.

    Examples
    --------
    >>> v, w = np.array([10.0, 30.0, 20.0, 5.0]), np.array([1.0, 1.0, 2.0, 3.0])
    >>> weighted_median(v, w).tolist(), float(np.median(np.repeat(v, w.astype(int))))
    ([10.0], 10.0)
    >>> weighted_median(v, w, np.array([0, 0, 1, 1]), 3).tolist()
    [20.0, 5.0, nan]
    """
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if groups is None:
        groups = np.zeros(len(values), dtype=np.int64)
        count = 1
    groups = np.asarray(groups, dtype=np.int64)
    count = int(groups.max(initial=-1)) + 1 if count is None else count
    keep = (groups >= 0) & (weights > 0) & ~np.isnan(values)
    values, weights, groups = values[keep] + 0.0, weights[keep], groups[keep]  # + 0.0: no negative zero
    result = grouped_order(groups, count, values, (weights,))
    median = np.full(count, np.nan)
    if len(values):
        median[result.groups] = run_medians(result.values, result.carried[0], result.starts)
    return median


def run_medians(values: np.ndarray, weights: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Weighted median of each run of sorted rows, the runs beginning at ``starts``.

    Positions are counted in whole persons along the cumulative weights (exact up to 2**53), so
    the two middle persons of every run are found by two ``searchsorted`` at once; a block of
    runs at a time (:func:`run_blocks`), so that the cumulative weights stay in cache.
    """
    median = np.empty(len(starts), dtype=np.float64)

    def block(rows_runs: tuple[slice, slice]) -> None:
        rows, runs = rows_runs
        median[runs] = _block_medians(values[rows], weights[rows], starts[runs] - rows.start)

    _each(block, run_blocks(starts, len(values)))
    return median


def _block_medians(values: np.ndarray, weights: np.ndarray, starts: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(weights)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1:] = len(values)
    before = cumulative[starts] - weights[starts]
    total = cumulative[ends - 1] - before
    # 0-based positions of the middle person(s) in the run's repeated sequence
    last = len(values) - 1
    below = np.minimum(np.searchsorted(cumulative, before + np.floor((total - 1) / 2), side="right"), last)
    above = np.minimum(np.searchsorted(cumulative, before + np.floor(total / 2), side="right"), last)
    median: np.ndarray = (values[below] + values[above]) / 2
    return median


def run_blocks(starts: np.ndarray, n: int) -> list[tuple[slice, slice]]:
    """Blocks of whole runs of about :data:`CHUNK_ROWS` rows each: ``(rows, runs)`` slices.

    >>> run_blocks(np.array([0, 3, 4]), 6)
    [(slice(0, 6, None), slice(0, 3, None))]
    """
    cuts = np.unique(np.searchsorted(starts, np.arange(0, n, CHUNK_ROWS), side="left"))
    cuts = np.append(cuts[cuts < len(starts)], len(starts))
    rows = np.append(starts[cuts[:-1]], n)
    return [
        (slice(int(a), int(b)), slice(int(c), int(d)))
        for a, b, c, d in zip(rows[:-1], rows[1:], cuts[:-1], cuts[1:], strict=True)
    ]


MIN_RANK_BITS = 8
"""Fewest bits of value rank worth packing into a sort key (else :func:`numpy.lexsort`)."""
CHUNK_ROWS = 1 << 18
"""Rows per step of the passes that build or scan sort keys: a few arrays of them stay in cache."""


class GroupedOrder(NamedTuple):
    """Rows sorted by group, then value: see :func:`grouped_order`."""

    order: np.ndarray
    """The rows, sorted."""
    starts: np.ndarray
    """Position in ``order`` of each group's first row."""
    groups: np.ndarray
    """The group of each run, ascending."""
    values: np.ndarray
    """The values, sorted (``values[order]``)."""
    carried: tuple[np.ndarray, ...] = ()
    """The ``carry`` arrays, sorted."""


def grouped_order(
    groups: np.ndarray, span: int, values: np.ndarray, carry: tuple[np.ndarray, ...] = ()
) -> GroupedOrder:
    """Rows sorted by group (``0 .. span - 1``), then value, ties in row order.

    One in-place :meth:`numpy.ndarray.sort` of packed 64-bit keys instead of an ``argsort``
    (about four times faster on millions of rows, and no index array beside the keys): the group
    in the high bits, then a rank of the value that never decreases as the value grows
    (:func:`_rank_scale`), then the row number, which the sorted keys give back as the order.
    Runs of rows that share a group and a rank but whose values come out of order are then
    re-sorted on their exact values, so the order is exactly ``np.lexsort((values, groups))``.
    ``values`` must hold no NaN and no negative zero; ``carry`` arrays are sorted alongside.

    Examples
    --------
    >>> groups, values = np.array([1, 0, 1, 0]), np.array([5.0, 7.0, 2.0, 7.0])
    >>> result = grouped_order(groups, 2, values)
    >>> result.order.tolist(), result.values.tolist(), np.lexsort((values, groups)).tolist()
    ([1, 3, 2, 0], [7.0, 7.0, 2.0, 5.0], [1, 3, 2, 0])
    >>> result.starts.tolist(), result.groups.tolist()
    ([0, 2], [0, 1])
    """
    groups = np.asarray(groups, dtype=np.int64)
    return _packed_order(len(values), span, values, lambda part: groups[part], carry)


def _packed_order(
    n: int,
    span: int,
    values: np.ndarray,
    groups_of: Callable[[slice], np.ndarray],
    carry: tuple[np.ndarray, ...] = (),
) -> GroupedOrder:
    """:func:`grouped_order` with the groups computed a chunk of rows at a time by ``groups_of``."""
    empty = np.zeros(0, dtype=np.int64)
    if n == 0:
        return GroupedOrder(empty, empty, empty, values[:0], tuple(c[:0] for c in carry))
    index_bits = max(1, (n - 1).bit_length())
    rank_bits = 64 - index_bits - max(1, (max(span, 1) - 1).bit_length())
    parts = _chunks(n)
    if rank_bits < MIN_RANK_BITS:
        all_groups = np.concatenate([groups_of(part) for part in parts])
        order = np.lexsort((values, all_groups))
        starts = _run_starts(all_groups[order])
        sorted_carry = tuple(c[order] for c in carry)
        return GroupedOrder(order, starts, all_groups[order[starts]], values[order], sorted_carry)
    scale = _rank_scale(values, rank_bits)
    index_shift, group_shift = np.uint64(index_bits), np.uint64(rank_bits + index_bits)
    index_mask = np.uint64((1 << index_bits) - 1)
    key = np.empty(n, dtype=np.uint64)

    def build(part: slice) -> None:  # a chunk at a time: in cache, and no full-size temporary
        chunk = key[part]
        chunk[...] = groups_of(part)
        chunk <<= group_shift
        ranks = _value_ranks(values[part], scale)
        ranks <<= index_shift
        chunk |= ranks
        chunk |= np.arange(part.start, part.stop, dtype=np.uint64)

    _each(build, parts)
    _sort_in_place(key)
    first = np.empty(n, dtype=bool)
    sorted_values = np.empty(n, dtype=np.float64)
    sorted_carry = tuple(np.empty(n, dtype=c.dtype) for c in carry)

    def scan(part: slice) -> None:  # group runs from the keys' high bits; values gathered by their low bits
        high = key[max(part.start - 1, 0) : part.stop] >> group_shift
        if part.start == 0:
            first[0] = True
            np.not_equal(high[1:], high[:-1], out=first[1 : part.stop])
        else:
            np.not_equal(high[1:], high[:-1], out=first[part])
        rows = key[part] & index_mask
        sorted_values[part] = values[rows]
        for source, target in zip(carry, sorted_carry, strict=True):
            target[part] = source[rows]

    _each(scan, parts)
    starts = np.flatnonzero(first)
    run_groups = (key[starts] >> group_shift).view(np.int64)
    _repair_ties(key, index_shift, first, sorted_values, sorted_carry)
    key &= index_mask
    return GroupedOrder(key.view(np.int64), starts, run_groups, sorted_values, sorted_carry)


def _threads() -> int:
    """Threads for the steps on blocks of rows: :data:`~carroyage.settings.HOUSEHOLDS_THREADS`, at most the cores."""
    return max(1, min(HOUSEHOLDS_THREADS, os.cpu_count() or 1))


def _each(function: Callable[[Any], None], items: list[Any]) -> None:
    """Call ``function`` on every item, on :func:`_threads` threads; the items write disjoint rows."""
    if _threads() < 2 or len(items) < 2:
        for item in items:
            function(item)
        return
    with ThreadPoolExecutor(_threads()) as pool:
        for _ in pool.map(function, items):  # re-raises a worker's error here
            pass


def _sort_in_place(key: np.ndarray) -> None:
    """Sort, one segment per thread: a partition puts every key in its segment, then each is sorted."""
    threads = _threads()
    if threads < 2 or len(key) < threads * CHUNK_ROWS:
        key.sort()
        return
    bounds = [len(key) * i // threads for i in range(threads + 1)]
    key.partition(bounds[1:-1])
    _each(np.ndarray.sort, [key[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)])


def _run_starts(sorted_groups: np.ndarray) -> np.ndarray:
    first = np.empty(len(sorted_groups), dtype=bool)
    first[:1] = True
    np.not_equal(sorted_groups[1:], sorted_groups[:-1], out=first[1:])
    return np.flatnonzero(first)


def _repair_ties(
    key: np.ndarray, index_shift: np.uint64, first: np.ndarray, values: np.ndarray, carried: tuple[np.ndarray, ...]
) -> None:
    """Re-sort, in place, the runs of equal group and rank whose exact values are out of order.

    ``key`` holds the sorted packed keys (group and rank above ``index_shift``), ``first`` marks
    each group's first row. A run's bounds are two binary searches in the sorted keys, so only the
    rows of the runs out of order are touched.
    """
    if len(values) < 2:
        return
    disorder = values[1:] < values[:-1]
    disorder &= ~first[1:]
    at = np.flatnonzero(disorder)
    if not len(at):
        return
    index_mask = np.uint64((1 << int(index_shift)) - 1)
    run_key = np.unique(key[at] & ~index_mask)  # group and rank of each run out of order
    low = np.searchsorted(key, run_key, side="left")
    high = np.searchsorted(key, run_key | index_mask, side="right")
    sizes = high - low
    run = np.repeat(np.arange(len(low)), sizes)
    rows = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes) + np.repeat(low, sizes)
    within = rows[np.lexsort((values[rows], run))]
    for array in (key, values, *carried):
        array[rows] = array[within]


RankScale = tuple[np.uint64, np.uint64, np.uint64, bool]


def _rank_scale(values: np.ndarray, bits: int) -> RankScale:
    """How :func:`_value_ranks` maps values to ``bits`` bits: ``(low, high, shift, flip)``.

    The IEEE pattern of a non-negative float orders like the float (negative values are flipped
    so that all patterns do). Patterns are clipped to the 0.5–99.5 % quantiles of a sample, so
    that the bits resolve the bulk of the values rather than a few extreme ones: values beyond
    share the end ranks, and their order comes from the exact re-sort of ties.
    """
    flip = bool(np.signbit(values).any())
    patterns = _patterns(values[:: max(1, len(values) // 100_000)], flip)
    bounds = (len(patterns) - 1) * 5 // 1000, (len(patterns) - 1) * 995 // 1000
    low, high = np.partition(patterns, bounds)[list(bounds)]
    shift = max(0, int(high - low).bit_length() - bits)
    return np.uint64(low), np.uint64(high), np.uint64(shift), flip


def _patterns(values: np.ndarray, flip: bool) -> np.ndarray:
    patterns = values.view(np.uint64)
    if flip:  # negatives: every bit flipped; the others: the sign bit set
        patterns = np.where(values < 0, ~patterns, patterns | np.uint64(1 << 63))
    return patterns


def _value_ranks(values: np.ndarray, scale: RankScale) -> np.ndarray:
    low, high, shift, flip = scale
    ranks: np.ndarray = np.clip(_patterns(values, flip), low, high)
    ranks -= low
    ranks >>= shift
    return ranks


def global_weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Exact weighted median of all rows without sorting them all.

    A sample brackets the median; one pass counts the weight below the bracket, and only the rows
    inside it are sorted (the whole set when the bracket misses).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> v, w = rng.lognormal(10, 0.5, 100_001), rng.integers(1, 6, 100_001).astype(float)
    >>> global_weighted_median(v, w) == float(np.median(np.repeat(v, w.astype(int))))
    True
    """
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if len(values) < 200_000:
        return float(weighted_median(values, weights)[0])
    total = float(weights.sum())
    low_position, high_position = math.floor((total - 1) / 2), math.floor(total / 2)
    step = max(1, len(values) // 100_000)
    sample_values, sample_weights = values[::step], weights[::step]
    order = np.argsort(sample_values)
    share = np.cumsum(sample_weights[order]) / sample_weights.sum()
    for margin in (0.01, 0.05):
        lo = float(sample_values[order][min(int(np.searchsorted(share, 0.5 - margin)), len(order) - 1)])
        hi = float(sample_values[order][min(int(np.searchsorted(share, 0.5 + margin)), len(order) - 1)])
        inside = (values >= lo) & (values <= hi)
        below = float(weights[values < lo].sum())
        inside_weight = float(weights[inside].sum())
        if below <= low_position and below + inside_weight > high_position:
            v, w = values[inside], weights[inside]
            sorted_order = np.argsort(v, kind="stable")
            v, cumulative = v[sorted_order], np.cumsum(w[sorted_order])
            a = np.searchsorted(cumulative, low_position - below, side="right")
            b = np.searchsorted(cumulative, high_position - below, side="right")
            return float((v[a] + v[b]) / 2)
    return float(weighted_median(values, weights)[0])


# -- reading --------------------------------------------------------------------------------------


def read_households(
    path: str | Path,
    columns: HouseholdColumns | None = None,
    crs: str | int | None = None,
    *,
    grid_epsg: int | None = None,
    max_bad_share: float = HOUSEHOLDS_MAX_BAD_SHARE,
) -> Households:
    """Read household microdata: CSV, Parquet (GeoParquet) or GeoPackage points, any CRS.

    Only the named columns are read; the file is hashed (for the manifest) while it is parsed.

    Parameters
    ----------
    path : str or Path
        The file; its suffix chooses the reader.
    columns : HouseholdColumns, optional
        Column names (defaults ``x``, ``y``, ``income``, ``persons``).
    crs : str or int, optional
        CRS of the coordinates (``EPSG:2154``, ``2154``...). Required for CSV; a GeoPackage, a
        GeoParquet file or a file written by ``carroyage synth`` carries its own.
    grid_epsg : int, optional
        CRS of the grid; default EPSG:3035, or the input's CRS when it is an overseas grid's
        (:data:`~carroyage.settings.OVERSEAS_GRID_EPSG`).
    max_bad_share : float
        Largest share of unusable rows accepted.

    Returns
    -------
    Households

    Raises
    ------
    InputError
        Missing or unreadable file, missing column or CRS, or too many unusable rows (one line
        naming the share, the limit and the count per reason).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "m.csv").write_text("x,y,income,persons\\n3763250,2999050,30000,2\\n,,1,1\\n")
    >>> h = read_households(folder / "m.csv", crs="EPSG:3035", max_bad_share=0.6)
    >>> len(h), h.bad, round(float(h.income[0]))
    (1, {'missing_coordinates': 1}, 20833)
    """
    path = Path(path)
    columns = columns or HouseholdColumns()
    name = str(path)
    kind = input_kind(path, SUFFIXES, "one row per household")
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(sha256, path)  # hashed while the file is parsed: both release the GIL
        read = _READERS[kind](path, columns)
        source_crs = crs if crs is not None else read.crs
        if source_crs is None:
            raise InputError(
                f"{name} : aucun système de coordonnées pour les points ; attendu --crs EPSG:XXXX (par ex. EPSG:2154, "
                "le Lambert-93)"
            )
        wanted = {"income": (columns.income, "--income"), "persons": (columns.persons, "--persons")}
        used = {"x": "geometry", "y": "geometry"}
        if read.points is None:
            wanted = {"x": (columns.x or "x", "--x"), "y": (columns.y or "y", "--y"), **wanted}
            used = {"x": columns.x or "x", "y": columns.y or "y"}
        for key in ("uc", "under14", "disposable"):
            if getattr(columns, key):
                wanted[key] = (getattr(columns, key), f"--{key}")
        arrays = _numbers(read, wanted, name)
        x, y = read.points if read.points is not None else (arrays.pop("x"), arrays.pop("y"))
        del read
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise
        facts: dict[str, object] = {
            "path": shown_path(path),
            "sha256": digest.result(),
            "format": kind,
            "columns": {**used, **{k: v for k, v in vars(columns).items() if v and k not in ("x", "y")}},
        }
    return households_from_arrays(
        x,
        y,
        arrays["income"],
        arrays["persons"],
        crs=source_crs,
        uc=arrays.get("uc"),
        under14=arrays.get("under14"),
        disposable=arrays.get("disposable"),
        grid_epsg=grid_epsg,
        max_bad_share=max_bad_share,
        facts=facts,
        source=name,
        overwrite=True,
    )


def households_from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    income: np.ndarray,
    persons: np.ndarray,
    *,
    crs: str | int = "EPSG:3035",
    uc: np.ndarray | None = None,
    under14: np.ndarray | None = None,
    disposable: np.ndarray | None = None,
    grid_epsg: int | None = None,
    max_bad_share: float = HOUSEHOLDS_MAX_BAD_SHARE,
    facts: dict[str, object] | None = None,
    source: str = "households",
    overwrite: bool = False,
) -> Households:
    """Validate household arrays, project them to the grid CRS and keep the usable rows.

    ``income`` and ``disposable`` are the household's incomes (€ a year), divided here by its UC
    (in place, when float64 arrays are given with ``overwrite``: no copy of millions of rows).
    See :func:`read_households` for the rest. Every row is checked in one fused pass per
    condition; the reasons (:data:`carroyage.labels.BAD_ROW_REASONS`) are worked out on the unusable rows alone.

    Examples
    --------
    >>> h = households_from_arrays(np.array([3763250.0]), np.array([2999050.0]), np.array([30000.0]),
    ...                            np.array([2.0]), uc=np.array([1.5]))
    >>> float(h.income[0]), h.grid_epsg
    (20000.0, 3035)
    """
    import pyproj

    try:
        source_crs = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise InputError(
            f"{source} : système de coordonnées {crs!r} inconnu ({str(exc).splitlines()[0]}) ; "
            "attendu par ex. EPSG:2154"
        ) from exc
    epsg = source_crs.to_epsg()
    target = grid_epsg or (epsg if epsg in OVERSEAS_GRID_EPSG else 3035)
    given = {
        name: None if values is None else np.asarray(values, dtype=np.float64)
        for name, values in (("x", x), ("y", y), ("income", income), ("persons", persons), ("uc", uc),
                             ("under14", under14), ("disposable", disposable))
    }  # fmt: skip
    values = {name: array for name, array in given.items() if array is not None}
    rows = len(values["x"])
    if rows == 0:
        raise InputError(f"{source} : aucun ménage ; attendu au moins une ligne de données")
    grid_x, grid_y, areas = _project(values["x"], values["y"], source_crs, target)
    usable = np.empty(rows, dtype=bool)

    def check(part: slice) -> None:  # every check on a chunk of rows at a time: no full-size temporaries
        chunk = {name: array[part] for name, array in values.items()}
        with np.errstate(invalid="ignore"):
            usable[part] = _placed(chunk["x"], chunk["y"], grid_x[part], grid_y[part], areas) & _usable_values(chunk)

    _each(check, _chunks(rows))
    bad = np.flatnonzero(~usable)
    counts = {}
    if len(bad):
        subset = {name: array[bad] for name, array in values.items()}
        with np.errstate(invalid="ignore"):
            placed = _placed(subset["x"], subset["y"], grid_x[bad], grid_y[bad], areas)
        counts = _bad_reasons(subset, placed)
    if len(bad) / rows > max_bad_share or len(bad) == rows:
        raise InputError(
            labels.TOO_MANY_BAD_HOUSEHOLDS.format(
                path=source,
                share=labels.percent(len(bad) / rows),
                rows=labels.integer(rows),
                detail=_reasons_text(counts),
                limit=labels.percent(max_bad_share, 0),
            )
        )
    keep = usable if len(bad) else slice(None)
    persons_kept = values["persons"][keep]
    if "uc" in values:
        units = values["uc"][keep]
        uc_method = "given (column)"
    elif "under14" in values:
        units = consumption_units(persons_kept, values["under14"][keep])
        uc_method = "INSEE scale from persons and under-14s: 1 + 0.5 × others aged 14+ + 0.3 × under-14s"
    else:
        units = consumption_units(persons_kept)
        uc_method = (
            "INSEE scale, ages unknown: 1 + 0.44 × (persons − 1), each other person taken as under 14 "
            f"with the national share {UNDER14_SHARE_OF_OTHER_PERSONS}"
        )
    per_uc = _per_uc(values, "income", keep, units, overwrite)
    per_uc_disposable = _per_uc(values, "disposable", keep, units, overwrite) if "disposable" in values else None
    record: dict[str, object] = {
        **(facts or {"path": source}),
        "crs": source_crs.to_string(),
        "grid_epsg": int(target),
        "rows": rows,
        "households": rows - len(bad),
        "persons": float(persons_kept.sum()),
        "bad_rows": counts,
        "bad_share": round(len(bad) / rows, 6),
        "max_bad_share": max_bad_share,
        "consumption_units": uc_method,
        "income_concept": "declared" + (" and disposable" if disposable is not None else ""),
    }
    return Households(grid_x[keep], grid_y[keep], per_uc, persons_kept, units, per_uc_disposable, int(target), record)


def _per_uc(
    values: dict[str, np.ndarray], name: str, keep: np.ndarray | slice, units: np.ndarray, overwrite: bool
) -> np.ndarray:
    """Income per UC of the kept rows; in place on the income array when it may be overwritten."""
    income = values[name][keep]
    if isinstance(keep, slice):  # the caller's own array: divided in place only if it is ours to change
        alone = not any(np.may_share_memory(income, other) for key, other in values.items() if key != name)
        overwrite = overwrite and alone
    per_uc: np.ndarray = np.divide(income, units, out=income if overwrite or not isinstance(keep, slice) else None)
    per_uc += 0.0  # no negative zero: its bit pattern would sort last
    return per_uc


Area = tuple[tuple[float, float, float, float] | None, bool]
"""Bounds of a CRS's area of use (``None``: unknown) and whether they apply to the grid coordinates."""


def _project(
    x: np.ndarray, y: np.ndarray, source_crs: object, target: int
) -> tuple[np.ndarray, np.ndarray, list[Area]]:
    """Coordinates in the grid CRS, and the areas of use (:func:`_placed`) points must lie in.

    A missing coordinate is outside every area (NaN compares false), and so is an infinite one
    (a failed projection); :func:`_bad_reasons` tells missing and outside apart.
    """
    import pyproj

    source = cast(pyproj.CRS, source_crs)
    areas: list[Area] = [(_area_bounds(source), False)]
    if source.to_epsg() == target:
        return x, y, areas
    grid_crs = pyproj.CRS.from_epsg(target)
    transformer = pyproj.Transformer.from_crs(source, grid_crs, always_xy=True)
    grid_x, grid_y = (np.asarray(a, dtype=np.float64) for a in transformer.transform(x, y, errcheck=False))
    return grid_x, grid_y, [*areas, (_area_bounds(grid_crs), True)]


def _placed(x: np.ndarray, y: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray, areas: list[Area]) -> np.ndarray:
    """Whether each point lies within every area (in its own coordinates, or the grid's)."""
    placed = np.ones(len(x), dtype=bool)
    for bounds, on_grid in areas:
        px, py = (grid_x, grid_y) if on_grid else (x, y)
        if bounds is None:  # unknown area: only finite coordinates
            placed &= np.isfinite(px) & np.isfinite(py)
            continue
        west, south, east, north = bounds
        placed &= px >= west
        placed &= px <= east
        placed &= py >= south
        placed &= py <= north
    return placed


def _area_bounds(crs: object) -> tuple[float, float, float, float] | None:
    """Bounds of the CRS's area of use in its own coordinates (None: unknown or across the antimeridian)."""
    import pyproj

    crs = cast(pyproj.CRS, crs)
    area = crs.area_of_use
    if area is None or area.west > area.east:
        return None
    if crs.is_geographic:
        return area.west, area.south, area.east, area.north
    to_crs = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    west, south, east, north = to_crs.transform_bounds(area.west, area.south, area.east, area.north, densify_pts=21)
    return float(west), float(south), float(east), float(north)


def _chunks(n: int) -> list[slice]:
    """Slices of :data:`CHUNK_ROWS` rows covering ``0 .. n``."""
    return [slice(i, min(i + CHUNK_ROWS, n)) for i in range(0, n, CHUNK_ROWS)]


def _usable_values(values: dict[str, np.ndarray]) -> np.ndarray:
    """Whether each row's income, persons and UC are usable (NaN and infinities fail every test)."""
    usable = _in_range(values["income"], 0.0)
    if "disposable" in values:
        usable &= _in_range(values["disposable"], 0.0)
    persons = values["persons"]
    usable &= _in_range(persons, 1.0)
    usable &= np.floor(persons) == persons
    if "uc" in values:
        usable &= _in_range(values["uc"], 1.0)
    elif "under14" in values:
        usable &= _valid_under14(values["under14"], persons)
    return usable


def _in_range(values: np.ndarray, low: float) -> np.ndarray:
    """``low <= values < inf``: false for NaN."""
    inside: np.ndarray = values >= low
    inside &= values < np.inf
    return inside


def _valid_under14(under14: np.ndarray, persons: np.ndarray) -> np.ndarray:
    valid: np.ndarray = (under14 >= 0) & (under14 <= persons - 1) & (under14 == np.floor(under14))
    return valid


def _bad_reasons(values: dict[str, np.ndarray], placed: np.ndarray) -> dict[str, int]:
    """Unusable rows per reason, each row counted once, under the first check it fails."""
    income, persons = values["income"], values["persons"]
    disposable = values.get("disposable")
    missing_xy = ~(np.isfinite(values["x"]) & np.isfinite(values["y"]))
    with np.errstate(invalid="ignore"):
        checks = [
            ("missing_coordinates", missing_xy),
            ("outside_area", ~placed),
            ("missing_income", ~np.isfinite(income) | (~np.isfinite(disposable) if disposable is not None else False)),
            ("negative_income", (income < 0) | ((disposable < 0) if disposable is not None else False)),
            ("missing_persons", np.isnan(persons)),
            ("negative_persons", persons < 0),
            ("invalid_persons", ~(_in_range(persons, 1.0) & (np.floor(persons) == persons))),
        ]
        if "uc" in values:
            checks.append(("invalid_uc", ~_in_range(values["uc"], 1.0)))
        elif "under14" in values:
            checks.append(("invalid_uc", ~_valid_under14(values["under14"], persons)))
    counted = np.zeros(len(income), dtype=bool)
    counts: dict[str, int] = {}
    for reason, mask in checks:
        fresh = np.asarray(mask, dtype=bool) & ~counted
        number = int(np.count_nonzero(fresh))
        if number:
            counts[reason] = number
        counted |= fresh
    return counts


def _numbers(read: _Read, wanted: dict[str, tuple[str, str]], source: str) -> dict[str, np.ndarray]:
    """The wanted columns (``key: (column, option)``) as float64 arrays; one named twice is read once."""
    lower = {c.lower(): c for c in read.columns}
    names = {}
    for key, (column, option) in wanted.items():
        name = column if column in read.columns else lower.get(column.lower())
        if name is None:
            raise InputError(
                f"{source} : pas de colonne {column!r} ; attendu le nom d'une colonne du fichier avec {option} "
                f"({', '.join(read.names)})"
            )
        names[key] = name
    converted = {name: _number(read.columns[name]) for name in dict.fromkeys(names.values())}
    return {key: converted[name] for key, name in names.items()}


def _number(column: np.ndarray | pa.ChunkedArray) -> np.ndarray:
    """A column as float64: text parsed (decimal comma too), nulls and non-numbers NaN."""
    if isinstance(column, np.ndarray):
        return column
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        return parse_decimals(column.combine_chunks().cast(pa.string()))
    if column.null_count or not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return np.asarray(pc.cast(column, pa.float64()).to_numpy(), dtype=np.float64)
    values = np.empty(len(column), dtype=np.float64)  # numpy-owned: Arrow's buffers go with the table
    _fill(values, 0, column)  # chunk by chunk: no concatenated copy first
    return values


Columns = dict[str, np.ndarray | pa.ChunkedArray]


@dataclass(frozen=True)
class _Read:
    """What a reader gives: the wanted columns by their names in the file, every name, points, CRS."""

    columns: Columns
    names: list[str]
    points: tuple[np.ndarray, np.ndarray] | None = None
    crs: str | None = None


def _read_csv(path: Path, columns: HouseholdColumns) -> _Read:
    import pyarrow.csv as pacsv

    raw, delimiter = csv_header(path)
    names = [c.strip() for c in raw]
    wanted = [n for n in names if n.lower() in {w.lower() for w in [*columns.wanted(), "x", "y"]}]
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in wanted}, include_columns=wanted, strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path} : CSV illisible ({str(exc).strip().splitlines()[0]}) ; attendu un CSV de ménages"
        ) from exc
    return _Read({name: table.column(name) for name in table.column_names}, names)


def _read_parquet(path: Path, columns: HouseholdColumns) -> _Read:
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
        schema = source.schema_arrow
        present = {n.lower(): n for n in schema.names}
        wanted = [present[w.lower()] for w in [*columns.wanted(), "x", "y"] if w.lower() in present]
        use_geometry = columns.x is None and "x" not in present and "geometry" in present
        read = _row_groups(path, source, list(dict.fromkeys(wanted + (["geometry"] if use_geometry else []))))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(
            f"{path} : fichier Parquet illisible ({str(exc).strip().splitlines()[0]}) ; attendu un Parquet de ménages"
        ) from exc
    metadata = schema.metadata or {}
    crs = None
    if b"carroyage" in metadata:
        crs = json.loads(metadata[b"carroyage"]).get("crs")
    elif b"geo" in metadata:
        geo = json.loads(metadata[b"geo"])
        column = geo.get("columns", {}).get(geo.get("primary_column", "geometry"), {})
        crs = json.dumps(column["crs"]) if column.get("crs") else "OGC:CRS84"
    points = None
    if use_geometry:
        points = _wkb_points(cast(pa.ChunkedArray, read.pop("geometry")).combine_chunks())
    return _Read(read, list(schema.names), points, crs)


def _row_groups(path: Path, source: Any, names: list[str]) -> Columns:
    """Columns of a Parquet file read a row group at a time; numbers straight into float64 arrays.

    Only a few row groups' Arrow buffers live at once (Arrow's pool reuses them), so a file of
    millions of households takes its numbers' size in memory, not twice that. Row groups are read
    on :func:`_threads` threads, each with its own handle on the file.
    """
    import pyarrow.parquet as pq

    schema = source.schema_arrow
    numeric = {
        n for n in names if pa.types.is_integer(schema.field(n).type) or pa.types.is_floating(schema.field(n).type)
    }
    sizes = [source.metadata.row_group(i).num_rows for i in range(source.num_row_groups)]
    offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    arrays = {name: np.empty(int(offsets[-1]), dtype=np.float64) for name in names if name in numeric}
    chunks: list[dict[str, list[pa.Array]]] = [{} for _ in sizes]
    handles = threading.local()

    def read(group: int) -> None:
        if not hasattr(handles, "file"):
            handles.file = pq.ParquetFile(path)
        table = handles.file.read_row_group(group, columns=names, use_threads=_threads() < 2)
        for name in names:
            if name in numeric:
                _fill(arrays[name], int(offsets[group]), table.column(name))
            else:
                chunks[group][name] = table.column(name).chunks

    _each(read, list(range(len(sizes))))
    kept: Columns = {
        name: pa.chunked_array([c for group in chunks for c in group[name]], schema.field(name).type)
        for name in names
        if name not in numeric
    }
    return {**arrays, **kept}


def _fill(out: np.ndarray, start: int, column: pa.ChunkedArray) -> None:
    """Copy a numeric column into ``out`` from ``start`` (nulls become NaN)."""
    for chunk in column.chunks:
        out[start : start + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
        start += len(chunk)


def _read_layer(path: Path, columns: HouseholdColumns) -> _Read:
    import pyogrio

    try:
        info = pyogrio.read_info(path)
        fields = {str(f).lower(): str(f) for f in info["fields"]}
        wanted = [fields[w.lower()] for w in columns.wanted() if w.lower() in fields]
        meta, table = pyogrio.read_arrow(path, columns=wanted, read_geometry=columns.x is None)
    except Exception as exc:  # pyogrio raises several DataSource errors; all mean "not readable"
        raise InputError(
            f"{path} : fichier vectoriel illisible ({str(exc).strip().splitlines()[0]}) ; "
            "attendu un GeoPackage de points"
        ) from exc
    points = None
    if columns.x is None:
        geometry = meta.get("geometry_name") or "wkb_geometry"
        points = _wkb_points(table.column(geometry).combine_chunks())
    read = {name: table.column(name) for name in wanted}
    return _Read(read, [str(f) for f in info["fields"]], points, cast(str | None, info.get("crs")))


_READERS: dict[str, Callable[[Path, HouseholdColumns], _Read]] = {
    "csv": _read_csv,
    "parquet": _read_parquet,
    "layer": _read_layer,
}


def _wkb_points(wkb: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of WKB points, decoded in numpy when they are all plain 2D little-endian points.

    Null or empty geometries give NaN (counted as missing coordinates); anything else goes through
    shapely.
    """
    wkb = wkb.cast(pa.large_binary())
    n = len(wkb)
    if n and not wkb.null_count:
        _, offsets_buffer, data_buffer = wkb.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=np.int64, count=n + 1, offset=wkb.offset * 8)
        if (np.diff(offsets) == 21).all():
            raw = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(n, 21)
            kind = raw[:, 1:5].copy().view("<u4").ravel()
            if (raw[:, 0] == 1).all() and (kind == 1).all():
                coords = raw[:, 5:21].copy().view("<f8")
                return coords[:, 0].copy(), coords[:, 1].copy()
    import shapely

    shapes = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
    return np.asarray(shapely.get_x(shapes), dtype=np.float64), np.asarray(shapely.get_y(shapes), dtype=np.float64)


# -- gridding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gridded:
    """Households in their cells, sorted by cell, then declared income per UC.

    Attributes
    ----------
    households : Households
    resolution : int
        Cell size, metres (200 for INSEE's grid, 1000 for its 1 km cells...).
    x, y : numpy.ndarray
        Lower-left corner of each inhabited cell.
    order : numpy.ndarray
        Households sorted by cell, then declared income per UC (ties in their file order).
    starts : numpy.ndarray
        Position in ``order`` of each cell's first household.
    income_sorted, persons_sorted : numpy.ndarray
        ``households.income[order]`` and ``households.persons[order]``: every exact figure is a
        sum over the cells' runs of these (no scatter, no further gather). Persons are bytes
        (``uint8``) when every household has at most 255, else float64.
    """

    households: Households
    resolution: int
    x: np.ndarray
    y: np.ndarray
    order: np.ndarray
    starts: np.ndarray
    income_sorted: np.ndarray
    persons_sorted: np.ndarray

    @property
    def cells(self) -> int:
        """Number of inhabited cells."""
        return len(self.x)

    @cached_property
    def counts(self) -> np.ndarray:
        """Households in each cell."""
        return np.diff(self.starts, append=len(self.order))

    @cached_property
    def cell(self) -> np.ndarray:
        """Cell of each household, ``0 .. cells - 1``, in the households' own order."""
        cell = np.empty(len(self.order), dtype=np.int64)
        cell[self.order] = self.sorted_cells()
        return cell

    def sorted_cells(self) -> np.ndarray:
        """Cell of each household in sorted order (``order``)."""
        return np.repeat(np.arange(self.cells, dtype=np.int64), self.counts)

    def ids(self) -> np.ndarray:
        """INSPIRE ids of the cells."""
        return format_ids(self.x, self.y, self.resolution, self.households.grid_epsg)

    def id_array(self) -> pa.Array:
        """INSPIRE ids of the cells as Arrow strings, as :meth:`ids` but with no Python string per cell.

        >>> h = households_from_arrays(np.array([3763210.0, 3763410]), np.full(2, 2999010.0), np.ones(2), np.ones(2))
        >>> grid_households(h).id_array().to_pylist()
        ['CRS3035RES200mN2999000E3763200', 'CRS3035RES200mN2999000E3763400']
        """
        return inspire_ids(self.x, self.y, self.resolution, self.households.grid_epsg)

    def per_cell(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum of ``weights`` (in the households' order; default one per household) over each cell."""
        if weights is None:
            return self.counts.astype(np.float64)
        summed: np.ndarray = np.bincount(self.cell, weights=weights, minlength=self.cells).astype(np.float64)
        return summed

    def sum_sorted(self, values: np.ndarray | Callable[[slice], np.ndarray]) -> np.ndarray:
        """Sum over each cell of ``values`` given in sorted order (booleans count).

        ``values`` may be a function of a slice of sorted rows, so that an expression of
        millions of rows (``lambda rows: persons[rows] == 1``) is never made whole. A block of
        whole cells at a time, converted to float64 in cache: ``reduceat`` casting bytes or
        booleans as it goes is several times slower.
        """
        summed = np.empty(self.cells, dtype=np.float64)

        def block(rows_runs: tuple[slice, slice]) -> None:
            rows, runs = rows_runs
            part = (values(rows) if callable(values) else values[rows]).astype(np.float64, copy=False)
            summed[runs] = np.add.reduceat(part, self.starts[runs] - rows.start)

        _each(block, run_blocks(self.starts, len(self.order)))
        return summed

    def medians(self) -> np.ndarray:
        """Exact person-weighted median of declared income per UC in each cell."""
        return run_medians(self.income_sorted, self.persons_sorted, self.starts)


def inspire_ids(x: np.ndarray, y: np.ndarray, resolution: int, epsg: int) -> pa.Array:
    """INSPIRE ids ``CRS{epsg}RES{r}mN{y}E{x}`` of lower-left corners, as an Arrow string array.

    When every ``y`` and every ``x`` has the same number of digits (a national grid's usual case)
    the ids are written digit by digit into one byte buffer; otherwise Arrow casts the numbers.
    """
    x, y = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    prefix = np.frombuffer(f"CRS{epsg}RES{resolution}mN".encode(), dtype=np.uint8)
    widths = [_common_width(v) for v in (y, x)]
    if not len(x) or None in widths:
        row, column = (pc.cast(pa.array(v), pa.string()) for v in (y, x))
        return pc.binary_join_element_wise(pa.scalar(prefix.tobytes().decode()), row, "E", column, "")
    wy, wx = cast(list[int], widths)
    text = np.empty((len(x), len(prefix) + wy + 1 + wx), dtype=np.uint8)
    text[:, : len(prefix)] = prefix
    _write_digits(text[:, len(prefix) : len(prefix) + wy], y)
    text[:, len(prefix) + wy] = ord("E")
    _write_digits(text[:, len(prefix) + wy + 1 :], x)
    offsets = np.arange(len(x) + 1, dtype=np.int32) * text.shape[1]
    return pa.Array.from_buffers(pa.string(), len(x), [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def _common_width(values: np.ndarray) -> int | None:
    """The number of digits every value has, if they are non-negative and all have the same."""
    if not len(values) or values.min() < 0:
        return None
    low, high = len(str(int(values.min()))), len(str(int(values.max())))
    return low if low == high else None


def _write_digits(out: np.ndarray, values: np.ndarray) -> None:
    """Decimal digits of ``values`` (all of ``out.shape[1]`` digits) as ASCII, one column per digit."""
    rest = values.astype(np.uint32 if values.max(initial=0) < 2**32 else np.uint64)  # 32-bit division is faster
    digit = np.empty_like(rest)
    for column in range(out.shape[1] - 1, -1, -1):  # over the digits, not the rows
        np.divmod(rest, 10, out=(rest, digit))
        out[:, column] = digit
    out += ord("0")


def grid_households(households: Households, resolution: int = 200) -> Gridded:
    """Put each household in its cell (lower-left rule) and sort them for exact medians.

    Each household's cell is its position ``row × width + column`` in the frame of the data
    (integers from ``floor``); one :func:`grouped_order` sorts the households by that position,
    then income, and the inhabited cells are the runs of equal positions.

    Examples
    --------
    >>> h = households_from_arrays(np.array([3763200.0, 3763399.9, 3763400.0]), np.full(3, 2999000.0),
    ...                            np.array([1.0, 2.0, 3.0]), np.ones(3))
    >>> g = grid_households(h)
    >>> g.ids().tolist(), g.cell.tolist()
    (['CRS3035RES200mN2999000E3763200', 'CRS3035RES200mN2999000E3763400'], [0, 0, 1])
    """
    if resolution <= 0 or resolution != int(resolution):
        raise InputError(f"--resolution {resolution} : attendu un nombre entier de mètres > 0")
    x, y = households.x, households.y
    c0, r0 = math.floor(x.min() / resolution), math.floor(y.min() / resolution)
    width = math.floor(x.max() / resolution) - c0 + 1
    span = (math.floor(y.max() / resolution) - r0 + 1) * width

    def positions(part: slice) -> np.ndarray:
        return _frame_positions(x[part], y[part], resolution, c0, r0, width)

    frame_positions = None
    persons = _compact(households.persons)
    if max(1, (span - 1).bit_length()) + max(1, (len(x) - 1).bit_length()) > 64 - MIN_RANK_BITS:
        frame_positions, dense = np.unique(positions(slice(None)), return_inverse=True)  # a sparse, wide frame
        span = len(frame_positions)
        result = grouped_order(dense, span, households.income, (persons,))
    else:
        result = _packed_order(len(x), span, households.income, positions, (persons,))
    keys = result.groups if frame_positions is None else frame_positions[result.groups]
    cell_x = (keys % width + c0) * resolution
    cell_y = (keys // width + r0) * resolution
    sorted_persons = result.carried[0]
    return Gridded(households, resolution, cell_x, cell_y, result.order, result.starts, result.values, sorted_persons)


def _compact(persons: np.ndarray) -> np.ndarray:
    """Persons as bytes when every household has at most 255 (exactly): gathered in sorted order,
    a byte array stays in cache where a float64 one does not (about three times faster), and
    it is an eighth of the memory.

    >>> _compact(np.array([1.0, 4.0])).dtype, _compact(np.array([1.0, 300.0])).dtype
    (dtype('uint8'), dtype('float64'))
    """
    if not len(persons) or persons.max() > np.iinfo(np.uint8).max:
        return persons
    compact = persons.astype(np.uint8)
    return compact if np.array_equal(compact, persons) else persons


def _frame_positions(x: np.ndarray, y: np.ndarray, resolution: int, c0: int, r0: int, width: int) -> np.ndarray:
    """``(floor(y / r) − r0) × width + floor(x / r) − c0`` of each point: its cell's place in the frame."""
    position = np.divide(y, resolution)
    np.floor(position, out=position)
    position -= r0
    position *= width
    column = np.divide(x, resolution)
    np.floor(column, out=column)
    column -= c0
    position += column  # whole numbers far below 2**53: exact in float64
    del column
    positions: np.ndarray = position.astype(np.int64)
    return positions


# -- exact cells and delimitation -----------------------------------------------------------------


def threshold_for(
    gridded: Gridded,
    rule: Rule | str = "decree-2014",
    *,
    national_median: float | None = None,
    agglomeration_median: float | None = None,
    agglomeration_population: float | None = None,
    **parameters: object,
) -> tuple[float, float, float, str]:
    """The rule's threshold S with the exact agglomeration median: ``(S, median, population, source)``."""
    from .rules import get_rule

    median, population, source = _agglomeration(gridded, agglomeration_median, agglomeration_population)
    threshold = get_rule(rule).with_params(**parameters).threshold(median, population, national_median)
    return threshold.value, median, population, source


def _agglomeration(gridded: Gridded, median: float | None, population: float | None) -> tuple[float, float, str]:
    """The agglomeration's median and population, exact from the households unless given, and the median's source."""
    h = gridded.households
    source = "given" if median is not None else EXACT_MEDIAN_SOURCE
    median = global_weighted_median(h.income, h.persons) if median is None else median
    return float(median), float(h.persons.sum()) if population is None else float(population), source


def persons_below(gridded: Gridded, threshold: float) -> np.ndarray:
    """Persons of each cell whose household's declared income per UC is strictly below ``threshold``."""
    income, persons = gridded.income_sorted, gridded.persons_sorted
    return gridded.sum_sorted(lambda rows: np.where(income[rows] < threshold, persons[rows], 0))


def agglomeration_facts(
    gridded: Gridded,
    rule: Rule | str = "decree-2014",
    *,
    national_median: float | None = None,
    agglomeration_median: float | None = None,
    agglomeration_population: float | None = None,
) -> tuple[float | None, dict[str, object]]:
    """The rule's threshold when it can be computed, and the facts ``carroyage grid`` records.

    The agglomeration median (exact unless given) and population are recorded even when the
    threshold cannot be computed (a rule that needs ``national_median``, not given), so that a
    delimitation of the table can still use them.
    """
    from .rules import get_rule

    version = get_rule(rule)
    if national_median is not None or not version.needs_national_median:
        value, median, population, source = threshold_for(
            gridded,
            version,
            national_median=national_median,
            agglomeration_median=agglomeration_median,
            agglomeration_population=agglomeration_population,
        )
        threshold: float | None = value
    else:
        threshold = None
        median, population, source = _agglomeration(gridded, agglomeration_median, agglomeration_population)
    facts: dict[str, object] = {
        "threshold": threshold,
        "agglomeration_median": float(median),
        "agglomeration_population": float(population),
        "agglomeration_median_source": source,
    }
    return threshold, facts


def exact_cells(gridded: Gridded, threshold: float) -> CellTable:
    """A :class:`CellTable` with exact ``population_low`` (persons below S) and ``median_income``.

    Examples
    --------
    >>> h = households_from_arrays(np.array([3763210.0, 3763220, 3763230]), np.full(3, 2999010.0),
    ...                            np.array([9000.0, 20000, 40000]), np.array([3.0, 1, 2]), uc=np.ones(3))
    >>> frame = exact_cells(grid_households(h), 12_900).frame
    >>> frame[["population", "population_low", "median_income"]].values.tolist()
    [[6.0, 3.0, 14500.0]]
    """
    h = gridded.households
    frame = pd.DataFrame(
        {
            "id": pd.arrays.ArrowStringArray(gridded.id_array()),
            "x": gridded.x,
            "y": gridded.y,
            "population": gridded.sum_sorted(gridded.persons_sorted),
            "households": gridded.per_cell(),
            "population_low": persons_below(gridded, threshold),
            "median_income": gridded.medians(),
        },
        copy=False,
    )
    facts = h.facts
    columns = {
        "id": "(gridded households)",
        "population": str(cast(dict[str, str], facts.get("columns", {})).get("persons", "persons")),
        "households": "(households counted)",
        "population_low": f"(persons below {threshold:g} €)",
        "median_income": "(exact person-weighted median)",
    }
    return CellTable(
        frame,
        h.grid_epsg,
        gridded.resolution,
        str(facts.get("path", "households")),
        str(facts.get("sha256", "")),
        columns,
    )


def delimit_households(
    households: Households | Gridded,
    rule: Rule | str = "decree-2014",
    *,
    national_median: float | None = None,
    agglomeration_median: float | None = None,
    agglomeration_population: float | None = None,
    resolution: int = 200,
    progress: Progress | None = None,
    **parameters: object,
) -> Geography:
    """Delimit quartiers exactly from household microdata.

    The agglomeration median (unless given) and every cell's and quartier's median are exact
    person-weighted medians of declared income per UC; each cell's persons below S are counted.
    ``national_median`` is the national median of *declared* income per UC. Other arguments as
    :func:`carroyage.delimit`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = 3763200 + rng.uniform(0, 2000, 12000); y = 2999000 + rng.uniform(0, 2000, 12000)
    >>> poor = (x < 37612000) & (y < 2999800)
    >>> income = np.where(poor, rng.uniform(3000, 9000, 12000), rng.uniform(20000, 120000, 12000))
    >>> h = households_from_arrays(x, y, income, np.full(12000, 2.0), uc=np.ones(12000))
    >>> geo = delimit_households(h, national_median=21_120, contour_ring_cells=0)  # the pocket alone
    >>> len(geo.qpv), bool(geo.qpv["estimated"].any()), int(geo.qpv["population"].sum()) == int(2 * poor.sum())
    (1, False, True)
    """
    from .delimit import delimit

    say = progress or (lambda message: None)
    if isinstance(households, Gridded):
        gridded = households
    else:
        say(f"{labels.integer(len(households))} ménages répartis en carreaux de {resolution} m")
        gridded = grid_households(households, resolution)
    rule_parameters: dict[str, Any] = {k: v for k, v in parameters.items() if v is not None}
    say("médiane exacte de l'agglomération et seuil")
    value, median, population, source = threshold_for(
        gridded,
        rule,
        national_median=national_median,
        agglomeration_median=agglomeration_median,
        agglomeration_population=agglomeration_population,
        **rule_parameters,
    )
    cells = exact_cells(gridded, value)
    geography = delimit(
        cells,
        rule,
        national_median=national_median,
        agglomeration_median=median,
        agglomeration_population=population,
        progress=progress,
        **rule_parameters,
    )
    say("médianes exactes des quartiers")
    return _with_exact_quartiers(geography, gridded, source)


def _with_exact_quartiers(geography: Geography, gridded: Gridded, source: str) -> Geography:
    h = gridded.households
    qpv = geography.qpv.copy()
    codes = geography.cell_table["qpv"].to_numpy(dtype=object)
    index = {code: i for i, code in enumerate(qpv["code"].tolist())}
    cell_group = np.array([index.get(code, -1) for code in pd.unique(codes)], dtype=np.int64)
    lookup = pd.Index(pd.unique(codes))
    group_of_cell = cell_group[lookup.get_indexer(codes)]
    group = np.repeat(group_of_cell, gridded.counts)  # of each household, in sorted order
    if len(qpv):
        inside = group >= 0
        medians = weighted_median(
            gridded.income_sorted[inside], gridded.persons_sorted[inside], group[inside], len(qpv)
        )
        qpv["median_income"] = np.round(medians, 0)
    manifest = dict(geography.manifest)
    inputs = dict(cast(dict[str, object], manifest["inputs"]))
    inputs["households"] = h.facts
    manifest["inputs"] = inputs
    manifest["agglomeration_median_source"] = source
    manifest["estimator"] = {
        "method": "exact: household microdata gridded with the lower-left rule; population_low counted per cell; "
        "cell, quartier and agglomeration medians exact person-weighted medians of declared income per UC",
        "estimated": False,
        "consumption_units": h.facts.get("consumption_units"),
    }
    return replace(geography, qpv=qpv, manifest=manifest)


# -- a gridded table's exact agglomeration figures, back in delimit ---------------------------------

SIDECAR_SUFFIX = ".manifest.json"
"""``carroyage grid`` writes ``OUT`` and ``OUT.manifest.json``, which carries the exact figures."""
EXACT_MEDIAN_SOURCE = "exact: person-weighted median of the households' declared income per UC"


def sidecar_path(table: Path) -> Path:
    """The manifest sidecar of a table written by ``carroyage grid``."""
    return table.with_name(table.name + SIDECAR_SUFFIX)


def grid_reference(path: str | Path, cells: CellTable) -> dict[str, Any] | None:
    """The exact agglomeration median, population and threshold a ``carroyage grid`` table carries.

    They are in the table's manifest sidecar (:func:`sidecar_path`), and are returned only when
    the sidecar is the ``grid`` stage's, records this very table (its sha256), the table is exact
    (``median_income`` or ``population_low``, no secrecy) and the threshold was computed. A
    sidecar that records another version of the table is ignored, with a warning.

    Returns
    -------
    dict or None
        ``agglomeration_median``, ``agglomeration_population``, ``threshold`` and ``sidecar`` (its
        path and sha256, for the manifest).
    """
    import warnings

    from ..errors import CarroyageWarning

    sidecar = sidecar_path(Path(path))
    if not sidecar.is_file() or not cells.exact:
        return None
    try:
        manifest = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("stage") != "grid" or manifest.get("secrecy"):
        return None
    if cast(dict[str, object], manifest.get("output") or {}).get("sha256") != cells.sha256:
        warnings.warn(
            f"{sidecar} : ne décrit pas {path} tel qu'il est (sha256 différent) ; médiane de l'agglomération "
            "ré-estimée sur le carroyage",
            CarroyageWarning,
            stacklevel=2,
        )
        return None
    if manifest.get("agglomeration_median") is None:
        return None
    return {
        "agglomeration_median": float(manifest["agglomeration_median"]),
        "agglomeration_population": float(manifest["agglomeration_population"]),
        "threshold": None if manifest.get("threshold") is None else float(manifest["threshold"]),
        "sidecar": {"path": shown_path(sidecar), "sha256": sha256(sidecar)},
    }


def with_grid_reference(
    geography: Geography, cells: CellTable, reference: dict[str, Any], given: dict[str, object]
) -> Geography:
    """Say in the manifest that the agglomeration figures came exact from ``carroyage grid``'s households.

    A median the user gave (``given``) keeps its own source. The table's ``population_low`` was
    counted against the grid's threshold, so a delimitation with another threshold is refused.

    Raises
    ------
    InputError
        This run's threshold is not the one ``population_low`` was counted against.
    """
    manifest = dict(geography.manifest)
    threshold = cast(dict[str, float], manifest.get("threshold") or {}).get("value")
    counted = threshold is not None and reference["threshold"] is not None and "population_low" in cells.frame
    if counted and not math.isclose(cast(float, threshold), reference["threshold"], abs_tol=1e-6):
        raise InputError(
            f"{cells.source} : population_low a été compté sous le seuil {labels.decimal(reference['threshold'])} € "
            f"({reference['sidecar']['path']}), ce calcul a pour seuil {labels.decimal(cast(float, threshold))} € ; "
            "attendu les mêmes --national-median et paramètres de règle que pour carroyage grid"
        )
    if given.get("agglomeration_median") is None:
        manifest["agglomeration_median_source"] = f"{EXACT_MEDIAN_SOURCE} (from {reference['sidecar']['path']})"
    inputs = dict(cast(dict[str, object], manifest["inputs"]))
    inputs["grid_manifest"] = reference["sidecar"]
    manifest["inputs"] = inputs
    return replace(geography, manifest=manifest)


# -- Filosofi-like table and statistical secrecy ----------------------------------------------------


def filosofi_cells(
    gridded: Gridded,
    threshold: float | None = None,
    *,
    poverty_median: float = POVERTY_NATIONAL_MEDIAN_EUR,
) -> pd.DataFrame:
    """The Filosofi-like cell table of gridded households, plus exact ``median_income``, ``population_low``.

    Columns: ``idcar_200m`` (``idcar_1km`` for 1 km cells, ``idcar`` for other sizes),
    ``idcar_1km`` (the 1 km cell holding a 200 m one), ``i_est_200`` (0), ``ind``, ``men``,
    ``men_pauv`` (households whose standard of living is below 60 % of ``poverty_median``),
    ``men_1ind``, ``men_5ind``, ``ind_snv`` (sum over persons of the standard of living), then
    ``median_income`` and ``population_low`` (persons below ``threshold``, when given).

    Without disposable income, ``men_pauv`` is computed on declared income per UC against 60 % of
    ``poverty_median`` and the income sum is named ``ind_srf`` (the declared-income sum of RFL
    2010 files), so that :func:`carroyage.read_grid` reads its concept right.

    Examples
    --------
    >>> h = households_from_arrays(np.array([3763210.0, 3763220]), np.full(2, 2999010.0),
    ...                            np.array([9000.0, 30000]), np.array([1.0, 5]), uc=np.ones(2))
    >>> t = filosofi_cells(grid_households(h), 12_900)
    >>> t[["ind", "men", "men_pauv", "men_1ind", "men_5ind", "ind_srf", "population_low"]].values.tolist()
    [[6.0, 2.0, 1.0, 1.0, 1.0, 159000.0, 1.0]]
    """
    h = gridded.households
    persons = gridded.persons_sorted
    level = gridded.income_sorted if h.disposable is None else h.disposable[gridded.order]
    id_name = {200: "idcar_200m", 1000: "idcar_1km"}.get(gridded.resolution, "idcar")
    data: dict[str, object] = {id_name: pd.arrays.ArrowStringArray(gridded.id_array())}
    if gridded.resolution < 1000 and 1000 % gridded.resolution == 0:
        square_ids = inspire_ids(gridded.x // 1000 * 1000, gridded.y // 1000 * 1000, 1000, h.grid_epsg)
        data["idcar_1km"] = pd.arrays.ArrowStringArray(square_ids)
    line = POVERTY_LINE_FRACTION * poverty_median
    data.update(
        {
            "i_est_200": np.zeros(gridded.cells, dtype=np.int64),
            "ind": gridded.sum_sorted(persons),
            "men": gridded.per_cell(),
            "men_pauv": gridded.sum_sorted(lambda rows: level[rows] < line),
            "men_1ind": gridded.sum_sorted(lambda rows: persons[rows] == 1),
            "men_5ind": gridded.sum_sorted(lambda rows: persons[rows] >= 5),
            ("ind_snv" if h.disposable is not None else "ind_srf"): gridded.sum_sorted(
                lambda rows: persons[rows] * level[rows]
            ),
            "median_income": gridded.medians(),
        }
    )
    if threshold is not None:
        data["population_low"] = persons_below(gridded, threshold)
    return cast(pd.DataFrame, pd.DataFrame(data))


def apply_secrecy(
    table: pd.DataFrame,
    minimum: int = SECRECY_MIN_HOUSEHOLDS,
    blocks: tuple[int, ...] = SECRECY_BLOCKS_M,
) -> pd.DataFrame:
    """INSEE's secrecy rule on a Filosofi-like table: small cells' values spread over a group.

    Cells with fewer than ``minimum`` households are grouped: first with the other small cells of
    their aligned 1 km square, and where that group still has fewer than ``minimum`` households,
    of their 2 km, 4 km... square (``blocks``); what is left forms one last group. Each group's
    household figures (``men``, ``men_pauv``, ``men_1ind``, ``men_5ind``, ``ind_snv``/``ind_srf``)
    are spread over its cells in proportion to their residents; ``ind`` is kept, as INSEE does;
    ``i_est_200 = 1``. The exact ``median_income`` and ``population_low`` are dropped: they are
    precisely what secrecy withholds. Values are rounded to 0.1 like INSEE's.

    Examples
    --------
    >>> t = pd.DataFrame({"idcar_200m": ["CRS3035RES200mN2999000E3763200", "CRS3035RES200mN2999200E3763200",
    ...                                  "CRS3035RES200mN2999400E3763200"],
    ...                   "i_est_200": 0, "ind": [30.0, 10.0, 20.0], "men": [12.0, 4.0, 8.0],
    ...                   "men_pauv": [1.0, 3.0, 0.0], "ind_snv": [6e5, 1e5, 5e5]})
    >>> s = apply_secrecy(t)
    >>> s["i_est_200"].tolist(), s["men"].tolist(), s["men_pauv"].tolist()
    ([0, 1, 1], [12.0, 4.0, 8.0], [1.0, 1.0, 2.0])
    """
    from .grid import parse_ids

    id_name = next(c for c in ("idcar_200m", "idcar", "idcar_1km") if c in table)
    parsed = parse_ids(pa.array(table[id_name].astype(str).to_numpy(), pa.string()), "cells")
    men = table["men"].to_numpy(dtype=np.float64)
    ind = table["ind"].to_numpy(dtype=np.float64)
    small = men < minimum
    group = np.full(len(table), -1, dtype=np.int64)
    next_group = 0
    for size in blocks:
        if size <= parsed.resolution:
            continue
        pending = small & (group < 0)
        if not pending.any():
            break
        bx, by = parsed.x[pending] // size, parsed.y[pending] // size
        keys, inverse = np.unique(bx * (1 << 32) + by, return_inverse=True)
        enough = np.bincount(inverse, weights=men[pending], minlength=len(keys)) >= minimum
        chosen = enough[inverse]
        index = np.flatnonzero(pending)[chosen]
        _, labels = np.unique(inverse[chosen], return_inverse=True)
        group[index] = next_group + labels
        next_group += int(labels.max(initial=-1)) + 1
    group[small & (group < 0)] = next_group  # the rest: one last group
    out = cast(pd.DataFrame, table.drop(columns=[c for c in ("median_income", "population_low") if c in table]).copy())
    if not small.any():
        return out
    in_group = group >= 0
    groups = int(group.max()) + 1
    g = group[in_group]
    group_ind = np.bincount(g, weights=ind[in_group], minlength=groups)
    share = ind[in_group] / np.where(group_ind[g] > 0, group_ind[g], 1.0)
    spread_columns = [c for c in ("men", "men_pauv", "men_1ind", "men_5ind", "ind_snv", "ind_srf") if c in out]
    for column in spread_columns:
        values = out[column].to_numpy(dtype=np.float64).copy()
        totals = np.bincount(g, weights=values[in_group], minlength=groups)
        values[in_group] = totals[g] * share
        out[column] = np.round(values, 1)
    out["i_est_200"] = np.where(small, 1, out["i_est_200"].to_numpy()).astype(np.int64)
    return out


def bad_rows_summary(households: Households) -> str:
    """One line on the rows left out, per reason.

    >>> h = households_from_arrays(np.array([3763250.0, np.nan]), np.array([2999050.0, 1.0]),
    ...                            np.array([1.0, 1.0]), np.ones(2), max_bad_share=0.5)
    >>> bad_rows_summary(h).replace("\u202f", " ")
    'ménages : 1 lignes sur 2 écartées (50,0 %) : coordonnées manquantes 1'
    """
    facts = households.facts
    rows, kept = cast(int, facts["rows"]), cast(int, facts["households"])
    if rows == kept:
        return labels.HOUSEHOLD_ROWS_USABLE.format(rows=labels.integer(rows))
    return labels.HOUSEHOLD_ROWS_LEFT_OUT.format(
        bad=labels.integer(rows - kept),
        rows=labels.integer(rows),
        share=labels.percent((rows - kept) / rows),
        detail=_reasons_text(households.bad),
    )


def _reasons_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{labels.BAD_ROW_REASONS[reason]} {labels.integer(n)}" for reason, n in counts.items())

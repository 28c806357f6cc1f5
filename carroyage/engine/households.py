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
   east or north of it. One pass of integer keys and ``bincount``; no loop over rows.
3. :func:`exact_cells` gives each cell its persons below the threshold ``population_low`` and its
   exact person-weighted median of declared income per UC; :func:`delimit_households` runs the
   rule on them (with the exact agglomeration median) and replaces every quartier's median by its
   exact person-weighted one. Outputs say ``estimated = false``.
4. :func:`filosofi_cells` writes the Filosofi-like table (``ind``, ``men``, ``men_pauv``,
   ``ind_snv``...) and :func:`apply_secrecy` INSEE's rule that cells under 11 households are not
   published alone.

Income per consumption unit is the household's income divided by its UC: the ``uc`` column when
given, else the INSEE scale ``1 + 0.5 × others aged 14+ + 0.3 × under-14s`` with ages from an
``under14`` column, else (ages unknown) each other person counting the national average 0.44 UC.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError
from ..files import csv_header, input_kind, parse_decimals
from ..manifest import sha256, shown_path
from ..settings import (
    HOUSEHOLDS_MAX_BAD_SHARE,
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

REASONS = {
    "missing_coordinates": "missing coordinates",
    "outside_area": "outside the CRS's area of use",
    "missing_income": "missing income",
    "negative_income": "negative income",
    "missing_persons": "missing persons",
    "negative_persons": "negative persons",
    "invalid_persons": "zero or fractional persons",
    "invalid_uc": "invalid consumption units (uc < 1, or under14 not a whole number below persons)",
}
"""Why a household row is unusable, in the order the checks are made (a row counts once, first)."""

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
    middle values for an even total). Groups are ``0 .. count - 1``; negative groups are left out;
    a group with no weight gets NaN.

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
    keep = (groups >= 0) & (weights > 0)
    values, weights, groups = values[keep], weights[keep], groups[keep]
    order = np.lexsort((values, groups))
    return _sorted_median(values[order], weights[order], groups[order], count)


def _sorted_median(values: np.ndarray, weights: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray:
    """Weighted medians of rows already sorted by group, then value."""
    cumulative = np.cumsum(weights)
    total = np.bincount(groups, weights=weights, minlength=count)
    start = np.searchsorted(groups, np.arange(count))
    present = total > 0
    safe = np.minimum(start, max(len(values) - 1, 0))
    before = np.where(present, cumulative[safe] - weights[safe], 0.0) if len(values) else np.zeros(count)
    # 0-based positions of the middle person(s) in the group's repeated sequence
    low = before + np.floor((total - 1) / 2)
    high = before + np.floor(total / 2)
    last = max(len(values) - 1, 0)
    below = np.minimum(np.searchsorted(cumulative, low, side="right"), last)
    above = np.minimum(np.searchsorted(cumulative, high, side="right"), last)
    if not len(values):
        return np.full(count, np.nan)
    median: np.ndarray = np.where(present, (values[below] + values[above]) / 2, np.nan)
    return median


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
    table, points, own_crs = _READERS[kind](path, columns)
    source_crs = crs if crs is not None else own_crs
    if source_crs is None:
        raise InputError(f"{name}: no CRS for the coordinates; pass --crs EPSG:XXXX (e.g. EPSG:2154 for Lambert-93)")
    used = {"x": "geometry", "y": "geometry"}
    if points is None:
        points = (_number(table, columns.x or "x", name, "--x"), _number(table, columns.y or "y", name, "--y"))
        used = {"x": columns.x or "x", "y": columns.y or "y"}
    arrays = {
        "income": _number(table, columns.income, name, "--income"),
        "persons": _number(table, columns.persons, name, "--persons"),
    }
    for key in ("uc", "under14", "disposable"):
        column = getattr(columns, key)
        if column:
            arrays[key] = _number(table, column, name, f"--{key}")
    del table
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise
    return households_from_arrays(
        points[0],
        points[1],
        arrays["income"],
        arrays["persons"],
        crs=source_crs,
        uc=arrays.get("uc"),
        under14=arrays.get("under14"),
        disposable=arrays.get("disposable"),
        grid_epsg=grid_epsg,
        max_bad_share=max_bad_share,
        facts={
            "path": shown_path(path),
            "sha256": sha256(path),
            "format": kind,
            "columns": {**used, **{k: v for k, v in vars(columns).items() if v and k not in ("x", "y")}},
        },
        source=name,
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
) -> Households:
    """Validate household arrays, project them to the grid CRS and keep the usable rows.

    ``income`` and ``disposable`` are the household's incomes (€ a year), divided here by its UC.
    See :func:`read_households` for the rest.

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
            f"{source}: CRS {crs!r} is unknown ({str(exc).splitlines()[0]}); expected e.g. EPSG:2154"
        ) from exc
    epsg = source_crs.to_epsg()
    target = grid_epsg or (epsg if epsg in OVERSEAS_GRID_EPSG else 3035)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    income = np.asarray(income, dtype=np.float64)
    persons = np.asarray(persons, dtype=np.float64)
    rows = len(x)
    if rows == 0:
        raise InputError(f"{source}: no households; expected at least one data row")
    with np.errstate(invalid="ignore"):
        missing_xy = ~(np.isfinite(x) & np.isfinite(y))
        outside = ~missing_xy & ~_inside_area(source_crs, x, y)
        if target != epsg:
            transformer = pyproj.Transformer.from_crs(source_crs, pyproj.CRS.from_epsg(target), always_xy=True)
            x, y = (np.asarray(a, dtype=np.float64) for a in transformer.transform(x, y, errcheck=False))
        outside |= ~missing_xy & ~(np.isfinite(x) & np.isfinite(y))
        if target != epsg:
            outside |= ~missing_xy & ~_inside_area(pyproj.CRS.from_epsg(target), x, y)
        checks = [
            ("missing_coordinates", missing_xy),
            ("outside_area", outside),
            ("missing_income", np.isnan(income) | (np.isnan(disposable) if disposable is not None else False)),
            ("negative_income", (income < 0) | ((disposable < 0) if disposable is not None else False)),
            ("missing_persons", np.isnan(persons)),
            ("negative_persons", persons < 0),
            ("invalid_persons", (persons < 1) | (persons != np.floor(persons))),
        ]
        if uc is not None:
            uc = np.asarray(uc, dtype=np.float64)
            checks.append(("invalid_uc", ~(uc >= 1)))
        elif under14 is not None:
            under14 = np.asarray(under14, dtype=np.float64)
            checks.append(("invalid_uc", ~((under14 >= 0) & (under14 <= persons - 1) & (under14 == np.floor(under14)))))
    bad = np.zeros(rows, dtype=bool)
    counts: dict[str, int] = {}
    for reason, mask in checks:
        fresh = np.asarray(mask, dtype=bool) & ~bad
        number = int(np.count_nonzero(fresh))
        if number:
            counts[reason] = number
        bad |= fresh
    total_bad = int(np.count_nonzero(bad))
    if total_bad / rows > max_bad_share or total_bad == rows:
        detail = ", ".join(f"{REASONS[r]} {n:,}" for r, n in counts.items())
        raise InputError(
            f"{source}: {100 * total_bad / rows:.1f} % of the {rows:,} household rows are unusable ({detail}); "
            f"at most {100 * max_bad_share:g} % may be (settings.HOUSEHOLDS_MAX_BAD_SHARE)"
        )
    keep = ~bad if total_bad else slice(None)
    persons = persons[keep]
    if uc is not None:
        units = uc[keep]
        uc_method = "given (column)"
    elif under14 is not None:
        units = consumption_units(persons, under14[keep])
        uc_method = "INSEE scale from persons and under-14s: 1 + 0.5 × others aged 14+ + 0.3 × under-14s"
    else:
        units = consumption_units(persons)
        uc_method = (
            "INSEE scale, ages unknown: 1 + 0.44 × (persons − 1), each other person taken as under 14 "
            f"with the national share {UNDER14_SHARE_OF_OTHER_PERSONS}"
        )
    per_uc = income[keep] / units
    np.add(per_uc, 0.0, out=per_uc)  # no negative zero: its bit pattern would sort last
    per_uc_disposable = None if disposable is None else np.asarray(disposable, dtype=np.float64)[keep] / units + 0.0
    record: dict[str, object] = {
        **(facts or {"path": source}),
        "crs": source_crs.to_string(),
        "grid_epsg": int(target),
        "rows": rows,
        "households": rows - total_bad,
        "persons": float(persons.sum()),
        "bad_rows": counts,
        "bad_share": round(total_bad / rows, 6),
        "max_bad_share": max_bad_share,
        "consumption_units": uc_method,
        "income_concept": "declared" + (" and disposable" if disposable is not None else ""),
    }
    return Households(x[keep], y[keep], per_uc, persons, units, per_uc_disposable, int(target), record)


def _inside_area(crs: object, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether points lie within the bounds of the CRS's area of use, in its own coordinates."""
    import pyproj

    crs = cast(pyproj.CRS, crs)
    area = crs.area_of_use
    if area is None or area.west > area.east:  # unknown, or across the antimeridian: not checked
        return np.ones(len(x), dtype=bool)
    if crs.is_geographic:
        west, south, east, north = area.west, area.south, area.east, area.north
    else:
        to_crs = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        west, south, east, north = to_crs.transform_bounds(area.west, area.south, area.east, area.north, densify_pts=21)
    inside: np.ndarray = (x >= west) & (x <= east) & (y >= south) & (y <= north)
    return inside


def _number(table: pa.Table, column: str, source: str, option: str) -> np.ndarray:
    lower = {c.lower(): c for c in table.column_names}
    name = column if column in table.column_names else lower.get(column.lower())
    if name is None:
        raise InputError(
            f"{source}: no column {column!r} (give it with {option}); the file has {', '.join(table.column_names)}"
        )
    column_data = table.column(name)
    kind = column_data.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind):
        return parse_decimals(column_data.combine_chunks().cast(pa.string()))
    if column_data.null_count:
        return np.asarray(pc.cast(column_data, pa.float64()).to_numpy(), dtype=np.float64)
    # numpy-owned: the Arrow buffers can be released as soon as the table goes
    return np.array(column_data.to_numpy(), dtype=np.float64, copy=None)


ReaderResult = tuple[pa.Table, tuple[np.ndarray, np.ndarray] | None, str | None]


def _read_csv(path: Path, columns: HouseholdColumns) -> ReaderResult:
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
        raise InputError(f"{path}: not a readable CSV ({str(exc).strip().splitlines()[0]})") from exc
    return table, None, None


def _read_parquet(path: Path, columns: HouseholdColumns) -> ReaderResult:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        present = {n.lower(): n for n in schema.names}
        wanted = [present[w.lower()] for w in [*columns.wanted(), "x", "y"] if w.lower() in present]
        use_geometry = columns.x is None and "x" not in present and "geometry" in present
        table = pq.read_table(path, columns=list(dict.fromkeys(wanted + (["geometry"] if use_geometry else []))))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({str(exc).strip().splitlines()[0]})") from exc
    metadata = schema.metadata or {}
    crs = None
    if b"carroyage" in metadata:
        crs = json.loads(metadata[b"carroyage"]).get("crs")
    elif b"geo" in metadata:
        geo = json.loads(metadata[b"geo"])
        column = geo.get("columns", {}).get(geo.get("primary_column", "geometry"), {})
        crs = json.dumps(column["crs"]) if column.get("crs") else "OGC:CRS84"
    points = _wkb_points(table.column("geometry").combine_chunks()) if use_geometry else None
    return table, points, crs


def _read_layer(path: Path, columns: HouseholdColumns) -> ReaderResult:
    import pyogrio

    try:
        info = pyogrio.read_info(path)
        fields = {str(f).lower(): str(f) for f in info["fields"]}
        wanted = [fields[w.lower()] for w in columns.wanted() if w.lower() in fields]
        meta, table = pyogrio.read_arrow(path, columns=wanted, read_geometry=columns.x is None)
    except Exception as exc:  # pyogrio raises several DataSource errors; all mean "not readable"
        raise InputError(f"{path}: not a readable vector file ({str(exc).strip().splitlines()[0]})") from exc
    points = None
    if columns.x is None:
        geometry = meta.get("geometry_name") or "wkb_geometry"
        points = _wkb_points(table.column(geometry).combine_chunks())
    crs = cast(str | None, info.get("crs"))
    return table, points, crs


_READERS: dict[str, Callable[[Path, HouseholdColumns], ReaderResult]] = {
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
    """Households in their cells.

    Attributes
    ----------
    households : Households
    resolution : int
        Cell size, metres (200 for INSEE's grid, 1000 for its 1 km cells...).
    cell : numpy.ndarray
        Cell of each household, ``0 .. cells - 1``.
    x, y : numpy.ndarray
        Lower-left corner of each cell.
    order : numpy.ndarray
        Households sorted by cell, then declared income per UC (for exact medians).
    """

    households: Households
    resolution: int
    cell: np.ndarray
    x: np.ndarray
    y: np.ndarray
    order: np.ndarray

    @property
    def cells(self) -> int:
        """Number of inhabited cells."""
        return len(self.x)

    def ids(self) -> np.ndarray:
        """INSPIRE ids of the cells."""
        return format_ids(self.x, self.y, self.resolution, self.households.grid_epsg)

    def per_cell(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum of ``weights`` (default: one per household) over each cell."""
        summed: np.ndarray = np.bincount(self.cell, weights=weights, minlength=self.cells).astype(np.float64)
        return summed

    def medians(self) -> np.ndarray:
        """Exact person-weighted median of declared income per UC in each cell."""
        h = self.households
        return _sorted_median(h.income[self.order], h.persons[self.order], self.cell[self.order], self.cells)


def grid_households(households: Households, resolution: int = 200) -> Gridded:
    """Put each household in its cell (lower-left rule) and sort them for exact medians.

    Examples
    --------
    >>> h = households_from_arrays(np.array([3763200.0, 3763399.9, 3763400.0]), np.full(3, 2999000.0),
    ...                            np.array([1.0, 2.0, 3.0]), np.ones(3))
    >>> g = grid_households(h)
    >>> g.ids().tolist(), g.cell.tolist()
    (['CRS3035RES200mN2999000E3763200', 'CRS3035RES200mN2999000E3763400'], [0, 0, 1])
    """
    if resolution <= 0 or resolution != int(resolution):
        raise InputError(f"--resolution {resolution}: expected a whole number of metres > 0")
    col = np.floor(households.x / resolution).astype(np.int64)
    row = np.floor(households.y / resolution).astype(np.int64)
    c0, r0 = int(col.min()), int(row.min())
    width, height = int(col.max()) - c0 + 1, int(row.max()) - r0 + 1
    linear = (row - r0) * width + (col - c0)
    del col, row
    keys, cell, order = _cells_and_order(linear, households.income, width * height)
    x = (keys % width + c0) * resolution
    y = (keys // width + r0) * resolution
    return Gridded(households, resolution, cell, x, y, order)


def _cells_and_order(linear: np.ndarray, income: np.ndarray, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inhabited cells, each household's cell, and the households sorted by cell then income.

    One sort of a 64-bit key does it all: the cell's position in the frame in the high bits and
    the leading bits of the (non-negative) income's float pattern below, which order like the
    floats. Runs of equal keys whose incomes differ are then re-sorted on the full values, so the
    order is exact. The cells are the runs of the sorted positions.
    """
    bits = max(1, int(frame - 1).bit_length())
    if bits > 40:  # an absurdly wide frame: number the cells first
        unique, linear = np.unique(linear, return_inverse=True)
        keys, cell, order = _cells_and_order(linear, income, len(unique))
        return unique[keys], cell, order
    high = np.uint64(64 - bits)
    key = (linear.astype(np.uint64) << high) | (income.view(np.uint64) >> np.uint64(bits - 1))
    order = np.argsort(key)
    sorted_key = key[order]
    del key
    same = sorted_key[1:] == sorted_key[:-1]
    if same.any():
        sorted_income = income[order]
        differ = same & (sorted_income[1:] != sorted_income[:-1])
        del sorted_income
        if differ.any():
            run = np.concatenate([[0], np.cumsum(~same)])
            repair = np.zeros(int(run[-1]) + 1, dtype=bool)
            repair[run[1:][differ]] = True
            where = np.flatnonzero(repair[run])
            subset = order[where]
            order[where] = subset[np.lexsort((income[subset], linear[subset]))]
            del run, repair, where, subset
    del same
    position = sorted_key >> high
    del sorted_key
    first = np.empty(len(position), dtype=bool)
    first[:1] = True
    np.not_equal(position[1:], position[:-1], out=first[1:])
    keys = position[first].astype(np.int64)
    del position
    cell = np.empty(len(order), dtype=np.int64)
    cell[order] = np.cumsum(first) - 1
    return keys, cell, order


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

    h = gridded.households
    source = "given"
    if agglomeration_median is None:
        agglomeration_median = global_weighted_median(h.income, h.persons)
        source = "exact: person-weighted median of the households' declared income per UC"
    population = float(h.persons.sum()) if agglomeration_population is None else float(agglomeration_population)
    rule_version = get_rule(rule).with_params(**parameters)
    threshold = rule_version.threshold(agglomeration_median, population, national_median)
    return threshold.value, float(agglomeration_median), population, source


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
    population = gridded.per_cell(h.persons)
    frame = pd.DataFrame(
        {
            "id": pd.arrays.ArrowStringArray(pa.array(gridded.ids(), pa.string())),
            "x": gridded.x,
            "y": gridded.y,
            "population": population,
            "households": gridded.per_cell(),
            "population_low": gridded.per_cell(h.persons * (h.income < threshold)),
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
        say(f"gridding {len(households):,} households in {resolution} m cells")
        gridded = grid_households(households, resolution)
    rule_parameters: dict[str, Any] = {k: v for k, v in parameters.items() if v is not None}
    say("exact agglomeration median and threshold")
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
    say("exact quartier medians")
    return _with_exact_quartiers(geography, gridded, source)


def _with_exact_quartiers(geography: Geography, gridded: Gridded, source: str) -> Geography:
    h = gridded.households
    qpv = geography.qpv.copy()
    codes = geography.cell_table["qpv"].to_numpy(dtype=object)
    index = {code: i for i, code in enumerate(qpv["code"].tolist())}
    cell_group = np.array([index.get(code, -1) for code in pd.unique(codes)], dtype=np.int64)
    lookup = pd.Index(pd.unique(codes))
    group_of_cell = cell_group[lookup.get_indexer(codes)]
    group = group_of_cell[gridded.cell]
    if len(qpv):
        qpv["median_income"] = np.round(weighted_median(h.income, h.persons, group, len(qpv)), 0)
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
    level = h.disposable if h.disposable is not None else h.income
    id_name = {200: "idcar_200m", 1000: "idcar_1km"}.get(gridded.resolution, "idcar")
    data: dict[str, object] = {id_name: gridded.ids()}
    if gridded.resolution < 1000 and 1000 % gridded.resolution == 0:
        data["idcar_1km"] = format_ids(gridded.x // 1000 * 1000, gridded.y // 1000 * 1000, 1000, h.grid_epsg)
    data.update(
        {
            "i_est_200": np.zeros(gridded.cells, dtype=np.int64),
            "ind": gridded.per_cell(h.persons),
            "men": gridded.per_cell(),
            "men_pauv": gridded.per_cell(level < POVERTY_LINE_FRACTION * poverty_median),
            "men_1ind": gridded.per_cell(h.persons == 1),
            "men_5ind": gridded.per_cell(h.persons >= 5),
            ("ind_snv" if h.disposable is not None else "ind_srf"): gridded.per_cell(h.persons * level),
            "median_income": gridded.medians(),
        }
    )
    if threshold is not None:
        data["population_low"] = gridded.per_cell(h.persons * (h.income < threshold))
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
    >>> bad_rows_summary(h)
    'households: 1 of 2 rows left out (50.0 %): missing coordinates 1'
    """
    facts = households.facts
    rows, kept = cast(int, facts["rows"]), cast(int, facts["households"])
    if rows == kept:
        return f"households: {rows:,} rows, all usable"
    detail = ", ".join(f"{REASONS[r]} {n:,}" for r, n in households.bad.items())
    return f"households: {rows - kept:,} of {rows:,} rows left out ({100 * (rows - kept) / rows:.1f} %): {detail}"

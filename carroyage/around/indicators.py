"""Tableaux de bord: the grid's indicators for each zone, beside its reference territories.

For every zone (an official QPV, a computed ``qpv``, ``quartier_vecu`` or ``veille_active``...),
every reference commune that holds zones, all reference communes together (the EPCI) and the whole
grid, the Filosofi grid's counts are summed over the cells, each cell counting for the share of
its square inside the territory (residents spread evenly over the square). Shares and means are
ratios of those sums. The pairs (territory, cell) come from one ``shapely.STRtree`` query
(:func:`carroyage.layers.cell_overlaps`); the sums are one sparse matrix product.

Every figure says how it was made (``method``: ``counted`` when every cell lies wholly inside,
``area-weighted`` otherwise; the share below the decree threshold is ``estimated`` by the engine's
income model), and a territory with fewer than 11 households' worth of cells, or mostly imputed
cells, is ``fragile`` (docs/indicators.md).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely
from scipy import sparse

from ..engine.delimit import apply_rule, prepare
from ..engine.readers import read_grid
from ..engine.rules import get_rule
from ..errors import InputError
from ..files import csv_header, parse_decimals, sniff_delimiter
from ..geography import is_geography, read_geography
from ..labels import COUNT_EXPECTED, NO_SUCH_FILE, ROW_WORDS, VALUE_EXPECTED
from ..layers import POLYGONAL, cell_overlaps, codes_and_names, read_layer
from ..settings import (
    CHANGE_MAX_COVERAGE_GAP,
    FRAGILE_IMPUTED_SHARE,
    FRAGILE_MIN_HOUSEHOLDS,
    INDICATORS_NATIONAL_MEDIAN,
    INDICATORS_RULE,
    PERSONS_PER_HOUSEHOLD,
    REFERENCE_MIN_OVERLAP,
)


@dataclass(frozen=True)
class Indicator:
    """One figure of the tableau: a sum of a grid column, or the ratio of two sums.

    ``unit`` is ``count``, ``share`` or ``euros`` (how it is shown and how its change reads).
    """

    name: str
    numerator: str
    denominator: str | None
    unit: str


AGE_GROUPS = ("0_3", "4_5", "6_10", "11_17", "18_24", "25_39", "40_54", "55_64", "65_79", "80p")
AGE_UNKNOWN = "ind_inc"
"""Residents of unknown age (Filosofi 2015-2019): with the ten groups, they make up ``ind``."""
HOUSEHOLD_COLUMNS = ("men_1ind", "men_5ind", "men_fmp", "men_prop", "men_coll")
EXTRA_COLUMNS = (*HOUSEHOLD_COLUMNS, *(f"ind_{group}" for group in AGE_GROUPS), AGE_UNKNOWN)
"""Filosofi columns read beside the engine's own (``ind``, ``men``, ``men_pauv``, ``ind_snv``).

Matched whatever their case (2015's ``Men_1ind``, a Shapefile's ``IND_0_3``); every name fits a
Shapefile's 10 characters, so none is truncated."""
ENGINE_COLUMNS = {"population": "ind", "households": "men", "poor_households": "men_pauv", "income_sum": "ind_snv"}

INDICATORS: tuple[Indicator, ...] = (
    Indicator("residents", "ind", None, "count"),
    Indicator("households", "men", None, "count"),
    Indicator("one_person_share", "men_1ind", "men", "share"),
    Indicator("large_household_share", "men_5ind", "men", "share"),
    Indicator("single_parent_share", "men_fmp", "men", "share"),
    Indicator("owner_share", "men_prop", "men", "share"),
    Indicator("collective_share", "men_coll", "men", "share"),
    Indicator("mean_living_standard", "ind_snv", "ind", "euros"),
    Indicator("household_poverty_rate", "men_pauv", "men", "share"),
    Indicator("low_income_share", "ind_low", "ind", "share"),
    *(Indicator(f"age_{group}_share", f"ind_{group}", "ind", "share") for group in AGE_GROUPS),
    Indicator("age_unknown_share", AGE_UNKNOWN, "ind", "share"),
)
UNITS = {
    **{indicator.name: indicator.unit for indicator in INDICATORS},
    "imputed_share": "share",
    "grid_coverage": "share",
    "insee_population": "count",
    "insee_households": "count",
    "insee_poverty_rate": "share",
    "population_ratio": "ratio",
    "poverty_ratio": "ratio",
}
IDENTITY = ("kind", "zone_type", "code", "name", "communes")
"""The columns that name a territory (the same for every grid vintage)."""
DIGITS = {"count": 1, "share": 4, "euros": 0, "ratio": 3}
ZONE_LAYERS = ("qpv", "quartier_vecu", "veille_active")
OFFICIAL_CODE = re.compile(r"^Q[NP]\d")
STATS_RENAMES = {"popmuniqpv": "insee_population", "nombre_menages": "insee_households"}
POVERTY_COLUMN = "taux_pauvrete_60%"
POPULATION_COLUMNS = ("population_municipale", "population", "pmun", "popmuni")


@dataclass(frozen=True)
class IndicatorGrid:
    """One grid vintage, ready for the tableau: cell squares and per-cell counts.

    Attributes
    ----------
    vintage : str
        Its name in column suffixes and headings (the year found in the file name, or ``grid1``...).
    counts : pandas.DataFrame
        One row per cell: the Filosofi columns the file has (``ind``, ``men``, ``men_1ind``...),
        ``ind_low`` (residents below the decree threshold) and ``ind_imputed`` (residents of
        imputed cells) when the file says which cells are imputed.
    squares : numpy.ndarray
        The cells' squares (shapely), in ``crs``.
    crs : str
    low_income_method : str
        ``estimated`` (public grids) or ``counted`` (a table of exact counts).
    facts : dict
        The input and the threshold, for the manifest.
    """

    vintage: str
    counts: pd.DataFrame
    squares: np.ndarray
    crs: str
    low_income_method: str
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def extent(self) -> shapely.Polygon:
        """The bounding box of the grid's cells."""
        return shapely.box(*shapely.total_bounds(self.squares))


def vintage_names(paths: list[Path]) -> list[str]:
    """Each grid's name: the year in its file name when every grid has a distinct one.

    >>> vintage_names([Path("filosofi2019_200m.csv"), Path("filosofi2021_200m.csv")])
    ['2019', '2021']
    >>> vintage_names([Path("a.csv"), Path("b.csv")])
    ['grid1', 'grid2']
    """
    years = [re.findall(r"(?<!\d)((?:19|20)\d\d)(?!\d)", path.name) for path in paths]
    found = [y[0] if y else "" for y in years]
    if all(found) and len(set(found)) == len(found):
        return found
    return [f"grid{i + 1}" for i in range(len(paths))]


def read_indicator_grid(path: Path, vintage: str, national_median: float = INDICATORS_NATIONAL_MEDIAN) -> IndicatorGrid:
    """Read a grid and estimate each cell's residents below the decree threshold.

    The threshold is the engine's (:func:`carroyage.engine.delimit.apply_rule` with the
    ``decree-2014`` rule on the whole grid, the grid standing for the unité urbaine).
    """
    cells = read_grid(path)
    outcome = apply_rule(prepare(cells, national_median=national_median), get_rule(INDICATORS_RULE))
    frame = cells.frame
    counts = pd.DataFrame(
        {raw: frame[canonical].to_numpy() for canonical, raw in ENGINE_COLUMNS.items() if canonical in frame}
    )
    counts = counts.assign(**_extra_columns(Path(path), len(frame)))
    counts["ind_low"] = counts["ind"] * outcome.income.low_share
    if "imputed" in frame:
        counts["ind_imputed"] = counts["ind"] * frame["imputed"].to_numpy(dtype=float)
    x, y, size = frame["x"].to_numpy(), frame["y"].to_numpy(), cells.resolution
    threshold = outcome.threshold.value if outcome.threshold else None
    details = dataclasses.asdict(outcome.threshold) if outcome.threshold else None
    facts: dict[str, object] = {"input": cells.describe(), "threshold": details, "threshold_value": threshold}
    method = "estimated" if outcome.income.estimated else "counted"
    return IndicatorGrid(vintage, counts, shapely.box(x, y, x + size, y + size), f"EPSG:{cells.epsg}", method, facts)


def _extra_columns(path: Path, rows: int) -> dict[str, np.ndarray]:
    """The household and age columns the engine does not read, when the file has them."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        table = _read_csv_columns(path)
    elif suffix in (".gpkg", ".shp"):
        import pyogrio

        names = {name.lower(): name for name in pyogrio.read_info(path)["fields"]}
        wanted = [names[c] for c in EXTRA_COLUMNS if c in names]
        table = pyogrio.read_arrow(path, read_geometry=False, columns=wanted)[1] if wanted else pa.table({})
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        names = {name.lower(): name for name in pq.read_schema(path).names}
        table = pq.read_table(path, columns=[names[c] for c in EXTRA_COLUMNS if c in names])
    else:  # rasters: the engine's bands only
        return {}
    numbering = {".csv": ("line", 2), ".txt": ("line", 2), ".parquet": ("row", 1)}.get(suffix, ("feature", 1))
    return _checked(table, path, rows, numbering)


def _read_csv_columns(path: Path) -> pa.Table:
    header, delimiter = csv_header(path)  # the engine's reader: same delimiter, same names
    names = {name.strip().lower(): name for name in header}
    wanted = [names[c] for c in EXTRA_COLUMNS if c in names]
    if not wanted:
        return pa.table({})
    try:
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted, column_types=dict.fromkeys(wanted, pa.float64())
            ),
        )
    except pa.ArrowInvalid as exc:
        found = str(exc).splitlines()[0]
        raise InputError(f"{path} : {found} ; attendu des nombres ≥ 0 dans {', '.join(wanted)}") from exc


def _checked(table: pa.Table, path: Path, rows: int, numbering: tuple[str, int]) -> dict[str, np.ndarray]:
    """Columns as float arrays, lower-case names; a missing, non-numeric or negative value is an error."""
    word, offset = numbering
    found: dict[str, np.ndarray] = {}
    for name in table.column_names:
        values = _floats(table.column(name).combine_chunks(), path, numbering, name)
        bad = np.flatnonzero(~(values >= 0))
        if len(values) != rows:
            raise InputError(
                f"{path} : la colonne {name!r} a {len(values)} valeurs pour {rows} carreaux ; "
                "attendu une valeur par carreau"
            )
        if len(bad):
            where = f"{path} : {ROW_WORDS.get(word, word)} {bad[0] + offset}"
            shown = "est vide" if np.isnan(values[bad[0]]) else f"vaut {values[bad[0]]:g}"
            raise InputError(f"{where} : la colonne {name!r} {shown} ; {COUNT_EXPECTED}")
        found[name.lower()] = values
    return found


def _floats(array: pa.Array, path: Path, numbering: tuple[str, int], name: str) -> np.ndarray:
    """A column as floats (nulls are NaN); text that is not a number is an error naming its row.

    A GeoPackage or Shapefile made from a CSV may hold the counts as text fields.
    """
    word, offset = numbering
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        text = pc.utf8_trim_whitespace(array)
        number = pc.match_substring_regex(text, r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
        wrong = np.flatnonzero(~np.asarray(pc.fill_null(number, True).to_numpy(zero_copy_only=False), dtype=bool))
        if len(wrong):
            value = array[int(wrong[0])].as_py()
            raise InputError(
                f"{path} : {ROW_WORDS.get(word, word)} {wrong[0] + offset} : la colonne {name!r} contient {value!r} ; "
                + VALUE_EXPECTED["float_parsing"]
            )
        array = pc.cast(text, pa.float64())
    try:
        return np.asarray(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(f"{path} : la colonne {name!r} est de type {array.type} ; attendu des nombres") from None


def read_zones(path: Path) -> gpd.GeoDataFrame:
    """Zones to describe: any polygon layer, or a geography's ``qpv``, ``quartier_vecu`` and ``veille_active``.

    Returns a frame with ``zone_type``, ``code``, ``name`` and the polygons.
    """
    if is_geography(path):
        geo = read_geography(path)
        layers = {"qpv": geo.qpv, **{name: geo.layers[name] for name in ZONE_LAYERS[1:] if name in geo.layers}}
        parts = [_named(layer, kind) for kind, layer in layers.items() if len(layer)]
        if not parts:
            raise InputError(
                f"{path} : aucune zone dans ses couches qpv, quartier_vecu et veille_active ; attendu au moins une zone"
            )
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=parts[0].crs)
    layer = read_layer(path, "zones")
    _require_polygons(layer, path, "zones")
    return _named(layer, None)


def _named(layer: gpd.GeoDataFrame, kind: str | None) -> gpd.GeoDataFrame:
    codes, names = codes_and_names(layer)
    if kind is None:
        kinds = np.where([bool(OFFICIAL_CODE.match(code)) for code in codes], "qpv", "zone")
    else:
        kinds = np.full(len(layer), kind)
    frame = {"zone_type": kinds, "code": codes, "name": names}
    return gpd.GeoDataFrame(frame, geometry=layer.geometry.to_numpy(), crs=layer.crs)


def _require_polygons(layer: gpd.GeoDataFrame, path: Path, what: str) -> None:
    kinds = shapely.get_type_id(layer.geometry.to_numpy())
    wrong = np.flatnonzero(~np.isin(kinds, POLYGONAL))
    if len(wrong):
        raise InputError(
            f"{path} : l'entité {wrong[0] + 1} est un {layer.geometry.iloc[wrong[0]].geom_type} ; "
            f"attendu des polygones ({what})"
        )


def territories(
    zones: gpd.GeoDataFrame, extent: shapely.Polygon, crs: str, reference: gpd.GeoDataFrame | None = None
) -> gpd.GeoDataFrame:
    """Zones that meet the grid's extent, the reference communes holding them, the EPCI, the grid.

    Parameters
    ----------
    zones : GeoDataFrame
        From :func:`read_zones`.
    extent : shapely.Polygon
        The grid's bounding box, in ``crs``.
    reference : GeoDataFrame, optional
        Commune polygons (``code``, ``nom``, and ``population_municipale`` if known).

    Returns
    -------
    GeoDataFrame
        ``kind`` (``zone``, ``commune``, ``epci``, ``grid``), ``zone_type``, ``code``, ``name``,
        ``communes`` (a zone's reference communes, ``;``-separated), ``insee_population`` (of the
        communes, from ``reference``), polygons in ``crs``.
    """
    zones = zones.to_crs(crs)
    zones = zones[shapely.intersects(zones.geometry.to_numpy(), extent)].reset_index(drop=True)
    rows = zones.assign(kind="zone", communes="", insee_population=np.nan)
    parts = [rows]
    if reference is not None:
        communes, holding = _reference_communes(zones, reference.to_crs(crs))
        rows["communes"] = holding
        parts += [communes, _epci(reference.to_crs(crs))]
    grid = {
        "kind": ["grid"],
        "zone_type": [""],
        "code": ["grid"],
        "name": [""],
        "communes": [""],
        "insee_population": [np.nan],
    }
    parts.append(gpd.GeoDataFrame(grid, geometry=[extent], crs=crs))
    table = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(table[[*IDENTITY, "insee_population", "geometry"]], geometry="geometry", crs=crs)


def _reference_communes(zones: gpd.GeoDataFrame, reference: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """The communes holding at least REFERENCE_MIN_OVERLAP of a zone, and each zone's communes."""
    codes, names = codes_and_names(reference, prefix="C")
    shapes, polygons = zones.geometry.to_numpy(), reference.geometry.to_numpy()
    zone, commune = shapely.STRtree(polygons).query(shapes, predicate="intersects")
    with np.errstate(divide="ignore", invalid="ignore"):
        share = shapely.area(shapely.intersection(shapes[zone], polygons[commune])) / shapely.area(shapes[zone])
    keep = share >= REFERENCE_MIN_OVERLAP
    zone, commune = zone[keep], commune[keep]
    pairs = pd.DataFrame({"zone": zone, "code": codes[commune]}).sort_values(["zone", "code"])
    joined = pairs.groupby("zone")["code"].agg(";".join).reindex(range(len(zones)), fill_value="")
    used = np.unique(commune)
    used = used[np.argsort(codes[used], kind="stable")]
    population = _reference_population(reference)
    frame = {
        "kind": "commune",
        "zone_type": "",
        "code": codes[used],
        "name": names[used],
        "communes": codes[used],
        "insee_population": population[used],
    }
    return gpd.GeoDataFrame(frame, geometry=polygons[used], crs=reference.crs), joined.to_numpy(dtype=object)


def _reference_population(reference: gpd.GeoDataFrame) -> np.ndarray:
    lower = {c.lower(): c for c in reference.columns}
    column = next((lower[c] for c in POPULATION_COLUMNS if c in lower), None)
    if column is None:
        return np.full(len(reference), np.nan)
    return parse_decimals(pa.array(reference[column].astype(str).to_numpy(), pa.string()))


def _epci(reference: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    population = _reference_population(reference)
    total = float(population.sum()) if np.isfinite(population).all() else np.nan
    frame = {
        "kind": ["epci"],
        "zone_type": [""],
        "code": ["epci"],
        "name": [""],
        "communes": [""],
        "insee_population": [total],
    }
    return gpd.GeoDataFrame(frame, geometry=[shapely.union_all(reference.geometry.to_numpy())], crs=reference.crs)


def overlap_weights(shapes: np.ndarray, whole: np.ndarray, grid: IndicatorGrid) -> sparse.csr_matrix:
    """Territories × cells: the share of each cell's square inside each territory.

    Rows where ``whole`` is true take every cell whole (the grid itself).
    """
    cells = len(grid.squares)
    cut = np.flatnonzero(~whole)
    polygon, cell, share = cell_overlaps(grid.squares, shapes[cut])
    inside = share > 1e-12  # cells that only touch a boundary add nothing (and keep a zone "counted")
    polygon, cell, share = polygon[inside], cell[inside], share[inside]
    full = np.flatnonzero(whole)
    rows = np.concatenate([cut[polygon], np.repeat(full, cells)])
    columns = np.concatenate([cell, np.tile(np.arange(cells), len(full))])
    values = np.concatenate([share, np.ones(len(full) * cells)])
    return sparse.csr_matrix((values, (rows, columns)), shape=(len(shapes), cells))


def indicators(places: gpd.GeoDataFrame, grid: IndicatorGrid) -> pd.DataFrame:
    """The grid's indicators for each territory (one row each, in the order of ``places``).

    Parameters
    ----------
    places : GeoDataFrame
        From :func:`territories` (``kind == "grid"`` rows take every cell whole), in ``grid.crs``.
    grid : IndicatorGrid

    Returns
    -------
    pandas.DataFrame
        ``method``, every indicator of :data:`INDICATORS` (NaN where the grid lacks a column),
        ``low_income_method``, ``imputed_share``, ``grid_coverage``, ``fragile``, ``fragile_reason``;
        figures unrounded (:func:`rounded`).

    Examples
    --------
    Two 200 m cells of 100 residents and 40 households; a zone covers the first and half the second:

    >>> squares = shapely.box([0, 200], [0, 0], [200, 400], [200, 200])
    >>> counts = pd.DataFrame({"ind": [100.0, 100.0], "men": [40.0, 40.0], "men_1ind": [10.0, 30.0]})
    >>> grid = IndicatorGrid("2019", counts, squares, "EPSG:3035", "estimated")
    >>> zone = gpd.GeoDataFrame({"kind": ["zone"]}, geometry=[shapely.box(0, 0, 300, 200)], crs="EPSG:3035")
    >>> row = indicators(zone, grid).iloc[0]
    >>> float(row["residents"]), round(float(row["one_person_share"]), 4), row["method"]
    (150.0, 0.4167, 'area-weighted')
    """
    shapes = places.geometry.to_numpy()
    whole = places["kind"].to_numpy() == "grid"
    weights = overlap_weights(shapes, whole, grid)
    columns = list(grid.counts.columns)
    sums = pd.DataFrame(weights @ grid.counts.to_numpy(dtype=float), columns=columns)
    table: pd.DataFrame = pd.DataFrame({"method": _methods(weights)})
    with np.errstate(divide="ignore", invalid="ignore"):
        for indicator in INDICATORS:
            table[indicator.name] = _ratio(sums, indicator.numerator, indicator.denominator)
        table["low_income_method"] = np.where(np.isfinite(table["low_income_share"]), grid.low_income_method, "")
        table["imputed_share"] = _ratio(sums, "ind_imputed", "ind")
        area = shapely.area(shapes)
        # the grid row too: with two vintages it spans both grids' boxes, which may differ
        table["grid_coverage"] = shapely.area(shapely.intersection(shapes, grid.extent)) / area
    reasons = _fragile(sums, table["imputed_share"].to_numpy())
    table["fragile"] = reasons != ""
    table["fragile_reason"] = reasons
    return table


def _methods(weights: sparse.csr_matrix) -> np.ndarray:
    """``counted`` where every cell of a territory lies wholly inside it, ``area-weighted`` otherwise."""
    present = np.flatnonzero(np.diff(weights.indptr) > 0)
    smallest = np.zeros(weights.shape[0])
    if len(present):
        smallest[present] = np.minimum.reduceat(weights.data, weights.indptr[present])
    return np.where(smallest >= 1 - 1e-9, "counted", "area-weighted")


def _ratio(sums: pd.DataFrame, numerator: str, denominator: str | None) -> np.ndarray:
    if numerator not in sums or (denominator is not None and denominator not in sums):
        return np.full(len(sums), np.nan)
    top = sums[numerator].to_numpy()
    if denominator is None:
        return top
    bottom = sums[denominator].to_numpy()
    return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)


def _fragile(sums: pd.DataFrame, imputed: np.ndarray) -> np.ndarray:
    """``few households``, ``mostly imputed``, both (``;``) or empty, per territory."""
    households = sums["men"].to_numpy() if "men" in sums else sums["ind"].to_numpy() / PERSONS_PER_HOUSEHOLD
    few = np.where(households < FRAGILE_MIN_HOUSEHOLDS, "few households", "")
    mostly = np.where(np.nan_to_num(imputed) > FRAGILE_IMPUTED_SHARE, "mostly imputed", "")
    both = (few != "") & (mostly != "")
    return np.where(both, np.char.add(np.char.add(few, ";"), mostly), np.char.add(few, mostly)).astype(object)


def rounded(table: pd.DataFrame) -> pd.DataFrame:
    """A copy with figures rounded to what they mean (a tenth of a resident, a hundredth of a percent, a euro).

    For the CSV and the API; the page formats the unrounded figures (rounding twice, 0.03846 would
    read 0.0385, then 3,9 %).
    """
    table = table.copy()
    for column in table.columns:
        unit = UNITS.get(_base(column))
        if unit is not None:
            table[column] = table[column].astype(float).round(DIGITS[unit])
    return table


def _base(column: str) -> str:
    """The indicator a column holds (``residents_2019`` → ``residents``)."""
    return re.sub(r"_((?:19|20)\d\d|grid\d+|change)$", "", column)


def combine(tables: list[pd.DataFrame], vintages: list[str]) -> pd.DataFrame:
    """One table from each vintage's: columns suffixed ``_{vintage}``, and ``{indicator}_change``.

    The change is the last vintage minus the first; it is empty (NaN) wherever either is, so a
    column one vintage lacks never reads as zero, and wherever the two grids cover different
    shares of the territory (``grid_coverage``, :data:`~carroyage.settings.CHANGE_MAX_COVERAGE_GAP`):
    they would not describe the same place. One vintage: its table, unsuffixed.
    """
    if len(tables) == 1:
        return tables[0]
    parts = [table.add_suffix(f"_{vintage}") for table, vintage in zip(tables, vintages, strict=True)]
    gap = (tables[-1]["grid_coverage"] - tables[0]["grid_coverage"]).abs()
    comparable = gap.to_numpy() <= CHANGE_MAX_COVERAGE_GAP
    changes = {
        f"{indicator.name}_change": (tables[-1][indicator.name] - tables[0][indicator.name]).where(comparable)
        for indicator in INDICATORS
        if indicator.name in tables[0]
    }
    combined: pd.DataFrame = pd.concat([*parts, pd.DataFrame(changes)], axis=1)
    return combined


def read_stats(path: Path) -> pd.DataFrame:
    """INSEE's figures per QPV (``qpv2024_stats_france.csv``), one row per QPV code.

    A QPV spanning two communes has one row per commune there: populations and households are
    summed, the poverty rate is averaged weighted by population. Returns ``insee_population``,
    ``insee_households``, ``insee_poverty_rate`` (a share), indexed by code.
    """
    if not Path(path).is_file():
        raise InputError(NO_SUCH_FILE.format(path=path) + " (chiffres INSEE des QPV)")
    with Path(path).open(encoding="utf-8-sig") as handle:
        delimiter = sniff_delimiter(handle.readline())
    frame = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    lower = {c.strip().lower(): c for c in frame.columns}
    missing = [c for c in ("codeqpv", "popmuniqpv") if c not in lower]
    if missing:
        raise InputError(
            f"{path} : pas de colonne {', '.join(missing)} ; "
            "attendu les chiffres INSEE des QPV (codeQPV, popMuniQPV, taux_pauvrete_60%)"
        )
    figures = pd.DataFrame({"code": frame[lower["codeqpv"]].str.strip()})
    for source, target in STATS_RENAMES.items():
        figures[target] = _numbers(frame, lower.get(source))
    figures["poor"] = _numbers(frame, lower.get(POVERTY_COLUMN)) / 100 * figures["insee_population"]
    figures["rated"] = np.where(np.isfinite(figures["poor"]), figures["insee_population"], np.nan)
    summed = figures.groupby("code", sort=True).sum(min_count=1)
    summed["insee_poverty_rate"] = summed["poor"] / summed["rated"]
    figures_by_code: pd.DataFrame = summed[["insee_population", "insee_households", "insee_poverty_rate"]]
    return figures_by_code


def _numbers(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None:
        return np.full(len(frame), np.nan)
    return parse_decimals(pa.array(frame[column].to_numpy(dtype=object), pa.string()))


def with_insee(
    table: pd.DataFrame, places: pd.DataFrame, stats: pd.DataFrame | None, vintages: list[str]
) -> pd.DataFrame:
    """INSEE's population and poverty rate beside the grid's, with their ratios.

    Zones take INSEE's QPV figures by code (``stats``); communes and the EPCI their municipal
    population from the reference layer. ``population_ratio`` is the grid's residents over INSEE's
    population, ``poverty_ratio`` the grid's households' poverty rate over INSEE's (of
    individuals), per vintage.
    """
    out = table.copy()
    population = places["insee_population"].to_numpy(dtype=float)
    households = poverty = np.full(len(out), np.nan)
    if stats is not None:
        zone = places["kind"].to_numpy() == "zone"
        found = stats.reindex(places["code"].to_numpy())
        population = np.where(zone, found["insee_population"].to_numpy(), population)
        households = np.where(zone, found["insee_households"].to_numpy(), np.nan)
        poverty = np.where(zone, found["insee_poverty_rate"].to_numpy(), np.nan)
    out["insee_population"], out["insee_households"], out["insee_poverty_rate"] = population, households, poverty
    suffixes = [""] if len(vintages) == 1 else [f"_{vintage}" for vintage in vintages]
    with np.errstate(divide="ignore", invalid="ignore"):
        for suffix in suffixes:
            out[f"population_ratio{suffix}"] = out[f"residents{suffix}"] / out["insee_population"]
            out[f"poverty_ratio{suffix}"] = (
                out.get(f"household_poverty_rate{suffix}", np.nan) / out["insee_poverty_rate"]
            )
    finite: pd.DataFrame = out.replace([np.inf, -np.inf], np.nan)
    return finite


def tableau(
    places: gpd.GeoDataFrame, grids: list[IndicatorGrid], stats: pd.DataFrame | None = None, *, exact: bool = False
) -> pd.DataFrame:
    """The whole tableau: identity columns, each vintage's indicators and changes, INSEE's figures.

    Figures are :func:`rounded` unless ``exact``.

    Examples
    --------
    >>> squares = shapely.box([0], [0], [200], [200])
    >>> grid = IndicatorGrid("2019", pd.DataFrame({"ind": [50.0], "men": [40.0]}), squares, "EPSG:3035", "estimated")
    >>> places = territories(gpd.GeoDataFrame({"zone_type": ["zone"], "code": ["Z1"], "name": ["A"]},
    ...     geometry=[shapely.box(0, 0, 100, 200)], crs="EPSG:3035"), grid.extent, "EPSG:3035")
    >>> tableau(places, [grid])[["kind", "code", "residents", "fragile"]].values.tolist()
    [['zone', 'Z1', 25.0, False], ['grid', 'grid', 50.0, False]]
    """
    vintages = [grid.vintage for grid in grids]
    parts = [indicators(places, grid) for grid in grids]
    unsupported = [
        indicator.name
        for indicator in INDICATORS
        if not any(
            indicator.numerator in grid.counts and (indicator.denominator or "ind") in grid.counts for grid in grids
        )
    ]
    parts = [part.drop(columns=unsupported) for part in parts]
    identity = pd.DataFrame(places[list(IDENTITY)]).reset_index(drop=True)
    table = pd.concat([identity, combine(parts, vintages)], axis=1)
    full = with_insee(table, places.reset_index(drop=True), stats, vintages)
    return full if exact else rounded(full)

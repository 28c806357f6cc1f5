"""What each analyst's command does, from files to files.

One function per command of the engine side (``delimit``, ``validate``, ``zones``, ``compare``,
``sensitivity``, ``map``): it reads its inputs, runs the stages and writes its outputs with their
manifest, and returns what the command prints. The CLI only parses options and prints; a notebook
or a script calls the same functions. The address check has its own in :mod:`carroyage.address`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from .around.compare import Comparison, compare
from .around.validate import Validation, validate
from .around.zones import WatchSettings, quartier_vecu, veille_active
from .engine.delimit import delimit, prepare
from .engine.readers import read_grid
from .engine.rules import get_rule
from .engine.sensitivity import parse_range, sensitivity
from .errors import CarroyageWarning, InputError
from .files import output_set, refuse_overwriting
from .geography import Geography, is_geography, read_geography
from .labels import MAP_TITLE
from .layers import read_layer, read_official
from .manifest import build_manifest, file_record
from .publish.output import add_layers, write_geography, write_layers
from .settings import (
    FACILITY_REACH_M,
    MIN_OVERLAP,
    PLAUSIBLE_MEDIAN_EUR,
    SENSITIVITY_CONTIGUITIES,
    SENSITIVITY_FRACTIONS,
    SENSITIVITY_MIN_POPULATIONS,
    UNCHANGED_IOU,
    VECU_DISTANCE_M,
)

Progress = Callable[[str], None]


def delimit_file(
    grid: Path,
    out: Path,
    rule: str = "decree-2014",
    *,
    geojson: Path | None = None,
    progress: Progress | None = None,
    **options: object,
) -> tuple[Geography, list[Path]]:
    """Read a grid, delimit its quartiers, write the geography; return it and the files written.

    ``options`` are those of :func:`carroyage.delimit` (``national_median``, ``contiguity``...).
    """
    refuse_overwriting(out, grid)
    if geojson is not None:
        refuse_overwriting(geojson, grid, out)
    references = ("national_median", "agglomeration_median", "agglomeration_population")
    get_rule(rule).with_params(**{k: v for k, v in options.items() if k not in references})  # checked first
    check_reference_figures(**{k: v for k, v in options.items() if k in references})  # type: ignore[arg-type]
    say = progress or (lambda message: None)
    say(f"reading {grid}")
    geography = delimit(read_grid(grid), rule, progress=progress, **options)  # type: ignore[arg-type]
    say(f"writing {out}")
    with output_set():  # the GeoPackage (or GeoParquet set) and the GeoJSON appear together
        return geography, write_geography(geography, out, geojson=geojson)


def validate_file(geography: Path, official: Path) -> Validation:
    """Agreement of a written geography with an official QPV layer."""
    return validate(read_geography(geography).cells, read_official(official))


def check_reference_figures(
    national_median: float | None = None,
    agglomeration_median: float | None = None,
    agglomeration_population: float | None = None,
) -> None:
    """Refuse meaningless reference figures; warn of implausible ones (a likely typo).

    >>> check_reference_figures(national_median=22_040)
    >>> check_reference_figures(national_median=0)
    Traceback (most recent call last):
    ...
    carroyage.errors.InputError: --national-median 0: expected a positive number of euros a year
    """
    for name, value in (("national-median", national_median), ("agglomeration-median", agglomeration_median)):
        if value is None:
            continue
        if not math.isfinite(value) or value <= 0:
            raise InputError(f"--{name} {value:g}: expected a positive number of euros a year")
        low, high = PLAUSIBLE_MEDIAN_EUR
        if not low <= value <= high:
            warnings.warn(
                f"--{name} {value:g} € a year is outside {low:,}–{high:,} €; a typo? "
                "(France's 2019 median standard of living: 22040)",
                CarroyageWarning,
                stacklevel=2,
            )
    if agglomeration_population is not None and not (
        math.isfinite(agglomeration_population) and agglomeration_population > 0
    ):
        raise InputError(f"--agglomeration-population {agglomeration_population:g}: expected a positive number")


@dataclass(frozen=True)
class ZonesResult:
    """The zones added to a geography."""

    vecu: gpd.GeoDataFrame
    watch: gpd.GeoDataFrame


def zones_file(
    geography: Path,
    vecu_distance: float = VECU_DISTANCE_M,
    clip: Path | None = None,
    facilities: Path | None = None,
    facility_reach: float = FACILITY_REACH_M,
    previous: Path | None = None,
    local: Path | None = None,
    watch: WatchSettings = WatchSettings(),
) -> ZonesResult:
    """Add the ``quartier_vecu`` and ``veille_active`` layers to a written geography."""
    geo = read_geography(geography)
    optional = {"clip": clip, "facilities": facilities, "previous": previous, "local": local}
    layers = {name: read_layer(path, name) if path else None for name, path in optional.items()}
    vecu = quartier_vecu(geo.qpv, vecu_distance, layers["clip"], layers["facilities"], facility_reach)
    watched = veille_active(geo, layers["previous"], layers["local"], watch)
    record = build_manifest(
        stage="zones",
        inputs={name: file_record(path) for name, path in optional.items()},
        vecu_distance_m=vecu_distance,
        facility_reach_m=facility_reach,
        watch=watch,
    )
    manifest = {**geo.manifest, "zones": record, "versions": record["versions"], "date": record["date"]}
    add_layers(geography, {"quartier_vecu": vecu, "veille_active": watched}, manifest)
    return ZonesResult(vecu, watched)


def compare_files(
    old: Path, new: Path, out: Path, min_overlap: float = MIN_OVERLAP, unchanged_iou: float = UNCHANGED_IOU
) -> tuple[Comparison, bool]:
    """Classify the quartiers of two geographies and write one layer per class.

    Returns the comparison and whether residents were counted (a grid on either side).
    """
    refuse_overwriting(out, old, new)
    (old_layer, old_cells), (new_layer, new_cells) = _zones_and_cells(old), _zones_and_cells(new)
    cells = new_cells if new_cells is not None else old_cells
    if cells is not None:
        old_layer, new_layer = _near(old_layer, cells), _near(new_layer, cells)
    result = compare(old_layer, new_layer, cells, min_overlap, unchanged_iou)
    manifest = build_manifest(
        stage="compare",
        inputs={"old": file_record(old), "new": file_record(new)},
        min_overlap=min_overlap,
        unchanged_iou=unchanged_iou,
    )
    write_layers(out, result.layers, manifest)
    return result, cells is not None


def _zones_and_cells(path: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """A geography's quartiers and cells, or any polygon layer and no cells."""
    if is_geography(path):
        geo = read_geography(path)
        return geo.qpv, geo.cells
    return read_layer(path, "geography"), None


def _near(layer: gpd.GeoDataFrame, cells: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Only the quartiers within the grid's extent (a national layer against one city)."""
    layer = layer.to_crs(cells.crs)
    return layer[layer.intersects(shapely.box(*cells.total_bounds))]


@dataclass(frozen=True)
class SensitivityResult:
    """One row per run, and the share of runs in which each cell is in a quartier."""

    runs: pd.DataFrame
    stability: gpd.GeoDataFrame
    out: Path


def sensitivity_file(
    grid: Path,
    rule: str = "decree-2014",
    *,
    thresholds: str = SENSITIVITY_FRACTIONS,
    contiguities: str = SENSITIVITY_CONTIGUITIES,
    min_populations: str = SENSITIVITY_MIN_POPULATIONS,
    out: Path | None = None,
    **references: float | None,
) -> SensitivityResult:
    """Re-run the rule over a grid of parameters and write the ``stability`` cell layer.

    Every parameter is checked before the grid is read. ``references`` are ``national_median``,
    ``agglomeration_median`` and ``agglomeration_population``, as for :func:`carroyage.delimit`.
    """
    fractions = parse_range(thresholds, "--threshold")
    linkings = [c.strip() for c in contiguities.split(",") if c.strip()]
    populations = [int(p) for p in parse_range(min_populations, "--min-population")]
    base = get_rule(rule)
    for linking in linkings:
        base.with_params(contiguity=linking)  # validates each value before any work
    cells = read_grid(grid)
    prepared = prepare(cells, **references)  # type: ignore[arg-type]
    runs, stability = sensitivity(prepared, base, fractions, linkings, populations)
    out = out or Path(f"{grid.stem}_sensitivity.gpkg")
    refuse_overwriting(out, grid)
    manifest = build_manifest(
        stage="sensitivity",
        rule=base,
        inputs={"grid": cells.describe()},
        fractions=fractions,
        contiguities=linkings,
        min_populations=populations,
    )
    write_layers(out, {"stability": stability}, manifest, tables={"runs": runs})
    return SensitivityResult(runs, stability, out)


def map_file(
    geography: Path,
    out: Path,
    *,
    self_contained: bool = False,
    official: Path | None = None,
    static: Path | None = None,
    title: str = MAP_TITLE,
) -> list[Path]:
    """Publish a written geography as a web map (and a static PNG/PDF); return the files written."""
    from .publish.maps import interactive_map, save_map, static_format, static_map  # folium: only here

    if static:
        static_format(static)  # a wrong name fails before anything is written
    geo = read_geography(geography)
    reference = read_official(official) if official else None
    written = [save_map(interactive_map(geo, reference, title), out, self_contained)]
    if static:
        written.append(static_map(geo, static, reference, title))
    return written


@dataclass(frozen=True)
class IndicatorsResult:
    """The tableau de bord (one row per zone and reference territory) and the files written."""

    table: pd.DataFrame
    written: list[Path]


def indicators_file(
    zones: Path,
    grids: list[Path],
    out: Path,
    *,
    stats: Path | None = None,
    reference: Path | None = None,
    html: Path | None = None,
    xlsx: Path | None = None,
    national_medians: list[float] | None = None,
    progress: Progress | None = None,
) -> IndicatorsResult:
    """The grid's indicators for every zone and reference territory, as CSV (and HTML, XLSX).

    ``national_medians``: one for every grid, or one per grid (default
    :data:`carroyage.settings.INDICATORS_NATIONAL_MEDIAN`). Inputs and output names are checked
    before any grid is read.
    """
    from .around import indicators as ind
    from .errors import InputError
    from .publish import tableau as tab
    from .settings import INDICATORS_NATIONAL_MEDIAN, INDICATORS_RULE

    say = progress or (lambda message: None)
    medians = _medians(national_medians or [INDICATORS_NATIONAL_MEDIAN], len(grids))
    if xlsx is not None:
        tab.require_openpyxl(xlsx)
    places_layer = ind.read_zones(zones)
    reference_layer = read_layer(reference, "reference communes") if reference else None
    insee = ind.read_stats(stats) if stats else None
    vintages = ind.vintage_names(grids)
    loaded = []
    for path, vintage, median in zip(grids, vintages, medians, strict=True):
        say(f"reading {path} and estimating shares below the threshold")
        loaded.append(ind.read_indicator_grid(path, vintage, median))
    extent = shapely.union_all([grid.extent for grid in loaded])
    places = ind.territories(places_layer, extent, loaded[0].crs, reference_layer)
    if not (places["kind"] == "zone").any():
        raise InputError(
            f"{zones}: no zone meets the grid's extent ({', '.join(map(str, grids))}); expected zones over it"
        )
    say(f"indicators for {len(places)} territories")
    table = ind.tableau(places, loaded, insee)
    manifest = build_manifest(
        stage="indicators",
        inputs={
            "zones": file_record(zones),
            "stats": file_record(stats),
            "reference": file_record(reference),
        },
        grids=[
            {
                "vintage": grid.vintage,
                "input": grid.facts["input"],
                "national_median": median,
                "threshold": grid.facts["threshold_value"],
                "threshold_details": grid.facts["threshold"],
                "low_income_method": grid.low_income_method,
            }
            for grid, median in zip(loaded, medians, strict=True)
        ],
        rule=INDICATORS_RULE,
        method="cells weighted by the share of their square inside each territory; see docs/indicators.md",
        territories=int(len(places)),
    )
    say(f"writing {out}")
    written = tab.write_csv(table, out, manifest)
    if html is not None:
        written.append(tab.write_html(table, html, manifest, vintages))
    if xlsx is not None:
        written.append(tab.write_xlsx(table, xlsx, manifest))
    return IndicatorsResult(table, written)


def _medians(values: list[float], grids: int) -> list[float]:
    """One national median per grid (one value stands for all)."""
    from .errors import InputError

    if grids == 0:
        raise InputError("no --grid given; expected at least one income grid")
    if len(values) == 1:
        return values * grids
    if len(values) != grids:
        raise InputError(f"{len(values)} --national-median values for {grids} grids; expected one, or one per grid")
    return values

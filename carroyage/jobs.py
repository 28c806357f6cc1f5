"""What each analyst's command does, from files to files.

One function per command of the engine side (``delimit``, ``validate``, ``zones``, ``compare``,
``sensitivity``, ``map``): it reads its inputs, runs the stages and writes its outputs with their
manifest, and returns what the command prints. The CLI only parses options and prints; a notebook
or a script calls the same functions. The address check has its own in :mod:`carroyage.address`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import geopandas as gpd
import pandas as pd
import shapely

from .around.compare import Comparison, compare
from .around.validate import Validation, validate
from .around.zones import WatchSettings, quartier_vecu, veille_active
from .engine.delimit import delimit, prepare
from .engine.readers import read_grid
from .engine.rules import Rule, get_rule
from .engine.sensitivity import parse_range, sensitivity
from .errors import CarroyageWarning, InputError
from .files import output_set, refuse_overwriting
from .geography import Geography, is_geography, read_geography
from .labels import READING, WRITING
from .layers import codes_and_names, read_layer, read_official
from .manifest import build_manifest, file_record
from .publish.output import (
    GEOGRAPHY_SUFFIXES,
    add_layers,
    check_suffix,
    file_epsg,
    output_epsg,
    parse_crs,
    write_geography,
    write_layers,
)
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
    out_crs: str | None = None,
    progress: Progress | None = None,
    **options: object,
) -> tuple[Geography, list[Path]]:
    """Read a grid, delimit its quartiers, write the geography; return it and the files written.

    ``options`` are those of :func:`carroyage.delimit` (``national_median``, ``contiguity``...);
    ``out_crs`` the CRS of the files (default :func:`carroyage.publish.output.output_epsg`).
    """
    parse_crs(out_crs)  # a wrong CRS fails before the grid is read
    check_before_reading(grid, out, geojson, rule, options)
    say = progress or (lambda message: None)
    say(READING.format(path=grid))
    geography = _delimit_grid(grid, rule, say, options)
    say(WRITING.format(path=out))
    with output_set():  # the GeoPackage (or GeoParquet set) and the GeoJSON appear together
        return geography, write_geography(geography, out, geojson=geojson, crs=out_crs)


def validate_file(geography: Path, official: Path) -> Validation:
    """Agreement of a written geography with an official QPV layer (cell centres, as the benchmark).

    The cells are scored in the grid's own CRS, whichever CRS the file holds them in
    (:func:`carroyage.geography.read_geography` brings them back to it).
    """
    geo = read_geography(geography)
    return validate(geo.cells, read_official(official), resolution=geo.resolution)


REFERENCES = ("national_median", "agglomeration_median", "agglomeration_population")


def check_before_reading(
    source: Path,
    out: Path,
    geojson: Path | None,
    rule: str,
    options: dict[str, object],
    suffixes: tuple[str, ...] = GEOGRAPHY_SUFFIXES,
) -> Rule:
    """Everything a delimitation can refuse before its input is read: outputs, rule, figures.

    Returns the rule with its parameters set.
    """
    refuse_overwriting(out, source)  # the graver mistake first: naming the input as the output
    check_suffix(out, suffixes)
    if geojson is not None:
        refuse_overwriting(geojson, source, out)
    version = get_rule(rule).with_params(**{k: v for k, v in options.items() if k not in REFERENCES})
    check_reference_figures(**{k: v for k, v in options.items() if k in REFERENCES})  # type: ignore[arg-type]
    return version


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
    carroyage.errors.InputError: --national-median 0 : attendu un nombre positif d'euros par an
    """
    from .labels import euros

    for name, value in (("national-median", national_median), ("agglomeration-median", agglomeration_median)):
        if value is None:
            continue
        if not math.isfinite(value) or value <= 0:
            raise InputError(f"--{name} {value:g} : attendu un nombre positif d'euros par an")
        low, high = PLAUSIBLE_MEDIAN_EUR
        if not low <= value <= high:
            warnings.warn(
                f"--{name} {value:g} : hors de la plage plausible, de {euros(low)} à {euros(high)} par an ; "
                "une faute de frappe ? (niveau de vie médian de la France en 2019 : 22040)",
                CarroyageWarning,
                stacklevel=2,
            )
    if agglomeration_population is not None and not (
        math.isfinite(agglomeration_population) and agglomeration_population > 0
    ):
        raise InputError(f"--agglomeration-population {agglomeration_population:g} : attendu un nombre positif")


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
    out_crs: str | None = None,
) -> ZonesResult:
    """Add the ``quartier_vecu`` and ``veille_active`` layers to a written geography.

    The layers join the file in its own CRS; with ``out_crs`` another one, the whole file is
    rewritten in it, so that its layers keep one CRS.
    """
    target = parse_crs(out_crs)
    geo = read_geography(geography)
    optional = {"clip": clip, "facilities": facilities, "previous": previous, "local": local}
    kinds = {"clip": "polygons", "facilities": "points", "previous": "polygons", "local": "polygons"}
    layers = {name: read_layer(path, f"--{name}", kinds[name]) if path else None for name, path in optional.items()}
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
    added = {"quartier_vecu": vecu, "veille_active": watched}
    if target is None or target == file_epsg(geography):
        add_layers(geography, added, manifest)
    else:
        whole = Geography(geo.cell_table, geo.qpv, manifest, {**geo.layers, **added}, geo.resolution, geo.epsg)
        write_geography(whole, geography, crs=target)  # every layer again, so the file keeps one CRS
    return ZonesResult(vecu, watched)


def compare_files(
    old: Path,
    new: Path,
    out: Path,
    min_overlap: float = MIN_OVERLAP,
    unchanged_iou: float = UNCHANGED_IOU,
    out_crs: str | None = None,
) -> tuple[Comparison, bool]:
    """Classify the quartiers of two geographies and write one layer per class.

    The layers are written in ``out_crs``, by default :func:`carroyage.publish.output.output_epsg`
    of the grid on either side (Lambert-93 when neither side has one). When a side is an official
    layer (ANCT's ``code_qp`` column), every quartier gets the ``code_qp`` and ``lib_qp`` of the
    official QPV it matches most (overlap of at least ``min_overlap``; NULL when none). Returns
    the comparison and whether residents were counted (a grid on either side).
    """
    refuse_overwriting(out, old, new)
    parse_crs(out_crs)
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
    official = next((layer for layer in (old_layer, new_layer) if "code_qp" in layer.columns), None)
    layers = result.layers if official is None else _official_names(result.layers, official, min_overlap)
    grid_epsg = cells.crs.to_epsg() if cells is not None else None
    write_layers(out, layers, manifest, crs=output_epsg(grid_epsg or 3035, out_crs))
    return result, cells is not None


def _official_names(
    layers: dict[str, gpd.GeoDataFrame], official: gpd.GeoDataFrame, min_overlap: float
) -> dict[str, gpd.GeoDataFrame]:
    """Each layer with ``code_qp`` and ``lib_qp``: the official QPV each quartier matches most."""
    from .publish.output import most_overlapped

    codes, names = codes_and_names(official, "O")
    shapes = official.geometry.to_numpy()
    reference = gpd.GeoDataFrame({"code": codes, "name": names}, geometry=shapes, crs=official.crs)
    named = {}
    for name, layer in layers.items():
        layer = layer.copy()
        layer["code_qp"], layer["lib_qp"] = most_overlapped(layer, reference, min_overlap)
        named[name] = layer
    return named


def _zones_and_cells(path: Path) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """A geography's quartiers and cells, or any polygon layer and no cells."""
    if is_geography(path):
        geo = read_geography(path)
        return geo.qpv, geo.cells
    return read_layer(path, "géographie", "polygons"), None


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
    title: str | None = None,
    context: Path | None = None,
    tableau: Path | None = None,
) -> list[Path]:
    """Publish a written geography as a web map (and a static PNG/PDF); return the files written.

    Parameters
    ----------
    geography : Path
        A GeoPackage written by ``carroyage delimit`` (and ``zones``).
    out : Path
        ``*.html``: the web map; ``*.png`` or ``*.pdf``: the static map instead (never HTML in a
        file named like a picture).
    self_contained : bool
        Inline Leaflet in the web map (it then draws with no network).
    official : Path, optional
        Official QPV layer, drawn for comparison.
    static : Path, optional
        Also write a static map (``.png`` or ``.pdf``).
    title : str, optional
        The title; by default "Géographie prioritaire — <commune>".
    context : Path, optional
        Communes file for the offline context (default: shipped communes that meet the geography).
    tableau : Path, optional
        The official QPVs' tableau de bord (``carroyage indicators --html``): fiches link to it.
    """
    from .publish.maps import interactive_map, map_format, save_map, static_format, static_map  # folium: only here

    kind = map_format(out)  # a wrong name fails before anything is written
    if static:
        static_format(static)
    geo = read_geography(geography)
    reference = read_official(official) if official else None
    if kind == "html":
        # a relative URL, percent-encoded: a file named "javascript:x" or "a#b?.html" stays a file
        link = quote(os.path.relpath(tableau, out.parent).replace(os.sep, "/")) if tableau else None
        written = [save_map(interactive_map(geo, reference, title, context, link), out, self_contained)]
    else:
        written = [static_map(geo, out, reference, title, context)]
    if static:
        written.append(static_map(geo, static, reference, title, context))
    return written


@dataclass(frozen=True)
class IndicatorsResult:
    """The tableau de bord (one row per zone and reference territory) and the files written.

    ``table`` is rounded as the CSV; ``exact`` holds the same figures unrounded (what the page shows).
    """

    table: pd.DataFrame
    written: list[Path]
    exact: pd.DataFrame | None = None


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
    reference_layer = read_layer(reference, "communes de référence") if reference else None
    insee = ind.read_stats(stats) if stats else None
    vintages = ind.vintage_names(grids)
    loaded = []
    for path, vintage, median in zip(grids, vintages, medians, strict=True):
        say(f"lecture de {path} et estimation des parts sous le seuil")
        loaded.append(ind.read_indicator_grid(path, vintage, median))
    extent = shapely.union_all([grid.extent for grid in loaded])
    places = ind.territories(places_layer, extent, loaded[0].crs, reference_layer)
    if not (places["kind"] == "zone").any():
        raise InputError(
            f"{zones} : aucune zone ne rencontre l'emprise du carroyage ({', '.join(map(str, grids))}) ; "
            "attendu des zones sur le carroyage"
        )
    say(f"indicateurs de {len(places)} territoires")
    exact = ind.tableau(places, loaded, insee, exact=True)
    table = ind.rounded(exact)
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
    say(WRITING.format(path=out))
    written = tab.write_csv(table, out, manifest)
    if html is not None:  # the page and the workbook round once, as they show each figure
        written.append(tab.write_html(exact, html, manifest, vintages))
    if xlsx is not None:
        written.append(tab.write_xlsx(exact, xlsx, manifest))
    return IndicatorsResult(table, written, exact)


def _medians(values: list[float], grids: int) -> list[float]:
    """One national median per grid (one value stands for all)."""
    from .errors import InputError

    if grids == 0:
        raise InputError("aucun --grid ; attendu au moins un carroyage de revenus")
    if len(values) == 1:
        return values * grids
    if len(values) != grids:
        raise InputError(
            f"{len(values)} valeurs de --national-median pour {grids} carroyage{'s' if grids > 1 else ''} ; "
            "attendu une seule, ou une par carroyage"
        )
    return values


# -- household microdata (issue 16; docs/households.md) ------------------------------------------


def delimit_households_file(
    households: Path,
    out: Path,
    rule: str = "decree-2014",
    *,
    columns: object = None,
    crs: str | None = None,
    resolution: int = 200,
    geojson: Path | None = None,
    out_crs: str | None = None,
    progress: Progress | None = None,
    **options: object,
) -> tuple[Geography, list[Path]]:
    """Read household microdata, delimit exactly, write the geography; return it and the files.

    ``columns`` is a :class:`carroyage.engine.households.HouseholdColumns`; ``options`` those of
    :func:`carroyage.delimit` (``national_median`` is the national median of declared income per UC).
    Bad rows per reason go to ``progress`` and the manifest. ``crs`` is the CRS of the households'
    coordinates, ``out_crs`` that of the files written (as for :func:`delimit_file`).
    """
    from .engine.households import HouseholdColumns, bad_rows_summary, delimit_households, read_households

    parse_crs(out_crs)
    check_before_reading(households, out, geojson, rule, options)
    say = progress or (lambda message: None)
    say(f"lecture des ménages {households}")
    chosen = columns if isinstance(columns, HouseholdColumns) else HouseholdColumns()
    read = read_households(households, chosen, crs)
    say(bad_rows_summary(read))
    geography = delimit_households(read, rule, resolution=resolution, progress=progress, **options)  # type: ignore[arg-type]
    say(WRITING.format(path=out))
    with output_set():
        return geography, write_geography(geography, out, geojson=geojson, crs=out_crs)


def _delimit_grid(grid: Path, rule: str, say: Progress, options: dict[str, object]) -> Geography:
    """Delimit a grid file; a table from ``carroyage grid`` brings its exact agglomeration figures.

    Those are in its manifest sidecar (:func:`carroyage.engine.households.grid_reference`); figures
    given in ``options`` win, and the manifest says where the median came from.
    """
    from .engine.households import grid_reference, with_grid_reference
    from .labels import euros

    cells = read_grid(grid)
    reference = grid_reference(grid, cells)
    chosen = dict(options)
    if reference is not None:
        for key in ("agglomeration_median", "agglomeration_population"):
            chosen[key] = reference[key] if chosen.get(key) is None else chosen[key]
        if options.get("agglomeration_median") is None:
            say(
                f"médiane de l'agglomération {euros(reference['agglomeration_median'])} : exacte, calculée sur "
                f"les ménages ({reference['sidecar']['path']})"
            )
    geography = delimit(cells, rule, progress=say, **chosen)  # type: ignore[arg-type]
    return geography if reference is None else with_grid_reference(geography, cells, reference, options)


def grid_households_file(
    households: Path,
    out: Path,
    rule: str = "decree-2014",
    *,
    columns: object = None,
    crs: str | None = None,
    resolution: int = 200,
    secrecy: bool = False,
    poverty_median: float | None = None,
    progress: Progress | None = None,
    **options: object,
) -> tuple[pd.DataFrame, dict[str, object], list[Path]]:
    """Grid household microdata into a Filosofi-like table (CSV or Parquet) and its manifest.

    Without ``secrecy`` the table carries exact ``median_income`` and, when the rule's threshold
    can be computed (``national_median`` given, or a rule without it), ``population_low``.
    """
    import json

    from .engine.households import (
        HouseholdColumns,
        agglomeration_facts,
        apply_secrecy,
        bad_rows_summary,
        filosofi_cells,
        grid_households,
        read_households,
        sidecar_path,
    )
    from .files import atomic_path
    from .labels import integer
    from .manifest import sha256, shown_path
    from .settings import POVERTY_LINE_FRACTION, POVERTY_NATIONAL_MEDIAN_EUR, SECRECY_BLOCKS_M, SECRECY_MIN_HOUSEHOLDS

    version = check_before_reading(households, out, None, rule, options, suffixes=(".csv", ".parquet"))
    reference = {k: v for k, v in options.items() if k in REFERENCES}
    say = progress or (lambda message: None)
    say(f"lecture des ménages {households}")
    chosen = columns if isinstance(columns, HouseholdColumns) else HouseholdColumns()
    read = read_households(households, chosen, crs)
    say(bad_rows_summary(read))
    say(f"{integer(len(read))} ménages répartis en carreaux de {resolution} m")
    gridded = grid_households(read, resolution)
    threshold, facts = agglomeration_facts(gridded, version, **reference)  # type: ignore[arg-type]
    table = filosofi_cells(gridded, threshold, poverty_median=poverty_median or POVERTY_NATIONAL_MEDIAN_EUR)
    if secrecy:
        say("secret statistique : les carreaux de moins de 11 ménages sont regroupés")
        table = apply_secrecy(table)
    manifest = build_manifest(
        stage="grid",
        rule=version,
        inputs={"households": read.facts},
        resolution_m=resolution,
        grid_epsg=read.grid_epsg,
        cells=int(len(table)),
        poverty_line={
            "fraction": POVERTY_LINE_FRACTION,
            "national_median": poverty_median or POVERTY_NATIONAL_MEDIAN_EUR,
            "income": "disposable (standard of living)" if read.disposable is not None else "declared income per UC",
        },
        secrecy={"min_households": SECRECY_MIN_HOUSEHOLDS, "blocks_m": list(SECRECY_BLOCKS_M)} if secrecy else None,
        imputed_cells=int(table["i_est_200"].sum()),
        **facts,
    )
    sidecar = sidecar_path(out)
    say(WRITING.format(path=out))
    with output_set():
        with atomic_path(out) as temporary:
            if out.suffix.lower() == ".csv":
                table.to_csv(temporary, index=False)
            else:
                table.to_parquet(temporary, index=False)
            manifest["output"] = {"path": shown_path(out), "sha256": sha256(temporary)}  # delimit pairs them by it
        with atomic_path(sidecar) as temporary:
            temporary.write_text(
                json.dumps(manifest, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8"
            )
    return table, manifest, [out, sidecar]


def synth_file(
    grid: Path, out: Path, seed: int = 0, national_median: float | None = None
) -> tuple[dict[str, object], Path]:
    """Draw synthetic households from a Filosofi grid and write them (Parquet or CSV)."""
    from .engine.synth import synthesise, write_synthetic
    from .settings import POVERTY_NATIONAL_MEDIAN_EUR

    refuse_overwriting(out, grid)
    synthetic = synthesise(grid, seed, national_median=national_median or POVERTY_NATIONAL_MEDIAN_EUR)
    return synthetic.facts, write_synthetic(synthetic, out)

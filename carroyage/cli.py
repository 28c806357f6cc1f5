"""The ``carroyage`` command.

Every subcommand turns a :class:`CarroyageError` into one line on stderr and exit code 2; stage
messages go to stderr, results to stdout.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .data import QPV_2024
from .errors import CarroyageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="France's géographie prioritaire (QPV) from 200 m income grids.",
)


class Stages:
    """Prints each stage with the elapsed time to stderr (silent with ``--quiet``)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            typer.echo(f"  [{time.perf_counter() - self.start:6.2f} s] {message}…", err=True)


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No stage messages on stderr.")]


@app.command()
def delimit(
    grid: Annotated[Path, typer.Argument(help="Income grid: Filosofi CSV/GPKG/SHP/Parquet, a GeoTIFF, or an exact cell table.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .gpkg (or .parquet: one file per layer).")],
    rule: Annotated[str, typer.Option(help="Rule version: seed or decree-2014.")] = "decree-2014",
    national_median: Annotated[Optional[float], typer.Option(help="National median income, € a year, in the grid's concept (2019 standard of living: 22040).")] = None,
    agglomeration_median: Annotated[Optional[float], typer.Option(help="Median income of the unité urbaine (default: estimated from the grid).")] = None,
    agglomeration_population: Annotated[Optional[float], typer.Option(help="Population of the unité urbaine (default: the grid's).")] = None,
    contiguity: Annotated[Optional[str], typer.Option(help="rook (shared edge) or queen (edge or corner).")] = None,
    min_population: Annotated[Optional[int], typer.Option(help="Minimum residents of a quartier (1000).")] = None,
    threshold_fraction: Annotated[Optional[float], typer.Option(help="Fraction of the reference median (0.6).")] = None,
    low_income_share: Annotated[Optional[float], typer.Option(help="Share of residents below the threshold a quartier must exceed (0.5).")] = None,
    gap_fill: Annotated[Optional[int], typer.Option(help="Fill enclosed gaps of at most this many cells (4; 0: off).")] = None,
    min_agglomeration_population: Annotated[Optional[int], typer.Option(help="Smallest unité urbaine holding quartiers (10000).")] = None,
    geojson: Annotated[Optional[Path], typer.Option(help="Also write the quartiers as GeoJSON (EPSG:4326).")] = None,
    quiet: Quiet = False,
) -> None:
    """Delimit priority quartiers on an income grid and write them with their cells and manifest."""
    from .delimit import delimit as run_delimit
    from .output import write_geography
    from .readers import read_grid

    say = Stages(quiet)
    say(f"reading {grid}")
    cells = read_grid(grid)
    geography = run_delimit(
        cells,
        rule,
        national_median=national_median,
        agglomeration_median=agglomeration_median,
        agglomeration_population=agglomeration_population,
        progress=say,
        contiguity=contiguity,
        min_population=min_population,
        threshold_fraction=threshold_fraction,
        low_income_share=low_income_share,
        gap_fill_cells=gap_fill,
        min_agglomeration_population=min_agglomeration_population,
    )
    say(f"writing {out}")
    written = write_geography(geography, out, geojson=geojson)
    typer.echo(summary(geography))
    typer.echo("written: " + ", ".join(str(p) for p in written))


def summary(geography) -> str:
    """A short text summary of a delimitation."""
    m = geography.manifest
    threshold = m.get("threshold") or {}
    grid = m["inputs"]["grid"]
    estimated = bool(m["estimator"]["estimated"])
    lines = [
        f"rule {m['rule']['name']}: threshold {threshold.get('value', float('nan')):,.0f} € "
        f"({grid['income_concept']} income"
        + (f", {threshold['fraction']:.3f} × reference median {threshold['reference_median']:,.0f} €" if threshold else "")
        + ")",
        f"grid: {grid['cells']:,} cells, {grid['population']:,.0f} residents; "
        f"{m['clusters']:,} candidate clusters, {m['quartiers']:,} quartiers"
        + ("" if m["agglomeration_eligible"] else " (agglomeration below the minimum population: none can qualify)"),
    ]
    if len(geography.qpv):
        lines.append(f"{'code':8} {'residents':>10} {'median €':>9} {'share <S':>9} {'cells':>6} {'ha':>6}")
        for row in geography.qpv.itertuples():
            lines.append(
                f"{row.code:8} {row.population:10,.0f} {row.median_income:9,.0f} {row.low_income_share:9.1%} {row.cells:6d} {row.area_ha:6.0f}"
            )
    if estimated:
        lines.append("figures are ESTIMATED from the public grid (see docs/method.md)")
    return "\n".join(lines)


@app.command()
def validate(
    geography: Annotated[Path, typer.Argument(help="A GeoPackage written by `carroyage delimit`.")],
    official: Annotated[Path, typer.Option(help="Official QPV layer (default: the shipped 2024 layer).")] = QPV_2024,
) -> None:
    """Compare a computed geography with an official QPV layer, on the grid's residents."""
    from .output import read_geography
    from .validate import validate as run_validate
    from .layers import read_official

    geo = read_geography(geography)
    result = run_validate(geo.cells, read_official(official))
    typer.echo(f"official QPV residents on the grid: {result.official_residents:,.0f}")
    typer.echo(f"computed quartier residents:        {result.computed_residents:,.0f}")
    typer.echo(f"coverage  (official residents inside a computed quartier): {result.coverage:.1%}")
    typer.echo(f"precision (computed residents inside an official QPV):     {result.precision:.1%}")
    for row in result.per_official.itertuples():
        typer.echo(f"  {row.code_qp} {row.lib_qp[:34]:34} {row.residents:8,.0f} residents, {row.coverage:6.1%} covered")


@app.command()
def zones(
    geography: Annotated[Path, typer.Argument(help="A GeoPackage written by `carroyage delimit` (layers are added to it).")],
    vecu_distance: Annotated[float, typer.Option(help="Quartier vécu: metres around each QPV (300, the tax-code distance; 500 for NPNRU).")] = 300.0,
    clip: Annotated[Optional[Path], typer.Option(help="Communes or EPCI polygons the vécu must stay in (e.g. data/communes_amiens_metropole.geojson).")] = None,
    facilities: Annotated[Optional[Path], typer.Option(help="Points residents use; those within --facility-reach join the vécu.")] = None,
    facility_reach: Annotated[float, typer.Option(help="Metres from a QPV within which a facility joins its vécu.")] = 500.0,
    previous: Annotated[Optional[Path], typer.Option(help="A previous geography (polygons): its parts outside the new QPVs go to veille active.")] = None,
    local: Annotated[Optional[Path], typer.Option(help="Areas the contract designates for veille active, passed through.")] = None,
    near_margin: Annotated[float, typer.Option(help="Veille active for clusters whose median is within this share above the threshold.")] = 0.1,
    watch_min_population: Annotated[float, typer.Option(help="Smallest grid cluster worth watching (residents).")] = 100.0,
) -> None:
    """Add the quartier_vecu and veille_active layers to a geography."""
    from .layers import read_layer
    from .manifest import build_manifest, file_record
    from .output import add_layers, read_geography
    from .zones import WatchSettings, quartier_vecu, veille_active

    geo = read_geography(geography)
    optional = {"clip": clip, "facilities": facilities, "previous": previous, "local": local}
    layers = {name: read_layer(path, name) if path else None for name, path in optional.items()}
    settings = WatchSettings(near_margin=near_margin, min_population=watch_min_population)
    vecu = quartier_vecu(geo.qpv, vecu_distance, layers["clip"], layers["facilities"], facility_reach)
    watch = veille_active(geo, layers["previous"], layers["local"], settings)
    record = build_manifest(
        stage="zones",
        inputs={name: file_record(path) for name, path in optional.items()},
        vecu_distance_m=vecu_distance,
        facility_reach_m=facility_reach,
        watch=settings,
    )
    manifest = {**geo.manifest, "zones": record, "versions": record["versions"], "date": record["date"]}
    add_layers(geography, {"quartier_vecu": vecu, "veille_active": watch}, manifest)
    typer.echo(f"quartier_vecu: {len(vecu)} zones, {vecu_distance:g} m" + (", clipped" if clip else "") + (f", {int(vecu['facilities'].sum())} facilities joined" if facilities else ""))
    counts = watch["reason"].value_counts()
    typer.echo(f"veille_active: {len(watch)} zones" + "".join(f"\n  {reason}: {count}" for reason, count in counts.items()))
    typer.echo(f"written: {geography}")


@app.command()
def compare(
    old: Annotated[Path, typer.Argument(help="Former geography: a carroyage GeoPackage or any polygon layer.")],
    new: Annotated[Path, typer.Argument(help="New geography: a carroyage GeoPackage or any polygon layer.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="GeoPackage with one layer per class.")],
    min_overlap: Annotated[float, typer.Option(help="Quartiers match when they overlap by this share of the smaller.")] = 0.05,
    unchanged_iou: Annotated[float, typer.Option(help="Intersection over union from which a one-to-one match is unchanged.")] = 0.9,
) -> None:
    """Classify quartiers as new, modified, unchanged or left, with residents gained and lost."""
    from .compare import compare as run_compare
    from .manifest import build_manifest, file_record
    from .output import write_layers

    (old_layer, old_cells), (new_layer, new_cells) = _zones_and_cells(old), _zones_and_cells(new)
    cells = new_cells if new_cells is not None else old_cells
    if cells is not None:
        old_layer, new_layer = _near(old_layer, cells), _near(new_layer, cells)
    result = run_compare(old_layer, new_layer, cells, min_overlap, unchanged_iou)
    manifest = build_manifest(
        stage="compare", inputs={"old": file_record(old), "new": file_record(new)}, min_overlap=min_overlap, unchanged_iou=unchanged_iou
    )
    write_layers(out, result.layers, manifest)
    table = result.summary()
    typer.echo(f"{'class':10} {'quartiers':>9} {'gained':>9} {'lost':>9} {'area Δ ha':>10}")
    for row in table.itertuples():
        typer.echo(f"{row[1]:10} {row.quartiers:9d} {row.residents_gained:9,.0f} {row.residents_lost:9,.0f} {row.area_change_ha:10,.1f}")
    if cells is None:
        typer.echo("(no grid on either side: residents not counted)")
    typer.echo(f"written: {out}")


def _zones_and_cells(path: Path):
    """A geography's quartiers and cells, or any polygon layer and no cells."""
    from .layers import read_layer
    from .output import is_geography, read_geography

    if is_geography(path):
        geo = read_geography(path)
        return geo.qpv, geo.cells
    return read_layer(path, "geography"), None


def _near(layer, cells):
    """Only the quartiers within the grid's extent (a national layer against one city)."""
    import shapely

    layer = layer.to_crs(cells.crs)
    return layer[layer.intersects(shapely.box(*cells.total_bounds))]


@app.command()
def sensitivity(
    grid: Annotated[Path, typer.Argument(help="Income grid, as for `delimit`.")],
    rule: Annotated[str, typer.Option(help="Rule version: seed or decree-2014.")] = "decree-2014",
    national_median: Annotated[Optional[float], typer.Option(help="As for `delimit`.")] = None,
    agglomeration_median: Annotated[Optional[float], typer.Option(help="As for `delimit`.")] = None,
    agglomeration_population: Annotated[Optional[float], typer.Option(help="As for `delimit`.")] = None,
    threshold: Annotated[str, typer.Option(help="Threshold fractions: start:stop:step or a list.")] = "0.55:0.65:0.01",
    contiguity: Annotated[str, typer.Option(help="Comma-separated: rook,queen.")] = "rook,queen",
    min_population: Annotated[str, typer.Option(help="Comma-separated minimum populations.")] = "1000",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="GeoPackage for the stability layer (default: GRID_sensitivity.gpkg).")] = None,
) -> None:
    """Re-run the rule over a grid of parameters; print how quartiers move, write cell stability."""
    from .delimit import prepare
    from .manifest import build_manifest
    from .readers import read_grid
    from .rules import get_rule
    from .sensitivity import parse_range, sensitivity as run_sensitivity
    from .output import write_layers

    fractions = parse_range(threshold, "--threshold")
    contiguities = [c.strip() for c in contiguity.split(",") if c.strip()]
    populations = [int(p) for p in parse_range(min_population, "--min-population")]
    base = get_rule(rule)
    for c in contiguities:
        base.with_params(contiguity=c)  # validates each value before any work
    cells = read_grid(grid)
    prepared = prepare(cells, national_median=national_median, agglomeration_median=agglomeration_median, agglomeration_population=agglomeration_population)
    runs, stability = run_sensitivity(prepared, base, fractions, contiguities, populations)
    out = out or Path(f"{grid.stem}_sensitivity.gpkg")
    manifest = build_manifest(
        stage="sensitivity", rule=base, inputs={"grid": cells.describe()}, fractions=fractions, contiguities=contiguities, min_populations=populations
    )
    write_layers(out, {"stability": stability}, manifest, tables={"runs": runs})
    typer.echo(f"{'fraction':>8} {'contiguity':10} {'min pop':>7} {'threshold':>9} {'quartiers':>9} {'residents':>10}")
    for row in runs.itertuples():
        typer.echo(f"{row.threshold_fraction:8.3f} {row.contiguity:10} {row.min_population:7d} {row.threshold:9,.0f} {row.quartiers:9d} {row.residents:10,.0f}")
    stable = stability["stability"].to_numpy()
    typer.echo(f"cells in a quartier in every run: {(stable == 1).sum()}, in some runs only: {((stable > 0) & (stable < 1)).sum()}")
    typer.echo(f"written: {out}")


@app.command(name="map")
def map_(
    geography: Annotated[Path, typer.Argument(help="A GeoPackage written by `carroyage delimit` (and `zones`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write (e.g. maps/amiens.html).")],
    self_contained: Annotated[bool, typer.Option("--self-contained", help="Inline Leaflet: one file that draws with no network.")] = False,
    official: Annotated[Optional[Path], typer.Option(help="Official QPV layer to show for comparison.")] = None,
    png: Annotated[Optional[Path], typer.Option(help="Also write a static map for reports (.png or .pdf).")] = None,
    title: Annotated[str, typer.Option(help="Map title (French).")] = "Géographie prioritaire",
) -> None:
    """Publish a geography as an interactive web map (and a static one)."""
    from .layers import read_official
    from .maps import interactive_map, save_map, static_format, static_map
    from .output import read_geography

    if png:
        static_format(png)  # a wrong name fails before anything is written
    geo = read_geography(geography)
    reference = read_official(official) if official else None
    save_map(interactive_map(geo, reference, title), out, self_contained)
    typer.echo(f"written: {out}" + (" (self-contained)" if self_contained else ""))
    if png:
        static_map(geo, png, reference, title)
        typer.echo(f"written: {png}")


Zones = Annotated[Optional[list[Path]], typer.Option("--zones", help="Zone layers (default: the official 2024 QPV layer); a carroyage GeoPackage gives its qpv, quartier_vecu and veille_active layers.")]
Ban = Annotated[Optional[Path], typer.Option("--ban", help="BAN addresses file (adresses-DD.csv[.gz]) for geocoding.")]
Addok = Annotated[Optional[str], typer.Option("--addok", help="URL of an addok server for geocoding (e.g. http://127.0.0.1:7878).")]
Tolerance = Annotated[float, typer.Option(help="Metres around boundaries within which the answer is 'uncertain'.")]
MinScore = Annotated[float, typer.Option(help="Geocoding scores below this make the answer 'uncertain'.")]


def _checker(zones: Optional[list[Path]], ban: Optional[Path], addok: Optional[str], tolerance: float, min_score: float):
    from .check import Checker
    from .geocode import AddokGeocoder, BanGeocoder
    from .lookup import load_zones

    zone_set = load_zones(zones or [QPV_2024])
    if zone_set.dropped:
        typer.echo(f"note: {len(zone_set.dropped)} zone(s) without area left out: {', '.join(zone_set.dropped)}", err=True)
    geocoder = AddokGeocoder(addok) if addok else BanGeocoder(ban) if ban else None
    return Checker(zone_set, geocoder, tolerance, min_score)


@app.command()
def locate(
    address: Annotated[Optional[str], typer.Argument(help="A postal address, e.g. \"8 bd du Port, Amiens\".")] = None,
    lon: Annotated[Optional[float], typer.Option(help="Longitude (WGS84), with --lat, instead of an address.")] = None,
    lat: Annotated[Optional[float], typer.Option(help="Latitude (WGS84).")] = None,
    zones: Zones = None,
    ban: Ban = None,
    addok: Addok = None,
    tolerance: Tolerance = 20.0,
    min_score: MinScore = 0.5,
    as_json: Annotated[bool, typer.Option("--json", help="Answer as JSON.")] = False,
) -> None:
    """Is this address (or position) in a QPV, a quartier vécu or a veille-active zone?"""
    import json

    from .check import format_answer

    answer = _checker(zones, ban, addok, tolerance, min_score).check(address, lon, lat)
    typer.echo(json.dumps(answer, ensure_ascii=False, indent=1) if as_json else format_answer(answer))


@app.command(name="locate-csv")
def locate_csv(
    source: Annotated[Path, typer.Argument(help="CSV file (UTF-8, ',' or ';') with lon/lat or address columns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Annotated CSV to write.")],
    address_cols: Annotated[Optional[str], typer.Option(help="Comma-separated columns that make the address (default: adresse/address).")] = None,
    lon_col: Annotated[Optional[str], typer.Option(help="Longitude column (default: lon/longitude).")] = None,
    lat_col: Annotated[Optional[str], typer.Option(help="Latitude column (default: lat/latitude).")] = None,
    zones: Zones = None,
    ban: Ban = None,
    addok: Addok = None,
    tolerance: Tolerance = 20.0,
    min_score: MinScore = 0.5,
    quiet: Quiet = False,
) -> None:
    """Annotate every row of a file with its zone: status, code, name, distance, geocoding."""
    from .batch import locate_csv as run_batch

    checker = _checker(zones, ban, addok, tolerance, min_score)
    start = time.perf_counter()

    def progress(rows: int) -> None:
        if not quiet:
            typer.echo(f"  [{time.perf_counter() - start:6.1f} s] {rows:,} rows", err=True)

    counts = run_batch(
        source, out, checker.zones, checker.geocoder,
        address_cols=[c.strip() for c in address_cols.split(",")] if address_cols else None,
        lon_col=lon_col, lat_col=lat_col, tolerance=tolerance, min_score=min_score, progress=progress,
    )
    total = sum(counts.values())
    typer.echo(f"{total:,} rows: " + ", ".join(f"{status} {counts.get(status, 0):,}" for status in ("in", "uncertain", "out", "invalid")))
    typer.echo(f"written: {out}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    zones: Zones = None,
    ban: Ban = None,
    addok: Addok = None,
    tolerance: Tolerance = 20.0,
    min_score: MinScore = 0.5,
    max_upload_mb: Annotated[float, typer.Option(help="Largest CSV upload accepted (MB).")] = 50.0,
) -> None:
    """Serve the address page (/) and the API (/api/locate, /api/locate-csv, /openapi.json)."""
    import uvicorn

    from .server import create_app

    app_ = create_app(_checker(zones, ban, addok, tolerance, min_score), max_upload_bytes=int(max_upload_mb * 1e6))
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option(help="Where to write the geography.")] = Path("out"),
    maps_dir: Annotated[Path, typer.Option(help="Where to publish the map.")] = Path("maps"),
    quiet: Quiet = False,
) -> None:
    """The main job on the shipped Amiens data: delimit, validate, zones, compare, publish the map."""
    from .data import AMIENS_2019, AMIENS_COMMUNES, QPV_2024

    target = out_dir / "amiens_2019.gpkg"
    typer.echo(f"== carroyage delimit {AMIENS_2019.name} --rule decree-2014 --national-median 22040 --out {target}")
    delimit(AMIENS_2019, target, rule="decree-2014", national_median=22_040, quiet=quiet)
    typer.echo(f"\n== carroyage validate {target}")
    validate(target)
    typer.echo(f"\n== carroyage zones {target} --clip {AMIENS_COMMUNES.name} --previous {QPV_2024.name}")
    zones(target, clip=AMIENS_COMMUNES, previous=QPV_2024)
    typer.echo(f"\n== carroyage compare {QPV_2024.name} {target} --out {out_dir / 'compare_2024.gpkg'}")
    compare(QPV_2024, target, out_dir / "compare_2024.gpkg")
    page, png = maps_dir / "amiens.html", maps_dir / "amiens.png"
    typer.echo(f"\n== carroyage map {target} --out {page} --self-contained --official {QPV_2024.name} --png {png}")
    map_(target, page, self_contained=True, official=QPV_2024, png=png, title="Géographie prioritaire — Amiens (Filosofi 2019)")


def main() -> None:
    """Entry point: run the app, turning carroyage errors into one line and exit code 2."""
    try:
        app()
    except CarroyageError as exc:
        typer.echo(f"carroyage: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # the file system's own refusals: permissions, full disk...
        typer.echo(f"carroyage: error: {exc.filename or ''}: {exc.strerror or exc}".replace(": : ", ": "), err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("carroyage: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()

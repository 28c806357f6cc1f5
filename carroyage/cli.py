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
    grid: Annotated[Path, typer.Argument(help="Income grid: Filosofi CSV/GPKG/SHP/Parquet, or an exact cell table.")],
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
        f"{m['clusters']} candidate clusters, {m['quartiers']} quartiers"
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
    from .zones_io import read_official

    geo = read_geography(geography)
    result = run_validate(geo.cells, read_official(official))
    typer.echo(f"official QPV residents on the grid: {result.official_residents:,.0f}")
    typer.echo(f"computed quartier residents:        {result.computed_residents:,.0f}")
    typer.echo(f"coverage  (official residents inside a computed quartier): {result.coverage:.1%}")
    typer.echo(f"precision (computed residents inside an official QPV):     {result.precision:.1%}")
    for row in result.per_official.itertuples():
        typer.echo(f"  {row.code_qp} {row.lib_qp[:34]:34} {row.residents:8,.0f} residents, {row.coverage:6.1%} covered")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option(help="Where to write the geography.")] = Path("out"),
    quiet: Quiet = False,
) -> None:
    """The main job on the shipped Amiens data: delimit (decree-2014, 2019 grid) and validate."""
    from .data import AMIENS_2019

    target = out_dir / "amiens_2019.gpkg"
    typer.echo(f"== carroyage delimit {AMIENS_2019.name} --rule decree-2014 --national-median 22040 --out {target}")
    delimit(AMIENS_2019, target, rule="decree-2014", national_median=22_040, quiet=quiet)
    typer.echo(f"\n== carroyage validate {target}")
    validate(target)


def main() -> None:
    """Entry point: run the app, turning carroyage errors into one line and exit code 2."""
    try:
        app()
    except CarroyageError as exc:
        typer.echo(f"carroyage: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("carroyage: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()

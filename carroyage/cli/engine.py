"""Commands on an income grid: ``delimit`` and ``sensitivity``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..settings import SENSITIVITY_CONTIGUITIES, SENSITIVITY_FRACTIONS, SENSITIVITY_MIN_POPULATIONS
from .households import (
    Crs,
    IncomeColumn,
    PersonsColumn,
    UcColumn,
    Under14Column,
    XColumn,
    YColumn,
    household_columns,
)
from .options import (
    AgglomerationMedian,
    AgglomerationPopulation,
    NationalMedian,
    Quiet,
    RuleName,
    Stages,
    app,
    require_file,
    written,
)

if TYPE_CHECKING:
    from ..geography import Geography

Grid = Annotated[
    Path,
    typer.Argument(help="Income grid: Filosofi CSV/GPKG/SHP/Parquet, a GeoTIFF, or an exact cell table."),
]
OutCrs = Annotated[
    str | None,
    typer.Option(
        "--out-crs",
        help="CRS of the GeoPackage or GeoParquet written: 2154 or EPSG:2154 (default: Lambert-93 for a "
        "metropolitan grid, the grid's own CRS overseas). GeoJSON is always EPSG:4326.",
        metavar="EPSG",
    ),
]


@app.command()
def delimit(
    grid: Grid,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .gpkg (or .parquet: one file per layer).")],
    rule: RuleName = "decree-2014",
    national_median: NationalMedian = None,
    agglomeration_median: AgglomerationMedian = None,
    agglomeration_population: AgglomerationPopulation = None,
    contiguity: Annotated[str | None, typer.Option(help="rook (shared edge) or queen (edge or corner).")] = None,
    min_population: Annotated[int | None, typer.Option(help="Minimum residents of a quartier (1000).")] = None,
    threshold_fraction: Annotated[float | None, typer.Option(help="Fraction of the reference median (0.6).")] = None,
    low_income_share: Annotated[
        float | None, typer.Option(help="Share of residents below the threshold a quartier must exceed (0.5).")
    ] = None,
    gap_fill: Annotated[
        int | None, typer.Option(help="Fill enclosed gaps of at most this many cells (4; 0: off).")
    ] = None,
    min_agglomeration_population: Annotated[
        int | None, typer.Option(help="Smallest unité urbaine holding quartiers (10000).")
    ] = None,
    geojson: Annotated[Path | None, typer.Option(help="Also write the quartiers as GeoJSON (EPSG:4326).")] = None,
    out_crs: OutCrs = None,
    quiet: Quiet = False,
    households: Annotated[
        bool, typer.Option("--households", help="GRID is household microdata (CSV, Parquet, GeoPackage): exact.")
    ] = False,
    crs: Crs = None,
    x: XColumn = None,
    y: YColumn = None,
    income: IncomeColumn = None,
    persons: PersonsColumn = None,
    uc: UcColumn = None,
    under14: Under14Column = None,
) -> None:
    """Delimit priority quartiers on an income grid and write them with their cells and manifest."""
    require_file(grid)
    from ..jobs import delimit_file, delimit_households_file

    run = delimit_file
    extra: dict[str, object] = {}
    if households:
        run = delimit_households_file  # type: ignore[assignment]
        extra = {"columns": household_columns(x, y, income, persons, uc, under14), "crs": crs}
    elif any(option is not None for option in (crs, x, y, income, persons, uc, under14)):
        from ..errors import InputError

        raise InputError("--crs, --x, --y, --income, --persons, --uc and --under14 need --households")
    geography, files = run(
        grid,
        out,
        rule,
        geojson=geojson,
        out_crs=out_crs,
        progress=Stages(quiet),
        **extra,
        national_median=national_median,
        agglomeration_median=agglomeration_median,
        agglomeration_population=agglomeration_population,
        contiguity=contiguity,
        min_population=min_population,
        threshold_fraction=threshold_fraction,
        low_income_share=low_income_share,
        gap_fill_cells=gap_fill,
        min_agglomeration_population=min_agglomeration_population,
    )
    typer.echo(summary(geography))
    written(*files)


def summary(geography: Geography) -> str:
    """A short text summary of a delimitation."""
    m = geography.manifest
    threshold: dict[str, float] = m.get("threshold") or {}  # type: ignore[assignment]
    grid = m["inputs"]["grid"]  # type: ignore[index]
    estimated = bool(m["estimator"]["estimated"])  # type: ignore[index]
    lines = [
        f"rule {m['rule']['name']}: threshold {threshold.get('value', float('nan')):,.0f} € "  # type: ignore[index]
        f"({grid['income_concept']} income"
        + (
            f", {threshold['fraction']:.3f} × reference median {threshold['reference_median']:,.0f} €"
            if threshold
            else ""
        )
        + ")",
        f"grid: {grid['cells']:,} cells, {grid['population']:,.0f} residents; "
        f"{m['clusters']:,} candidate clusters, {m['quartiers']:,} quartiers"
        + ("" if m["agglomeration_eligible"] else " (agglomeration below the minimum population: none can qualify)"),
    ]
    if len(geography.qpv):
        lines.append(f"{'code':8} {'residents':>10} {'median €':>9} {'share <S':>9} {'cells':>6} {'ha':>6}")
        for row in geography.qpv.itertuples():
            lines.append(
                f"{row.code:8} {row.population:10,.0f} {row.median_income:9,.0f} {row.low_income_share:9.1%} "
                f"{row.cells:6d} {row.area_ha:6.0f}"
            )
    if estimated:
        lines.append("figures are ESTIMATED from the public grid (see docs/method.md)")
    return "\n".join(lines)


@app.command()
def sensitivity(
    grid: Annotated[Path, typer.Argument(help="Income grid, as for `delimit`.")],
    rule: RuleName = "decree-2014",
    national_median: NationalMedian = None,
    agglomeration_median: AgglomerationMedian = None,
    agglomeration_population: AgglomerationPopulation = None,
    threshold: Annotated[
        str, typer.Option(help="Threshold fractions: start:stop:step or a list.")
    ] = SENSITIVITY_FRACTIONS,
    contiguity: Annotated[str, typer.Option(help="Comma-separated: rook,queen.")] = SENSITIVITY_CONTIGUITIES,
    min_population: Annotated[
        str, typer.Option(help="Comma-separated minimum populations.")
    ] = SENSITIVITY_MIN_POPULATIONS,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="GeoPackage for the stability layer (default: GRID_sensitivity.gpkg)."),
    ] = None,
) -> None:
    """Re-run the rule over a grid of parameters; print how quartiers move, write cell stability."""
    require_file(grid)
    from ..jobs import sensitivity_file

    result = sensitivity_file(
        grid,
        rule,
        thresholds=threshold,
        contiguities=contiguity,
        min_populations=min_population,
        out=out,
        national_median=national_median,
        agglomeration_median=agglomeration_median,
        agglomeration_population=agglomeration_population,
    )
    typer.echo(f"{'fraction':>8} {'contiguity':10} {'min pop':>7} {'threshold':>9} {'quartiers':>9} {'residents':>10}")
    for row in result.runs.itertuples():
        typer.echo(
            f"{row.threshold_fraction:8.3f} {row.contiguity:10} {row.min_population:7d} {row.threshold:9,.0f} "
            f"{row.quartiers:9d} {row.residents:10,.0f}"
        )
    stable = result.stability["stability"].to_numpy()
    typer.echo(
        f"cells in a quartier in every run: {(stable == 1).sum()}, "
        f"in some runs only: {((stable > 0) & (stable < 1)).sum()}"
    )
    written(result.out)

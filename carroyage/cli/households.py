"""Commands on household microdata: ``grid`` (households → Filosofi-like cells) and ``synth``.

``delimit --households`` (in :mod:`.engine`) shares the column options defined here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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

Crs = Annotated[
    str | None,
    typer.Option("--crs", help="CRS of the coordinates, e.g. EPSG:2154 (a GeoPackage or GeoParquet gives its own)."),
]
XColumn = Annotated[str | None, typer.Option("--x", help="Column of x / longitude (default x; GPKG: geometry).")]
YColumn = Annotated[str | None, typer.Option("--y", help="Column of y / latitude (default y).")]
IncomeColumn = Annotated[str | None, typer.Option("--income", help="Household declared income, € a year (income).")]
PersonsColumn = Annotated[str | None, typer.Option("--persons", help="Persons of the household (persons).")]
UcColumn = Annotated[
    str | None, typer.Option("--uc", help="Consumption units of the household (default: INSEE scale from persons).")
]
Under14Column = Annotated[
    str | None, typer.Option("--under14", help="Persons under 14, for the INSEE scale when --uc is absent.")
]
Resolution = Annotated[int, typer.Option(help="Cell size in metres, on the EPSG:3035 grid (200; 1000 for 1 km).")]


def household_columns(
    x: str | None,
    y: str | None,
    income: str | None,
    persons: str | None,
    uc: str | None,
    under14: str | None = None,
    disposable: str | None = None,
) -> object:
    """The :class:`~carroyage.engine.households.HouseholdColumns` of the options."""
    from ..engine.households import HouseholdColumns

    return HouseholdColumns(
        x=x, y=y, income=income or "income", persons=persons or "persons", uc=uc, under14=under14, disposable=disposable
    )


@app.command()
def grid(
    households: Annotated[Path, typer.Argument(help="Household microdata: CSV, Parquet or GeoPackage points.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Cell table to write (.csv or .parquet).")],
    crs: Crs = None,
    x: XColumn = None,
    y: YColumn = None,
    income: IncomeColumn = None,
    persons: PersonsColumn = None,
    uc: UcColumn = None,
    under14: Under14Column = None,
    disposable: Annotated[
        str | None, typer.Option("--disposable", help="Household disposable income (men_pauv, ind_snv on it).")
    ] = None,
    resolution: Resolution = 200,
    secrecy: Annotated[
        bool, typer.Option("--secrecy", help="INSEE's secrecy rule: cells under 11 households spread over groups.")
    ] = False,
    rule: RuleName = "decree-2014",
    national_median: NationalMedian = None,
    agglomeration_median: AgglomerationMedian = None,
    agglomeration_population: AgglomerationPopulation = None,
    threshold_fraction: Annotated[float | None, typer.Option(help="Fraction of the reference median (0.6).")] = None,
    poverty_median: Annotated[
        float | None, typer.Option(help="National median standard of living behind men_pauv (22040).")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Grid households into a Filosofi-like cell table with exact medians and persons below S."""
    require_file(households)
    from ..jobs import grid_households_file

    table, manifest, files = grid_households_file(
        households,
        out,
        rule,
        columns=household_columns(x, y, income, persons, uc, under14, disposable),
        crs=crs,
        resolution=resolution,
        secrecy=secrecy,
        poverty_median=poverty_median,
        progress=Stages(quiet),
        national_median=national_median,
        agglomeration_median=agglomeration_median,
        agglomeration_population=agglomeration_population,
        threshold_fraction=threshold_fraction,
    )
    line = f"{len(table):,} cells, {table['ind'].sum():,.0f} persons, {table['men'].sum():,.0f} households"
    if secrecy:
        line += f"; {int(table['i_est_200'].sum()):,} cells under secrecy (i_est_200 = 1)"
    if "threshold" in manifest:
        line += (
            f"; threshold {manifest['threshold']:,.0f} € (agglomeration median "
            f"{manifest['agglomeration_median']:,.0f} €, exact)"
        )
    typer.echo(line)
    written(*files)


@app.command()
def synth(
    grid: Annotated[Path, typer.Argument(help="Filosofi grid (ind, men, men_pauv, ind_snv; men_1ind, men_5ind).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Synthetic households to write (.parquet or .csv).")],
    seed: Annotated[int, typer.Option(help="Seed: the same grid and seed give the same file.")] = 0,
    national_median: Annotated[
        float | None, typer.Option(help="National median standard of living behind men_pauv (22040).")
    ] = None,
) -> None:
    """Draw synthetic households consistent with a Filosofi grid (declared and disposable income)."""
    require_file(grid)
    from ..jobs import synth_file

    facts, path = synth_file(grid, out, seed, national_median)
    typer.echo(
        f"{facts['households']:,} synthetic households, {facts['persons']:,} persons "
        f"(grid: {facts['grid_households']:,.0f} households, {facts['grid_persons']:,.0f} persons); seed {seed}; "
        "SYNTHETIC: no real household"
    )
    written(path)

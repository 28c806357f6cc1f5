"""The ``indicators`` command: the tableau de bord of every zone against its reference territories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import Quiet, Stages, app, written


@app.command()
def indicators(
    zones: Annotated[
        Path,
        typer.Argument(
            help="Zones: any polygon layer (e.g. data/qpv2024_france.geojson, kept where it meets the grid) or a "
            "carroyage GeoPackage (its qpv, quartier_vecu and veille_active layers)."
        ),
    ],
    grid: Annotated[
        list[Path],
        typer.Option(
            "--grid", help="Income grid (Filosofi 200 m); twice (old, then new) for the change between vintages."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV tableau: one row per zone and reference territory.")],
    stats: Annotated[
        Path | None,
        typer.Option(help="INSEE's QPV figures (e.g. data/qpv2024_stats_france.csv), shown beside the grid's."),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="Commune polygons (e.g. data/communes_amiens_metropole.geojson): each holding zones, and all."
        ),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="French HTML tableau, self-contained and printable.")
    ] = None,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Excel workbook (needs openpyxl).")] = None,
    national_median: Annotated[
        list[float] | None,
        typer.Option(
            help="National median standard of living for the decree threshold, € a year (default 22040); once per grid."
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Indicators of every zone, its communes, the EPCI and the whole grid (a tableau de bord)."""
    from ..jobs import indicators_file

    result = indicators_file(
        zones,
        grid,
        out,
        stats=stats,
        reference=reference,
        html=html,
        xlsx=xlsx,
        national_medians=national_median,
        progress=Stages(quiet),
    )
    table = result.table
    residents = "residents" if "residents" in table else next(c for c in table.columns if c.startswith("residents_"))
    ratio = residents.replace("residents", "population_ratio")
    typer.echo(f"{'territory':10} {'code':10} {'name':30} {'residents':>10} {'INSEE':>8} {'ratio':>6} fragile")
    for row in table.to_dict("records"):
        insee = row.get("insee_population")
        typer.echo(
            f"{row['kind']:10} {str(row['code'])[:10]:10} {str(row['name'])[:30]:30} {row[residents]:10,.0f} "
            + (f"{insee:8,.0f} {row[ratio]:6.2f}" if insee == insee and insee is not None else f"{'':8} {'':6}")
            + (" yes" if bool(row.get("fragile", row.get(residents.replace("residents", "fragile")))) else "")
        )
    written(*result.written)

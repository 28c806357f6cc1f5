"""The ``indicators`` command: the tableau de bord of every zone against its reference territories."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import labels
from .options import Quiet, Stages, app, written

if TYPE_CHECKING:
    import pandas as pd


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
    for line in summary(result.table if result.exact is None else result.exact):  # rounded once, as on the page
        typer.echo(line)
    written(*result.written)


def summary(table: pd.DataFrame) -> list[str]:
    """One line per territory, in French: residents and fragility (the first grid's), INSEE's population, ratio."""
    residents = "residents" if "residents" in table else next(c for c in table.columns if c.startswith("residents_"))
    suffix = residents.removeprefix("residents")  # "" or "_2019"
    heads = labels.SUMMARY_HEADINGS
    lines = [
        f"{heads['kind']:10} {heads['code']:10} {heads['name']:30} {heads['residents'] + suffix.replace('_', ' '):>14} "
        f"{heads['insee']:>8} {heads['ratio']:>7} {heads['fragile']}"
    ]
    for row in table.to_dict("records"):
        insee, ratio = float(row["insee_population"]), float(row[f"population_ratio{suffix}"])
        lines.append(
            f"{labels.SUMMARY_KINDS.get(str(row['kind']), str(row['kind'])):10} {str(row['code'])[:10]:10} "
            f"{str(row['name'])[:30]:30} {labels.integer(float(row[residents])):>14} "
            + (f"{labels.integer(insee):>8} {labels.decimal(ratio):>7}" if insee == insee else f"{'':8} {'':7}")
            + (f" {labels.FRAGILE_MARK}" if bool(row[f"fragile{suffix}"]) else "")
        )
    return lines

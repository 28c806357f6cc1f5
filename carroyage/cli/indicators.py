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
            help="Zones : toute couche de polygones (par ex. data/qpv2024_france.geojson, gardée là où elle "
            "rencontre le carroyage) ou un GeoPackage de carroyage (ses couches qpv, quartier_vecu et veille_active)."
        ),
    ],
    grid: Annotated[
        list[Path],
        typer.Option(
            "--grid",
            help="Carroyage de revenus (Filosofi 200 m) ; deux fois (l'ancien, puis le nouveau) pour l'évolution "
            "entre millésimes.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Tableau CSV : une ligne par zone et par territoire de référence.")
    ],
    stats: Annotated[
        Path | None,
        typer.Option(
            help="Chiffres INSEE des QPV (par ex. data/qpv2024_stats_france.csv), affichés à côté de ceux du carroyage."
        ),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="Polygones des communes (par ex. data/communes_amiens_metropole.geojson) : chaque commune qui a "
            "des zones, et leur ensemble."
        ),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Tableau HTML en français, autonome et imprimable.")
    ] = None,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Classeur Excel (nécessite openpyxl).")] = None,
    national_median: Annotated[
        list[float] | None,
        typer.Option(
            help="Niveau de vie médian national pour le seuil du décret, en € par an (par défaut : 22040) ; une fois "
            "par carroyage."
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Le tableau de bord des zones et de leurs territoires.

    Les indicateurs de chaque zone face à ceux de ses territoires de référence : ses communes,
    l'ensemble des communes de référence et le carroyage entier.
    """
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

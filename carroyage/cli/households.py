"""Commands on household microdata: ``grid`` (households → Filosofi-like cells) and ``synth``.

``delimit --households`` (in :mod:`.engine`) shares the column options defined here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from ..labels import euros, integer
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
    typer.Option(
        "--crs",
        help="Système de coordonnées des points, par ex. EPSG:2154 (un GeoPackage ou un GeoParquet donne le sien).",
    ),
]
XColumn = Annotated[
    str | None, typer.Option("--x", help="Colonne des x ou longitudes (x ; GeoPackage : la géométrie).")
]
YColumn = Annotated[str | None, typer.Option("--y", help="Colonne des y ou latitudes (y).")]
IncomeColumn = Annotated[
    str | None, typer.Option("--income", help="Colonne du revenu déclaré du ménage, en € par an (income).")
]
PersonsColumn = Annotated[
    str | None, typer.Option("--persons", help="Colonne du nombre de personnes du ménage (persons).")
]
UcColumn = Annotated[
    str | None, typer.Option("--uc", help="Colonne des unités de consommation (par défaut : échelle de l'INSEE).")
]
Under14Column = Annotated[
    str | None, typer.Option("--under14", help="Colonne des moins de 14 ans, pour l'échelle de l'INSEE sans --uc.")
]
Resolution = Annotated[
    int, typer.Option(help="Côté des carreaux en mètres, sur la grille EPSG:3035 (200 ; 1000 pour 1 km).")
]


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
    households: Annotated[Path, typer.Argument(help="Ménages géolocalisés : points en CSV, Parquet ou GeoPackage.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Table de carreaux à écrire (.csv ou .parquet).")],
    crs: Crs = None,
    x: XColumn = None,
    y: YColumn = None,
    income: IncomeColumn = None,
    persons: PersonsColumn = None,
    uc: UcColumn = None,
    under14: Under14Column = None,
    disposable: Annotated[
        str | None,
        typer.Option("--disposable", help="Colonne du revenu disponible du ménage (men_pauv et ind_snv en découlent)."),
    ] = None,
    resolution: Resolution = 200,
    secrecy: Annotated[
        bool,
        typer.Option("--secrecy", help="Secret statistique de l'INSEE : carreaux de moins de 11 ménages regroupés."),
    ] = False,
    rule: RuleName = "decree-2014",
    national_median: NationalMedian = None,
    agglomeration_median: AgglomerationMedian = None,
    agglomeration_population: AgglomerationPopulation = None,
    threshold_fraction: Annotated[float | None, typer.Option(help="Part de la médiane de référence (0.6).")] = None,
    poverty_median: Annotated[
        float | None, typer.Option(help="Niveau de vie médian national pour men_pauv (22040).")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Répartir des ménages en carreaux : table façon Filosofi, médianes exactes, habitants sous le seuil."""
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
    line = (
        f"{integer(len(table))} carreaux, {integer(table['ind'].sum())} personnes, "
        f"{integer(table['men'].sum())} ménages"
    )
    if secrecy:
        line += f" ; {integer(table['i_est_200'].sum())} carreaux sous secret (i_est_200 = 1)"
    threshold = cast(float | None, manifest.get("threshold"))
    line += f" ; médiane de l'agglomération {euros(cast(float, manifest['agglomeration_median']))} (exacte)"
    if threshold is not None:
        line += f" ; seuil {euros(threshold)}"
    typer.echo(line)
    written(*files)


@app.command()
def synth(
    grid: Annotated[
        Path, typer.Argument(help="Carroyage Filosofi (ind, men, men_pauv, ind_snv ; men_1ind, men_5ind).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Ménages synthétiques à écrire (.parquet ou .csv).")],
    seed: Annotated[int, typer.Option(help="Graine : même carroyage et même graine, même fichier.")] = 0,
    national_median: Annotated[
        float | None, typer.Option(help="Niveau de vie médian national pour men_pauv (22040).")
    ] = None,
) -> None:
    """Tirer des ménages synthétiques fidèles à un carroyage Filosofi (revenus déclaré et disponible)."""
    require_file(grid)
    from ..jobs import synth_file

    facts, path = synth_file(grid, out, seed, national_median)
    typer.echo(
        f"{integer(cast(float, facts['households']))} ménages synthétiques, "
        f"{integer(cast(float, facts['persons']))} personnes (carroyage : "
        f"{integer(cast(float, facts['grid_households']))} ménages, {integer(cast(float, facts['grid_persons']))} "
        f"personnes) ; graine {seed} ; SYNTHÉTIQUES : aucun ménage réel"
    )
    written(path)

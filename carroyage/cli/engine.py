"""Commands on an income grid: ``delimit`` and ``sensitivity``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import labels
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
    typer.Argument(
        help="Carroyage de revenus : Filosofi en CSV, GPKG, SHP ou Parquet, un GeoTIFF, ou une table exacte de "
        "carreaux."
    ),
]
OutCrs = Annotated[
    str | None,
    typer.Option(
        "--out-crs",
        help="Système de coordonnées du GeoPackage ou du GeoParquet écrit : 2154 ou EPSG:2154 (par défaut : "
        "Lambert-93 pour un carroyage de métropole, celui du carroyage outre-mer). Le GeoJSON est toujours en "
        "EPSG:4326.",
        metavar="EPSG",
    ),
]


@app.command()
def delimit(
    grid: Grid,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Fichier .gpkg à écrire (ou .parquet : un fichier par couche).")
    ],
    rule: RuleName = "decree-2014",
    national_median: NationalMedian = None,
    agglomeration_median: AgglomerationMedian = None,
    agglomeration_population: AgglomerationPopulation = None,
    contiguity: Annotated[str | None, typer.Option(help="rook (côté commun) ou queen (côté ou coin).")] = None,
    min_population: Annotated[int | None, typer.Option(help="Habitants minimum d'un quartier (1000).")] = None,
    threshold_fraction: Annotated[float | None, typer.Option(help="Part de la médiane de référence (0.6).")] = None,
    low_income_share: Annotated[
        float | None, typer.Option(help="Part des habitants sous le seuil qu'un quartier doit dépasser (0.5).")
    ] = None,
    gap_fill: Annotated[
        int | None, typer.Option(help="Combler les trous enclavés d'au plus ce nombre de carreaux (4 ; 0 : aucun).")
    ] = None,
    min_agglomeration_population: Annotated[
        int | None, typer.Option(help="Population minimale de l'unité urbaine pour avoir des quartiers (10000).")
    ] = None,
    geojson: Annotated[Path | None, typer.Option(help="Écrire aussi les quartiers en GeoJSON (EPSG:4326).")] = None,
    out_crs: OutCrs = None,
    quiet: Quiet = False,
    households: Annotated[
        bool,
        typer.Option(
            "--households", help="grid est un fichier de ménages (CSV, Parquet, GeoPackage) : chiffres exacts."
        ),
    ] = False,
    crs: Crs = None,
    x: XColumn = None,
    y: YColumn = None,
    income: IncomeColumn = None,
    persons: PersonsColumn = None,
    uc: UcColumn = None,
    under14: Under14Column = None,
) -> None:
    """Délimiter les quartiers prioritaires.

    Sur un carroyage de revenus ; écrit les quartiers, leurs carreaux et le manifeste du calcul
    (règle, seuil, entrées, versions).
    """
    require_file(grid)
    from ..jobs import delimit_file, delimit_households_file

    run = delimit_file
    extra: dict[str, object] = {}
    if households:
        run = delimit_households_file  # type: ignore[assignment]
        extra = {"columns": household_columns(x, y, income, persons, uc, under14), "crs": crs}
    elif any(option is not None for option in (crs, x, y, income, persons, uc, under14)):
        from ..errors import InputError

        raise InputError(
            "--crs, --x, --y, --income, --persons, --uc et --under14 : réservées aux ménages ; attendu --households"
        )
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


INCOME_CONCEPTS = {
    "disposable": "niveau de vie",
    "declared": "revenu déclaré par UC",
    "declared and disposable": "revenu déclaré par UC",
}
"""The income a threshold is in, by the manifest's ``income_concept``."""


def summary(geography: Geography) -> str:
    """A short text summary of a delimitation, in French."""
    m = geography.manifest
    threshold: dict[str, float] = m.get("threshold") or {}  # type: ignore[assignment]
    grid = m["inputs"]["grid"]  # type: ignore[index]
    estimated = bool(m["estimator"]["estimated"])  # type: ignore[index]
    concept = INCOME_CONCEPTS.get(str(grid["income_concept"]), str(grid["income_concept"]))
    lines = [
        f"règle {m['rule']['name']} : seuil {labels.euros(threshold.get('value', float('nan')))} "  # type: ignore[index]
        f"({concept}"
        + (
            f", {labels.decimal(threshold['fraction'], 3)} × médiane de référence "
            f"{labels.euros(threshold['reference_median'])}"
            if threshold
            else ""
        )
        + ")",
        f"carroyage : {labels.integer(grid['cells'])} carreaux, {labels.integer(grid['population'])} habitants ; "
        f"{labels.integer(m['clusters'])} groupes candidats, {labels.integer(m['quartiers'])} quartiers"  # type: ignore[arg-type]
        + (
            ""
            if m["agglomeration_eligible"]
            else " (unité urbaine sous la population minimale : aucun quartier possible)"
        ),
    ]
    if len(geography.qpv):
        lines.append(f"{'code':8} {'habitants':>10} {'médiane':>9} {'part < S':>9} {'carreaux':>8} {'ha':>6}")
        for row in geography.qpv.itertuples():
            lines.append(
                f"{row.code:8} {labels.integer(row.population):>10} {labels.euros(row.median_income):>9} "
                f"{labels.percent(row.low_income_share):>9} {labels.integer(row.cells):>8} "
                f"{labels.integer(row.area_ha):>6}"
            )
    if estimated:
        lines.append(labels.ESTIMATED_SUMMARY)
    return "\n".join(lines)


@app.command()
def sensitivity(
    grid: Annotated[Path, typer.Argument(help="Carroyage de revenus, comme pour `delimit`.")],
    rule: RuleName = "decree-2014",
    national_median: NationalMedian = None,
    agglomeration_median: AgglomerationMedian = None,
    agglomeration_population: AgglomerationPopulation = None,
    threshold: Annotated[
        str, typer.Option(help="Parts de la médiane essayées : début:fin:pas, ou une liste (0.55,0.6).")
    ] = SENSITIVITY_FRACTIONS,
    contiguity: Annotated[
        str, typer.Option(help="Contiguïtés essayées, séparées par des virgules : rook,queen.")
    ] = SENSITIVITY_CONTIGUITIES,
    min_population: Annotated[
        str, typer.Option(help="Populations minimales essayées, séparées par des virgules.")
    ] = SENSITIVITY_MIN_POPULATIONS,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="GeoPackage de la couche de stabilité (par défaut : NOM_sensitivity.gpkg, NOM étant celui du "
            "carroyage).",
        ),
    ] = None,
) -> None:
    """Rejouer la règle sur une grille de paramètres.

    Affiche, pour chaque jeu de paramètres, le seuil, les quartiers et leurs habitants ; écrit la
    couche stability : la part des essais où chaque carreau est dans un quartier.
    """
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
    typer.echo(f"{'part':>8} {'contiguïté':10} {'pop. min':>8} {'seuil':>9} {'quartiers':>9} {'habitants':>10}")
    for row in result.runs.to_dict("records"):  # the fraction as --threshold reads it (0.55), figures in French
        typer.echo(
            f"{row['threshold_fraction']:8.3f} {row['contiguity']:10} {row['min_population']:8d} "
            f"{labels.euros(row['threshold']):>9} {row['quartiers']:9d} {labels.integer(row['residents']):>10}"
        )
    stable = result.stability["stability"].to_numpy()
    typer.echo(
        f"carreaux dans un quartier à chaque essai : {labels.integer((stable == 1).sum())}, "
        f"à certains essais seulement : {labels.integer(((stable > 0) & (stable < 1)).sum())}"
    )
    written(result.out)

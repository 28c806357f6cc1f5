"""Commands around a geography: ``validate``, ``zones`` and ``compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import labels
from ..data import QPV_2024
from ..settings import FACILITY_REACH_M, MIN_OVERLAP, NEAR_MARGIN, UNCHANGED_IOU, VECU_DISTANCE_M, WATCH_MIN_POPULATION
from . import engine  # noqa: F401  (delimit and sensitivity first: the help lists commands in workflow order)
from .options import app, written

Geography = Annotated[Path, typer.Argument(help="Un GeoPackage écrit par `carroyage delimit`.")]


@app.command()
def validate(
    geography: Geography,
    official: Annotated[
        Path, typer.Option(help="Couche des QPV officiels (par défaut : celle de 2024, fournie).")
    ] = QPV_2024,
) -> None:
    """Comparer une géographie calculée aux QPV officiels.

    Sur les centres des carreaux, avec les définitions de benchmarks/fidelity.py : le rappel
    (part des habitants des carreaux dont le centre est dans un QPV officiel qui sont dans un
    quartier calculé), la précision (part des habitants calculés à moins de 300 m d'un QPV
    officiel), les QPV détectés (au moins 30 % de leur surface sous des carreaux calculés).
    """
    from ..around.validate import DETECTED_SHARE, NEAR_M
    from ..jobs import validate_file

    result = validate_file(geography, official)
    typer.echo(
        "habitants des QPV officiels sur le carroyage (centres des carreaux) : "
        + labels.integer(result.official_residents)
    )
    typer.echo(f"habitants des quartiers calculés : {labels.integer(result.computed_residents)}")
    typer.echo(
        f"rappel (couverture : habitants des QPV officiels dans un quartier calculé) : {labels.percent(result.recall)}"
    )
    typer.echo(
        f"précision (habitants calculés à moins de {labels.metres(NEAR_M)} d'un QPV officiel) : "
        + labels.percent(result.precision)
    )
    typer.echo(
        f"QPV détectés (au moins {labels.percent(DETECTED_SHARE, 0)} de la surface couverte) : "
        f"{labels.integer(result.detected)} sur {labels.integer(result.official)} ; "
        f"quartiers calculés : {labels.integer(result.quartiers)}"
    )
    table = result.per_official
    for code, name, residents, coverage, area, detected in zip(
        table["code_qp"],
        table["lib_qp"],
        table["residents"],
        table["coverage"],
        table["area_covered"],
        table["detected"],
        strict=True,
    ):
        covered = f"couverts à {labels.percent(coverage):>7}" if residents > 0 else "aucun centre de carreau dedans"
        typer.echo(
            f"  {code} {str(name)[:34]:34} {labels.integer(residents):>8} habitants, {covered}, "
            f"surface {labels.percent(area, 0):>5}" + ("" if detected else "  (non détecté)")
        )


@app.command()
def zones(
    geography: Annotated[
        Path, typer.Argument(help="Un GeoPackage écrit par `carroyage delimit` (les couches y sont ajoutées).")
    ],
    vecu_distance: Annotated[
        float,
        typer.Option(
            help="Quartier vécu : distance autour de chaque QPV, en mètres (300, celle du code général des "
            "impôts ; 500 pour le NPNRU)."
        ),
    ] = VECU_DISTANCE_M,
    clip: Annotated[
        Path | None,
        typer.Option(
            help="Polygones des communes ou de l'EPCI dont le quartier vécu ne sort pas (par ex. "
            "data/communes_amiens_metropole.geojson)."
        ),
    ] = None,
    facilities: Annotated[
        Path | None,
        typer.Option(help="Équipements (points) fréquentés ; ceux à moins de --facility-reach rejoignent le vécu."),
    ] = None,
    facility_reach: Annotated[
        float, typer.Option(help="Distance à un QPV (m) en deçà de laquelle un équipement rejoint son vécu.")
    ] = FACILITY_REACH_M,
    previous: Annotated[
        Path | None,
        typer.Option(
            help="Une géographie précédente (polygones) : ses parties hors des nouveaux QPV passent en veille active."
        ),
    ] = None,
    local: Annotated[
        Path | None, typer.Option(help="Secteurs que le contrat de ville place en veille active, repris tels quels.")
    ] = None,
    near_margin: Annotated[
        float,
        typer.Option(
            help="Veille active des groupes de carreaux dont la médiane dépasse le seuil de moins de cette part."
        ),
    ] = NEAR_MARGIN,
    watch_min_population: Annotated[
        float, typer.Option(help="Habitants minimum d'un groupe de carreaux à placer en veille active.")
    ] = WATCH_MIN_POPULATION,
    out_crs: Annotated[
        str | None,
        typer.Option(
            "--out-crs",
            help="Système de coordonnées du fichier : 2154 ou EPSG:2154 (par défaut : celui du fichier ; un autre "
            "réécrit toutes ses couches).",
            metavar="EPSG",
        ),
    ] = None,
) -> None:
    """Ajouter le quartier vécu et la veille active.

    Ajoute les couches quartier_vecu et veille_active à la géographie. Le quartier vécu étend
    chaque QPV (distance, découpage, équipements) ; la veille active reprend l'ancien périmètre,
    les groupes trop peu peuplés ou proches du seuil et les secteurs désignés.
    """
    from ..around.zones import WatchSettings
    from ..jobs import zones_file

    watch = WatchSettings(near_margin=near_margin, min_population=watch_min_population)
    result = zones_file(geography, vecu_distance, clip, facilities, facility_reach, previous, local, watch, out_crs)
    vecu, watched = result.vecu, result.watch
    typer.echo(
        f"quartier_vecu : {labels.integer(len(vecu))} zones, {vecu_distance:g} m"
        + (", découpées" if clip else "")
        + (f", {labels.integer(int(vecu['facilities'].sum()))} équipements rejoints" if facilities else "")
    )
    counts = watched["reason"].value_counts()
    typer.echo(
        f"veille_active : {labels.integer(len(watched))} zones"
        + "".join(f"\n  {reason} : {labels.integer(count)}" for reason, count in counts.items())
    )
    written(geography)


@app.command()
def compare(
    old: Annotated[
        Path, typer.Argument(help="Géographie précédente : un GeoPackage de carroyage ou toute couche de polygones.")
    ],
    new: Annotated[
        Path, typer.Argument(help="Nouvelle géographie : un GeoPackage de carroyage ou toute couche de polygones.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="GeoPackage à écrire, une couche par classe.")],
    min_overlap: Annotated[
        float,
        typer.Option(help="Deux quartiers se correspondent quand ils se recouvrent sur cette part du plus petit."),
    ] = MIN_OVERLAP,
    unchanged_iou: Annotated[
        float,
        typer.Option(help="Intersection sur union à partir de laquelle un quartier apparié un à un est inchangé."),
    ] = UNCHANGED_IOU,
    out_crs: Annotated[
        str | None,
        typer.Option(
            "--out-crs",
            help="Système de coordonnées du GeoPackage écrit : 2154 ou EPSG:2154 (par défaut : Lambert-93 pour "
            "un carroyage de métropole, celui du carroyage outre-mer).",
            metavar="EPSG",
        ),
    ] = None,
) -> None:
    """Comparer deux géographies, quartier par quartier.

    Classe les quartiers en entrants, modifiés, inchangés ou sortants, avec les habitants gagnés
    et perdus ; une couche par classe (new, modified, unchanged, left).
    """
    from ..jobs import compare_files

    result, counted = compare_files(old, new, out, min_overlap, unchanged_iou, out_crs)
    typer.echo(f"{'classe (couche)':31} {'quartiers':>9} {'gagnés':>9} {'perdus':>9} {'Δ surface ha':>12}")
    for row in result.summary().to_dict("records"):
        shown = f"{labels.COMPARE_LAYERS.get(row['class'], row['class'])} ({row['class']})"
        typer.echo(
            f"{shown:31} {row['quartiers']:9d} {labels.integer(row['residents_gained']):>9} "
            f"{labels.integer(row['residents_lost']):>9} {_signed_hectares(row['area_change_ha']):>12}"
        )
    if not counted:
        typer.echo("(aucun carroyage d'un côté ni de l'autre : habitants non comptés)")
    written(out)


def _signed_hectares(value: float) -> str:
    """An area change in hectares, signed, one decimal (``+12,5``, ``−3,0``)."""
    return ("+" if value > 0 else "") + labels.decimal(value, 1)

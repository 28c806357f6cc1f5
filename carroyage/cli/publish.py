"""Commands that publish: ``map``, ``export`` (GeoPackage for GIS users) and ``demo``.

``demo`` runs the main job on the shipped Amiens data and echoes each step as a command that can
be pasted as it is, from the working directory (paths relative to it, e.g. ``data/...``).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from .. import labels
from ..settings import DEMO_NATIONAL_MEDIAN, DEMO_RULE
from .around import compare, validate, zones
from .engine import delimit
from .options import Quiet, app

YES, NO = {"true", "yes", "oui", "1", "vrai"}, {"false", "no", "non", "0", "faux"}


class BooleanWords(TyperCommand):
    """A command whose flags also accept a word after them: ``--self-contained true`` (or ``oui``,
    ``false``, ``non``...) means the same as ``--self-contained`` (or ``--cdn``)."""

    negations = {"--self-contained": "--cdn"}

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own click Context
        """Fold ``FLAG WORD`` into the flag or its negation before click parses the line."""
        folded: list[str] = []
        index = 0
        while index < len(args):
            arg = args[index]
            name, _, word = arg.partition("=")
            if name in self.negations:
                if not word and index + 1 < len(args) and args[index + 1].lower() in YES | NO:
                    word, index = args[index + 1], index + 1
                folded.append(self.negations[name] if word.lower() in NO else name)
            else:
                folded.append(arg)
            index += 1
        return super().parse_args(ctx, folded)


def _shown(path: Path) -> str:
    """A path as a user pastes it: relative to the working directory when inside it."""
    try:
        text = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        text = str(path)
    return shlex.quote(text if not text.startswith("..") else str(path))


@app.command(name="map", cls=BooleanWords)
def map_(
    geography: Annotated[
        Path, typer.Argument(help="Un GeoPackage écrit par `carroyage delimit` (et `zones`).", metavar="GEOPACKAGE")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Fichier à écrire : .html (carte web), ou .png / .pdf (carte statique seule).",
            metavar="FICHIER",
        ),
    ],
    self_contained: Annotated[
        bool,
        typer.Option(
            "--self-contained/--cdn",
            help="Leaflet inclus dans la page (par défaut) : un seul fichier, qui s'affiche sans réseau. --cdn "
            "charge Leaflet depuis un CDN. `--self-contained true` (ou oui, false, non) est aussi accepté.",
            metavar="",
        ),
    ] = True,
    official: Annotated[
        Path | None, typer.Option(help="Couche des QPV officiels à afficher pour comparaison.", metavar="FICHIER")
    ] = None,
    png: Annotated[
        Path | None,
        typer.Option(help="Écrire aussi une carte statique pour les rapports (.png ou .pdf).", metavar="FICHIER"),
    ] = None,
    context: Annotated[
        Path | None,
        typer.Option(
            help="Fichier des communes (limites et noms) dessiné comme fond hors ligne ; par défaut : les "
            "communes fournies qui touchent la géographie.",
            metavar="FICHIER",
        ),
    ] = None,
    title: Annotated[
        str | None,
        typer.Option(help="Titre de la carte ; par défaut : Géographie prioritaire — <commune>.", metavar="TEXTE"),
    ] = None,
    tableau: Annotated[
        Path | None,
        typer.Option(
            help="Le tableau de bord des QPV officiels (carroyage indicators --html) : chaque fiche renvoie à sa "
            "ligne.",
            metavar="FICHIER",
        ),
    ] = None,
) -> None:
    """Publier une géographie en carte web interactive.

    Et, au besoin, en carte statique (.png ou .pdf) pour les rapports.
    """
    from ..jobs import map_file

    page, *static = map_file(
        geography,
        out,
        self_contained=self_contained,
        official=official,
        static=png,
        title=title,
        context=context,
        tableau=tableau,
    )
    html = page.suffix.lower() in (".html", ".htm")
    typer.echo(labels.WRITTEN.format(path=page) + (labels.SELF_CONTAINED if self_contained and html else ""))
    for path in static:
        typer.echo(labels.WRITTEN.format(path=path))


@app.command()
def export(
    geography: Annotated[
        Path, typer.Argument(help="Un GeoPackage écrit par `carroyage delimit` (et `zones`).", metavar="GEOPACKAGE")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="GeoPackage à écrire pour les utilisateurs de SIG.", metavar="FICHIER")
    ],
    crs: Annotated[
        str | None,
        typer.Option(
            "--out-crs",
            "--crs",
            help="Système de coordonnées de toutes les couches : 2154 ou EPSG:2154 (par défaut : Lambert-93 pour "
            "un carroyage de métropole, celui du carroyage outre-mer). --crs est la même option.",
            metavar="EPSG",
        ),
    ] = None,
    official: Annotated[
        Path | None,
        typer.Option(
            help="Couche des QPV officiels : remplit code_qp et lib_qp, et est écrite à côté.", metavar="FICHIER"
        ),
    ] = None,
) -> None:
    """Écrire une géographie pour les utilisateurs de SIG.

    En Lambert-93 (par défaut), avec les styles QGIS et les noms de champs officiels.
    """
    from ..layers import read_official
    from ..publish.output import export_geography, parse_crs

    parse_crs(crs)  # a wrong CRS fails before anything is read
    path = export_geography(geography, out, crs=crs, official=read_official(official) if official else None)
    typer.echo(labels.WRITTEN.format(path=path))


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option(help="Dossier où écrire la géographie.", metavar="DOSSIER")] = Path("out"),
    maps_dir: Annotated[Path, typer.Option(help="Dossier où publier la carte.", metavar="DOSSIER")] = Path("maps"),
    quiet: Quiet = False,
) -> None:
    """Le travail complet sur les données d'Amiens fournies.

    delimit, validate, zones, compare, map, export et indicators : chaque étape est affichée comme
    une commande à coller telle quelle.
    """
    from ..data import AMIENS_2019, AMIENS_COMMUNES, QPV_2024, QPV_2024_STATS
    from .indicators import indicators

    def step(*words: Any) -> None:
        typer.echo("== carroyage " + " ".join(_shown(w) if isinstance(w, Path) else str(w) for w in words))

    target = out_dir / "amiens_2019.gpkg"
    median = f"{DEMO_NATIONAL_MEDIAN:g}"
    step("delimit", AMIENS_2019, "--rule", DEMO_RULE, "--national-median", median, "--out", target)
    delimit(AMIENS_2019, target, rule=DEMO_RULE, national_median=DEMO_NATIONAL_MEDIAN, quiet=quiet)
    typer.echo()
    step("validate", target)
    validate(target)
    typer.echo()
    step("zones", target, "--clip", AMIENS_COMMUNES, "--previous", QPV_2024)
    zones(target, clip=AMIENS_COMMUNES, previous=QPV_2024)
    typer.echo()
    step("compare", QPV_2024, target, "--out", out_dir / "compare_2024.gpkg")
    compare(QPV_2024, target, out_dir / "compare_2024.gpkg")
    page, png = maps_dir / "amiens.html", maps_dir / "amiens.png"
    typer.echo()
    tableau_page = maps_dir / "amiens_tableau.html"
    step("map", target, "--out", page, "--official", QPV_2024, "--png", png, "--tableau", tableau_page)
    map_(target, page, self_contained=True, official=QPV_2024, png=png, tableau=tableau_page)
    gis = out_dir / "amiens_2019_sig.gpkg"
    typer.echo()
    step("export", target, "--out", gis, "--out-crs", "EPSG:2154", "--official", QPV_2024)
    export(target, gis, crs="EPSG:2154", official=QPV_2024)
    tableau = maps_dir / "amiens_tableau.csv"
    typer.echo()
    step(
        "indicators", QPV_2024, "--grid", AMIENS_2019, "--stats", QPV_2024_STATS, "--reference", AMIENS_COMMUNES,
        "--out", tableau, "--html", tableau_page,
    )  # fmt: skip
    indicators(
        QPV_2024,
        [AMIENS_2019],
        tableau,
        stats=QPV_2024_STATS,
        reference=AMIENS_COMMUNES,
        html=tableau_page,
        quiet=quiet,
    )

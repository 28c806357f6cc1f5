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
        Path, typer.Argument(help="A GeoPackage written by `carroyage delimit` (and `zones`).", metavar="GEOPACKAGE")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="File to write: .html (web map), or .png / .pdf (static map only).",
            metavar="FICHIER",
        ),
    ],
    self_contained: Annotated[
        bool,
        typer.Option(
            "--self-contained/--cdn",
            help="Inline Leaflet (default): one file that draws with no network. --cdn loads Leaflet from a CDN. "
            "`--self-contained true` is accepted too.",
            metavar="",
        ),
    ] = True,
    official: Annotated[
        Path | None, typer.Option(help="Official QPV layer to show for comparison.", metavar="FICHIER")
    ] = None,
    png: Annotated[
        Path | None, typer.Option(help="Also write a static map for reports (.png or .pdf).", metavar="FICHIER")
    ] = None,
    context: Annotated[
        Path | None,
        typer.Option(
            help="Communes file (limits and names) drawn as the offline background; default: the shipped "
            "communes that meet the geography.",
            metavar="FICHIER",
        ),
    ] = None,
    title: Annotated[
        str | None,
        typer.Option(help="Map title (French); default: Géographie prioritaire — <commune>.", metavar="TEXTE"),
    ] = None,
    tableau: Annotated[
        Path | None,
        typer.Option(
            help="The official QPVs' tableau de bord (carroyage indicators --html): each fiche links to its row.",
            metavar="FICHIER",
        ),
    ] = None,
) -> None:
    """Publish a geography as an interactive web map (and a static one)."""
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
        Path, typer.Argument(help="A GeoPackage written by `carroyage delimit` (and `zones`).", metavar="GEOPACKAGE")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="GeoPackage to write for GIS users.", metavar="FICHIER")],
    crs: Annotated[
        str | None,
        typer.Option(
            "--out-crs",
            "--crs",
            help="CRS of every layer: 2154 or EPSG:2154 (default: Lambert-93 for a metropolitan grid, the grid's "
            "own CRS overseas). --crs is the same option.",
            metavar="EPSG",
        ),
    ] = None,
    official: Annotated[
        Path | None,
        typer.Option(help="Official QPV layer: fills code_qp and lib_qp, and is written beside.", metavar="FICHIER"),
    ] = None,
) -> None:
    """Write a geography for GIS users: Lambert-93 (by default), QGIS styles, official field names."""
    from ..layers import read_official
    from ..publish.output import export_geography, parse_crs

    parse_crs(crs)  # a wrong CRS fails before anything is read
    path = export_geography(geography, out, crs=crs, official=read_official(official) if official else None)
    typer.echo(labels.WRITTEN.format(path=path))


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option(help="Where to write the geography.", metavar="DOSSIER")] = Path("out"),
    maps_dir: Annotated[Path, typer.Option(help="Where to publish the map.", metavar="DOSSIER")] = Path("maps"),
    quiet: Quiet = False,
) -> None:
    """The main job on the shipped Amiens data: delimit, validate, zones, compare, map, export, tableau."""
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

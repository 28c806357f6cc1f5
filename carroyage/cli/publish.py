"""Commands that publish: ``map``, and ``demo`` (the main job on the shipped Amiens data)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..labels import MAP_TITLE
from ..settings import DEMO_NATIONAL_MEDIAN, DEMO_RULE
from .around import compare, validate, zones
from .engine import delimit
from .options import Quiet, app


@app.command(name="map")
def map_(
    geography: Annotated[Path, typer.Argument(help="A GeoPackage written by `carroyage delimit` (and `zones`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write (e.g. maps/amiens.html).")],
    self_contained: Annotated[
        bool, typer.Option("--self-contained", help="Inline Leaflet: one file that draws with no network.")
    ] = False,
    official: Annotated[Path | None, typer.Option(help="Official QPV layer to show for comparison.")] = None,
    png: Annotated[Path | None, typer.Option(help="Also write a static map for reports (.png or .pdf).")] = None,
    title: Annotated[str, typer.Option(help="Map title (French).")] = MAP_TITLE,
) -> None:
    """Publish a geography as an interactive web map (and a static one)."""
    from ..jobs import map_file

    page, *static = map_file(geography, out, self_contained=self_contained, official=official, static=png, title=title)
    typer.echo(f"written: {page}" + (" (self-contained)" if self_contained else ""))
    for path in static:
        typer.echo(f"written: {path}")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option(help="Where to write the geography.")] = Path("out"),
    maps_dir: Annotated[Path, typer.Option(help="Where to publish the map.")] = Path("maps"),
    quiet: Quiet = False,
) -> None:
    """The main job on the shipped Amiens data: delimit, validate, zones, compare, publish the map."""
    from ..data import AMIENS_2019, AMIENS_COMMUNES, QPV_2024

    target = out_dir / "amiens_2019.gpkg"
    median = f"{DEMO_NATIONAL_MEDIAN:g}"
    typer.echo(f"== carroyage delimit {AMIENS_2019.name} --rule {DEMO_RULE} --national-median {median} --out {target}")
    delimit(AMIENS_2019, target, rule=DEMO_RULE, national_median=DEMO_NATIONAL_MEDIAN, quiet=quiet)
    typer.echo(f"\n== carroyage validate {target}")
    validate(target)
    typer.echo(f"\n== carroyage zones {target} --clip {AMIENS_COMMUNES.name} --previous {QPV_2024.name}")
    zones(target, clip=AMIENS_COMMUNES, previous=QPV_2024)
    typer.echo(f"\n== carroyage compare {QPV_2024.name} {target} --out {out_dir / 'compare_2024.gpkg'}")
    compare(QPV_2024, target, out_dir / "compare_2024.gpkg")
    page, png = maps_dir / "amiens.html", maps_dir / "amiens.png"
    typer.echo(f"\n== carroyage map {target} --out {page} --self-contained --official {QPV_2024.name} --png {png}")
    map_(target, page, self_contained=True, official=QPV_2024, png=png, title=f"{MAP_TITLE} — Amiens (Filosofi 2019)")

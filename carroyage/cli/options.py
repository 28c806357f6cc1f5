"""What every group of commands shares: the app, option types, stage messages."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no box drawing, no "<bool>" placeholders
    help="France's géographie prioritaire (QPV) from 200 m income grids.",
)


class Stages:
    """Prints each stage with the elapsed time to stderr (silent with ``--quiet``)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            typer.echo(f"  [{time.perf_counter() - self.start:6.2f} s] {message}…", err=True)


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No stage messages on stderr.")]
Out = Annotated[Path, typer.Option("--out", "-o", help="File to write.")]

# the reference figures of the threshold, shared by `delimit` and `sensitivity`
RuleName = Annotated[str, typer.Option(help="Rule version: seed or decree-2014.")]
NationalMedian = Annotated[
    float | None,
    typer.Option(help="National median income, € a year, in the grid's concept (2019 standard of living: 22040)."),
]
AgglomerationMedian = Annotated[
    float | None, typer.Option(help="Median income of the unité urbaine (default: estimated from the grid).")
]
AgglomerationPopulation = Annotated[
    float | None, typer.Option(help="Population of the unité urbaine (default: the grid's).")
]

# the address check, shared by `locate`, `locate-csv` and `serve`
Zones = Annotated[
    list[Path] | None,
    typer.Option(
        "--zones",
        help="Zone layers (default: the official 2024 QPV layer); a carroyage GeoPackage gives its qpv, "
        "quartier_vecu and veille_active layers.",
    ),
]
Ban = Annotated[Path | None, typer.Option("--ban", help="BAN addresses file (adresses-DD.csv[.gz]) for geocoding.")]
Addok = Annotated[
    str | None, typer.Option("--addok", help="URL of an addok server for geocoding (e.g. http://127.0.0.1:7878).")
]
Tolerance = Annotated[float, typer.Option(help="Metres around boundaries within which the answer is 'uncertain'.")]
MinScore = Annotated[float, typer.Option(help="Geocoding scores below this make the answer 'uncertain'.")]
Candidates = Annotated[
    int,
    typer.Option("--candidates", min=1, max=100, help="Geocoding candidates to show (best first), like addok's limit."),
]
Workers = Annotated[int, typer.Option("--workers", min=0, help="Worker processes (0: every core).")]


def require_file(path: Path) -> None:
    """Refuse a missing input before any heavy library is loaded."""
    from ..errors import InputError

    if not path.is_file():
        raise InputError(f"{path}: no such file")


def written(*paths: object) -> None:
    """The closing line of a command that wrote files."""
    typer.echo("written: " + ", ".join(str(p) for p in paths))

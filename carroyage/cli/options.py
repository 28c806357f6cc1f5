"""What every group of commands shares: the app and its French help, option types, stage messages.

Click writes some words of the help itself (``Usage:``, ``[default: ...]``, ``<path>``); the
app's group gives every command a context whose help formatter says them in French
(:data:`~carroyage.labels.HELP_USAGE` and the others). Usage errors are put in French where the
CLI prints them (:func:`carroyage.cli.main`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.formatting import HelpFormatter  # typer vendors click (pinned <0.30 in pyproject)
from typer.core import TyperGroup

from .. import labels

_PLACEHOLDER = re.compile(r"<([^<>]+)>")
_BEFORE_PUNCTUATION = re.compile(r" (?=[:;?!](?:\s|$))")
_GLUE = "\u00a0"  # a no-break space: the wrapper never starts a line with ":" or ";"
_EXTRAS = re.compile(r"(?P<text>.*)\[(?P<extras>[^\[\]]*)\]", re.DOTALL)
_RANGES = (
    (re.compile(r"(?P<low>\S+)<=x<=(?P<high>\S+)"), "between"),
    (re.compile(r"x>=(?P<low>\S+)"), "at_least"),
    (re.compile(r"x<=(?P<high>\S+)"), "at_most"),
)


_ARGUMENT = re.compile(r"([{\[])(\w+)[}\]]")


class FrenchHelp(HelpFormatter):
    """Click's help layout, with the words click writes itself in French."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        """The usage line, after ``Utilisation :``."""
        super().write_usage(prog, usage_arguments(args), labels.HELP_USAGE if prefix is None else prefix)

    def write_heading(self, heading: str) -> None:
        """A section heading, with the space French puts before the colon."""
        self.write(f"{'':>{self.current_indent}}{labels.HELP_HEADINGS.get(heading, heading)} :\n")

    def write_text(self, text: str) -> None:
        """A paragraph, wrapped without leaving ``:`` or ``;`` at the start of a line."""
        super().write_text(_BEFORE_PUNCTUATION.sub(_GLUE, text))

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        """Options and commands, their value placeholders and click's bracketed notes in French."""
        rows = [(value_names(term), _BEFORE_PUNCTUATION.sub(_GLUE, help_notes(text))) for term, text in rows]
        super().write_dl(rows, col_max, col_spacing)

    def getvalue(self) -> str:
        """The help, its glued spaces plain again."""
        return super().getvalue().replace(_GLUE, " ")


class FrenchContext(typer.Context):
    """A context whose help is written by :class:`FrenchHelp`."""

    formatter_class = FrenchHelp


class FrenchGroup(TyperGroup):
    """The app's group: it and every command registered on it write their help in French."""

    context_class = FrenchContext

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        for command in self.commands.values():
            command.context_class = FrenchContext


def usage_arguments(args: str) -> str:
    """Arguments on the usage line in French capitals: ``{grid}`` → ``CARROYAGE``, ``[address]`` → ``[ADRESSE]``.

    >>> usage_arguments("[OPTIONS] {old} {new}"), usage_arguments("[OPTIONS] [address]")
    ('[OPTIONS] ANCIENNE NOUVELLE', '[OPTIONS] [ADRESSE]')
    """

    def french(found: re.Match[str]) -> str:
        name = labels.USAGE_ARGUMENTS.get(found[2].lower(), found[2].upper())
        return f"[{name}]" if found[1] == "[" else name

    return _ARGUMENT.sub(french, args)


def value_names(term: str) -> str:
    """The value an option takes, as the help shows it: ``--out <path>`` → ``--out FICHIER``.

    An argument is shown by its name on the usage line: ``grid <path>`` → ``CARROYAGE``.

    >>> value_names("-o, --out <path>"), value_names("--workers <int range>"), value_names("--x <a|b>")
    ('-o, --out FICHIER', '--workers ENTIER', '--x <a|b>')
    >>> value_names("grid <path>")
    'CARROYAGE'
    """
    name, _, value = term.partition(" ")
    if value and not name.startswith("-") and name.lower() in labels.USAGE_ARGUMENTS:
        return labels.USAGE_ARGUMENTS[name.lower()] if value.startswith("<") else value
    return _PLACEHOLDER.sub(lambda found: labels.METAVARS.get(found[1], found[0]), term)


def help_notes(text: str) -> str:
    """An option's help with click's own words in French; anything unknown is left as it is.

    >>> help_notes("Worker processes.  [default: 1; 0<=x<=100; required]")
    'Worker processes.  [par défaut : 1 ; de 0 à 100 ; obligatoire]'
    """
    text = labels.HELP_BUILT_IN.get(text, text)
    match = _EXTRAS.fullmatch(text)
    if match is None:
        return text
    notes = [_note(part) for part in match["extras"].split("; ")]
    if any(note is None for note in notes):  # not click's notes, or a kind this does not know
        return text
    return f"{match['text']}[{' ; '.join(note or '' for note in notes)}]"


def _note(part: str) -> str | None:
    if part == "required":
        return labels.HELP_REQUIRED
    for prefix, template in (("default: ", labels.HELP_DEFAULT), ("env var: ", labels.HELP_ENVVAR)):
        if part.startswith(prefix):
            return template.format(value=part[len(prefix) :])
    for pattern, key in _RANGES:
        found = pattern.fullmatch(part)
        if found:
            return labels.HELP_RANGES[key].format(**found.groupdict())
    return None


app = typer.Typer(
    cls=FrenchGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no box drawing, no "<bool>" placeholders
    help=labels.APP_HELP,
    subcommand_metavar=labels.HELP_COMMAND_METAVAR,
)


class Stages:
    """Prints each stage with the elapsed time to stderr (silent with ``--quiet``)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            seconds = labels.decimal(time.perf_counter() - self.start, 2).rjust(6)
            typer.echo(labels.STAGE.format(seconds=seconds, message=message), err=True)


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Sans messages d'étape sur la sortie d'erreur.")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Fichier à écrire.")]

# the reference figures of the threshold, shared by `delimit` and `sensitivity`
RuleName = Annotated[str, typer.Option(help="Version de la règle : seed ou decree-2014.")]
NationalMedian = Annotated[
    float | None,
    typer.Option(help="Revenu médian national, en € par an, au sens du carroyage (niveau de vie 2019 : 22040)."),
]
AgglomerationMedian = Annotated[
    float | None, typer.Option(help="Revenu médian de l'unité urbaine (par défaut : estimé sur le carroyage).")
]
AgglomerationPopulation = Annotated[
    float | None, typer.Option(help="Population de l'unité urbaine (par défaut : celle du carroyage).")
]

# the address check, shared by `locate`, `locate-csv` and `serve`
Zones = Annotated[
    list[Path] | None,
    typer.Option(
        "--zones",
        help="Couches de zones (par défaut : la couche officielle des QPV 2024) ; un GeoPackage de carroyage "
        "donne ses couches qpv, quartier_vecu et veille_active.",
    ),
]
Ban = Annotated[
    Path | None, typer.Option("--ban", help="Fichier d'adresses BAN (adresses-DD.csv[.gz]) pour le géocodage.")
]
Addok = Annotated[
    str | None,
    typer.Option("--addok", help="URL d'un serveur addok pour le géocodage (par ex. http://127.0.0.1:7878)."),
]
Tolerance = Annotated[
    float, typer.Option(help="Distance aux limites (m) en deçà de laquelle la réponse est incertaine (uncertain).")
]
MinScore = Annotated[
    float, typer.Option(help="Score de géocodage en dessous duquel la réponse est incertaine (uncertain).")
]
Candidates = Annotated[
    int,
    typer.Option(
        "--candidates", min=1, max=100, help="Candidats de géocodage à afficher (le meilleur d'abord), comme addok."
    ),
]
Workers = Annotated[int, typer.Option("--workers", min=0, help="Processus de calcul (0 : un par cœur).")]


def require_file(path: Path) -> None:
    """Refuse a missing input before any heavy library is loaded."""
    from ..errors import InputError

    if not path.is_file():
        raise InputError(labels.NO_SUCH_FILE.format(path=path))


def written(*paths: object) -> None:
    """The closing line of a command that wrote files."""
    typer.echo(labels.WRITTEN.format(path=", ".join(str(p) for p in paths)))

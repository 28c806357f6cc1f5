"""The ``carroyage`` command: one module per group of commands, sharing :mod:`.options`.

Every subcommand turns a :class:`CarroyageError` into one line on stderr and exit code 2; stage
messages go to stderr, results to stdout. Modules import their heavy libraries inside the
commands, so ``carroyage --help`` and a bad argument answer at once. What users read is French
(:mod:`carroyage.labels`), click's own usage errors included.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import signal
import sys
import warnings
from types import FrameType
from typing import Any

import typer
from typer._click.exceptions import BadParameter, MissingParameter, NoSuchOption
from typer.exceptions import TyperException

from .. import labels
from ..cpu import prefer_avx2_sort
from ..errors import CarroyageError, CarroyageWarning
from ..labels import INTERRUPTED, USAGE
from . import address, around, engine, households, indicators, publish  # noqa: F401  (each registers its commands)
from .options import app

__all__ = ["INTERRUPTED", "app", "main"]

_CLICK_SENTENCES = (  # the fixed sentences of typer's vendored click, and their French in labels.USAGE
    (re.compile(r"Option '(?P<name>[^']+)' requires (?:an argument|\d+ arguments)\."), "needs_value"),
    (re.compile(r"Option '(?P<name>[^']+)' does not take a value\."), "takes_no_value"),
    (re.compile(r"Got unexpected extra argument(?:\(s\)|s)? \((?P<names>.*)\)"), "extra_arguments"),
    (re.compile(r"No such command '(?P<name>.*?)'\.(?: Did you mean (?P<suggestions>.+)\?)?"), "no_such_command"),
    (re.compile(r"Missing command\."), "missing_command"),
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(labels.VERSION.format(version=version("carroyage")))
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(False, "--version", help=labels.VERSION_HELP, callback=_version, is_eager=True),
) -> None:
    """The app's own options (its help is :data:`carroyage.labels.APP_HELP`)."""


def main() -> None:
    """Entry point: run the app, turning carroyage errors into one line and exit code 2.

    Ctrl-C and SIGTERM stop the run with one line and exit code 130; outputs are written under
    temporary names and moved into place only when complete, so a stopped run leaves none.
    """
    prefer_avx2_sort()  # before any command imports numpy
    stopped: list[int] = []
    warnings.showwarning = _show_warning
    warnings.simplefilter("ignore")  # numerical noise of the libraries is not for users...
    warnings.simplefilter("default", CarroyageWarning)  # ...a likely typo in their input is

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.append(signum)
        raise KeyboardInterrupt

    previous = {}
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        _run(stopped)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _run(stopped: list[int]) -> None:
    try:
        app(standalone_mode=False, prog_name="carroyage")
    except TyperException as exc:  # a usage error: one line, like every other error
        if type(exc).__name__ == "NoArgsIsHelpError":  # no command: the help, as --help prints it
            typer.echo(exc.format_message())
            sys.exit(0)
        _fail(labels.ERROR + _usage(exc), 2)
    except CarroyageError as exc:
        _fail(f"{labels.ERROR}{exc}", 2)
    except OSError as exc:  # the file system's own refusals: permissions, full disk...
        where = f"{exc.filename} : " if exc.filename else ""
        _fail(f"{labels.ERROR}{where}{labels.os_reason(exc)}", 2)
    except (KeyboardInterrupt, typer.Abort):
        _fail(INTERRUPTED, 130)
    except Exception:
        # a stop inside a library's callback (GDAL pulling cells from Python) comes back as that
        # library's own error: it is still a stop
        if stopped:
            _fail(INTERRUPTED, 130)
        raise


def _usage(exc: TyperException) -> str:
    """A usage error in one line, in French, naming the option or argument when there is one.

    A sentence this does not know (a newer typer) is kept as click wrote it.
    """
    param = getattr(exc, "param", None)
    name = _param_name(param)
    if isinstance(exc, MissingParameter):
        kind = "missing_argument" if getattr(param, "param_type_name", "") == "argument" else "missing_option"
        return USAGE[kind].format(name=name)
    if isinstance(exc, NoSuchOption):
        names = ", ".join(sorted(exc.possibilities or ()))
        return USAGE["no_such_option"].format(name=exc.option_name) + (
            USAGE["did_you_mean"].format(names=names) if names else ""
        )
    if isinstance(exc, BadParameter):
        return _bad_value(exc, name)
    message = " ".join(exc.format_message().split())
    for pattern, key in _CLICK_SENTENCES:
        found = pattern.fullmatch(message)
        if found:
            fields = found.groupdict()
            suggestions = ", ".join(re.findall(r"'([^']*)'", fields.pop("suggestions", None) or ""))
            french = USAGE[key].format(**fields)
            return french + (USAGE["did_you_mean"].format(names=suggestions) if suggestions else "")
    return f"{name} : {message}" if name and name not in message else message


def _param_name(param: Any) -> str:
    """An option by its long name (``--out``), an argument by the name the help shows."""
    if param is None:
        return ""
    if getattr(param, "param_type_name", "") == "argument":
        name = str(param.name)
        return str(param.metavar) if param.metavar else labels.USAGE_ARGUMENTS.get(name, name.upper())
    opts = list(getattr(param, "opts", None) or [getattr(param, "name", "")])
    return str(next((opt for opt in opts if opt.startswith("--")), opts[0]))


def _bad_value(exc: BadParameter, name: str) -> str:
    """An option's value that is not of its type or outside its range: the value, then what was expected."""
    errors = getattr(exc.__cause__, "errors", None)  # typer checks values with pydantic
    details: list[dict[str, Any]] = errors() if callable(errors) else []
    template = labels.VALUE_EXPECTED.get(details[0].get("type", "")) if details else None
    try:
        expected = template.format(**details[0].get("ctx", {})) if template else None
    except (KeyError, IndexError):  # a limit this typer version does not report
        expected = None
    if expected is None:
        return USAGE["invalid"].format(name=name, message=" ".join(exc.message.split()))
    value = shlex.quote(str(details[0].get("input", "")))
    return USAGE["bad_value"].format(name=name, value=value, expected=expected)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: object = None,
) -> None:
    """Warnings as one line on stderr, like errors."""
    typer.echo(f"{labels.WARNING}{message}", err=True)


def _fail(line: str, code: int) -> None:
    typer.echo(line, err=True)
    sys.exit(code)

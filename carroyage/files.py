"""Files on disk: atomic writes and output sets, CSV delimiters, decimal numbers in text columns.

Both wings read CSV files written by people (Filosofi extracts, beneficiary lists): the delimiter
is sniffed the same way and numbers are recognised by the same pattern everywhere.

>>> sniff_delimiter("id;adresse;lon")
';'
>>> parse_decimals(pa.array(["1.5", " 2,25 ", "x", None])).tolist()
[1.5, 2.25, nan, nan]
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError, OutputError
from .labels import CANNOT_WRITE, EMPTY_FILE, INPUT_FORMAT, INPUT_WHAT, NO_SUCH_FILE, OUTPUT_IS_INPUT, os_reason

DELIMITERS = ";,\t|"
DECIMAL = r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$"
"""A decimal number, with a point or a French decimal comma, optional exponent and spaces."""


def sniff_delimiter(header: str) -> str:
    """The most frequent of ``; , tab |`` in a header line (``,`` when none occurs)."""
    return max(DELIMITERS, key=header.count) if any(c in header for c in DELIMITERS) else ","


def input_kind(path: Path, kinds: dict[str, str], what: str) -> str:
    """The kind of an input file from its suffix, refusing a missing, unknown or empty one.

    ``what`` says what the file should hold, in French (``un carroyage de revenus``).

    >>> input_kind(Path("nope.csv"), {".csv": "csv"}, "un carroyage de revenus")
    Traceback (most recent call last):
    ...
    carroyage.errors.InputError: nope.csv : fichier introuvable
    """
    if not path.is_file():
        raise InputError(NO_SUCH_FILE.format(path=path))
    what = INPUT_WHAT.get(what, what)
    kind = kinds.get(path.suffix.lower())
    if kind is None:
        expected = ", ".join(sorted(kinds))
        raise InputError(INPUT_FORMAT.format(path=path, suffix=repr(path.suffix), what=what, expected=expected))
    if path.stat().st_size == 0:
        raise InputError(EMPTY_FILE.format(path=path, what=what))
    return kind


def csv_header(path: Path) -> tuple[list[str], str]:
    """The header line's column names (quotes and line ends removed) and its delimiter.

    Refuses, in one line, a binary file or a header that is not UTF-8.
    """
    with path.open("rb") as handle:
        head = handle.read(65536)
    if b"\x00" in head:
        raise InputError(f"{path} : contenu binaire ; attendu un fichier CSV en texte")
    try:
        header = head.splitlines()[0].decode("utf-8-sig")
    except (IndexError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} : ligne d'en-tête illisible ; attendu du texte UTF-8") from exc
    delimiter = sniff_delimiter(header)
    return [c.strip('"\r\n') for c in header.split(delimiter)], delimiter


def decimal_mask(text: pa.Array) -> pa.Array:
    """Which values of a text column are decimal numbers (nulls stay null)."""
    return pc.match_substring_regex(text, DECIMAL)


def parse_decimals(text: pa.Array) -> np.ndarray:
    """Float values of a text column; what is not a number (or is null) becomes NaN."""
    try:  # the usual column: every value a plain number
        number = pc.cast(text, pa.float64())
    except pa.ArrowInvalid:
        valid = pc.fill_null(decimal_mask(text), False)
        cleaned = pc.replace_substring(pc.utf8_trim_whitespace(text), ",", ".")
        number = pc.cast(pc.if_else(valid, cleaned, "nan"), pa.float64())
    return np.array(number.to_numpy(zero_copy_only=False), dtype=float)


TEMPORARY_TAG = ".carroyage-tmp-"
"""Every temporary output is named ``.NAME.carroyage-tmp-PID-XXXX.SUFFIX`` beside its target, so
that those left by a killed run are recognisable and removed by the next write in that folder."""

_PENDING: ContextVar[list[tuple[Path, Path]] | None] = ContextVar("pending_outputs", default=None)


@contextmanager
def output_set() -> Iterator[None]:
    """Make every :func:`atomic_path` write inside the block appear together, or not at all.

    Files are written under temporary names as usual; they are moved into place only when the
    whole block succeeds, and all removed when anything in it fails (a GeoPackage and its GeoJSON,
    a GeoParquet set and its manifest). A block inside another joins the outer one.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> try:
    ...     with output_set():
    ...         with atomic_path(folder / "a.txt") as temporary:
    ...             _ = temporary.write_text("a")
    ...         raise OSError("the second file could not be written")
    ... except OSError:
    ...     pass
    >>> sorted(p.name for p in folder.iterdir())
    []
    """
    if _PENDING.get() is not None:
        yield
        return
    pending: list[tuple[Path, Path]] = []
    token = _PENDING.set(pending)
    try:
        yield
    except BaseException:
        for temporary, _ in pending:
            temporary.unlink(missing_ok=True)
        raise
    finally:
        _PENDING.reset(token)
    for temporary, target in pending:
        os.replace(temporary, target)


def refuse_overwriting(out: Path, *inputs: Path | None) -> None:
    """Refuse an output that is one of the command's inputs (it would be replaced while read).

    >>> refuse_overwriting(Path("a.gpkg"), Path("./a.gpkg"))
    Traceback (most recent call last):
    ...
    carroyage.errors.InputError: a.gpkg : la sortie est aussi une entrée ; attendu un autre nom de fichier
    """
    target = out.resolve()
    for path in inputs:
        if path is not None and path.resolve() == target:
            raise InputError(OUTPUT_IS_INPUT.format(path=out))


def sweep_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries that runs no longer alive left in ``folder``; return them."""
    removed = []
    for candidate in folder.glob(f".*{TEMPORARY_TAG}*"):
        pid = candidate.name.split(TEMPORARY_TAG, 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


@contextmanager
def atomic_path(path: Path, start_from: Path | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    ``start_from`` copies an existing file into the temporary first (to add layers to it). Inside
    :func:`output_set`, the move waits for the whole set.
    """
    pending = _PENDING.get()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temporaries(path.parent)
        prefix = f".{path.stem}{TEMPORARY_TAG}{os.getpid()}-"
        handle, temporary = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        culprit = f"{exc.filename} : " if exc.filename and Path(exc.filename) in path.parents else ""
        raise OutputError(CANNOT_WRITE.format(path=path, reason=culprit + os_reason(exc))) from exc
    os.close(handle)
    temporary_path = Path(temporary)
    temporary_path.unlink()
    if start_from is not None:
        earlier = [written for written, target in pending or [] if target == path]
        shutil.copyfile(earlier[-1] if earlier else start_from, temporary_path)
    try:
        yield temporary_path
        if pending is None:
            os.replace(temporary_path, path)
        else:
            pending.append((temporary_path, path))
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise

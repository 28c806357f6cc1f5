"""Files on disk: atomic writes, CSV delimiters, decimal numbers in text columns.

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
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import OutputError

DELIMITERS = ";,\t|"
DECIMAL = r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$"
"""A decimal number, with a point or a French decimal comma, optional exponent and spaces."""


def sniff_delimiter(header: str) -> str:
    """The most frequent of ``; , tab |`` in a header line (``,`` when none occurs)."""
    return max(DELIMITERS, key=header.count) if any(c in header for c in DELIMITERS) else ","


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


@contextmanager
def atomic_path(path: Path, start_from: Path | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    ``start_from`` copies an existing file into the temporary first (to add layers to it).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here ({exc.strerror or exc})") from exc
    os.close(handle)
    temporary_path = Path(temporary)
    temporary_path.unlink()
    if start_from is not None:
        shutil.copyfile(start_from, temporary_path)
    try:
        yield temporary_path
        os.replace(temporary_path, path)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise

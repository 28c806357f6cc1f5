"""INSPIRE grid ids and the :class:`Grid`: inhabited cells as aligned arrays in EPSG:3035.

INSEE's 200 m cells are named ``CRS3035RES200mN{y}E{x}`` where ``(x, y)`` is the lower-left corner
in metres (docs/facts.md, "INSEE Filosofi 200 m gridded data"). Parsing and formatting are vectorised
with pyarrow compute kernels: no Python loop per cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import GridIdError
from ..labels import ROW_WORDS

# Bounded digit runs: a coordinate of 10+ digits (over 1,000 km x 1,000) is no grid cell and would
# overflow int64 when decoded.
ID_PATTERN = r"^CRS(?P<epsg>\d{4,5})RES(?P<res>\d{1,6})mN(?P<y>\d{1,9})E(?P<x>\d{1,9})$"
ID_TEMPLATE = "CRS{epsg}RES{res}mN{y}E{x}"


@dataclass(frozen=True)
class ParsedIds:
    """Coordinates decoded from INSPIRE ids (lower-left corners, metres)."""

    epsg: int
    resolution: int
    x: np.ndarray
    y: np.ndarray


def parse_ids(
    ids: pa.Array | np.ndarray | list[str], source: str = "grid", row_word: str = "row", row_offset: int = 1
) -> ParsedIds:
    """Decode INSPIRE cell ids into one CRS, one resolution and corner coordinates.

    Parameters
    ----------
    ids : array of str
        Ids such as ``CRS3035RES200mN2999000E3763200``.
    source : str
        Name used in error messages (usually the file name).
    row_word, row_offset : str, int
        How error messages number rows: ``"line", 2`` for a CSV with a header line (``"line"``,
        ``"row"`` or ``"feature"``, said in French in the messages).

    Returns
    -------
    ParsedIds

    Raises
    ------
    GridIdError
        On a malformed id, mixed CRS or resolutions, or a corner off the grid, naming the first
        offending row.

    Examples
    --------
    >>> p = parse_ids(["CRS3035RES200mN2999000E3763200"])
    >>> p.epsg, p.resolution, int(p.x[0]), int(p.y[0])
    (3035, 200, 3763200, 2999000)
    """
    arr = pa.array(ids, type=pa.string()) if not isinstance(ids, pa.Array) else ids.cast(pa.string())
    parsed = _parse_same_shape(arr)
    if parsed is not None and not ((parsed.x % parsed.resolution != 0) | (parsed.y % parsed.resolution != 0)).any():
        return parsed
    parts = pc.extract_regex(pc.utf8_trim_whitespace(arr), ID_PATTERN)
    bad = parts.is_null()
    if pc.any(bad).as_py():
        row = int(pc.index(bad, True).as_py())
        raise GridIdError(
            f"{_row(source, row_word, row + row_offset)} : identifiant de carreau {arr[row].as_py()!r} mal formé ; "
            "attendu CRS3035RES200mN{y}E{x}"
        )
    fields = {name: parts.field(name) for name in ("epsg", "res", "y", "x")}
    where = (source, row_word, row_offset)
    epsg = _single_value(fields["epsg"], "plusieurs CRS", where)
    res = _single_value(fields["res"], "plusieurs résolutions", where)
    x = pc.cast(fields["x"], pa.int64()).to_numpy()
    y = pc.cast(fields["y"], pa.int64()).to_numpy()
    if res <= 0:
        raise GridIdError(f"{source} : carreaux de {res} m ; attendu une résolution positive")
    off = (x % res != 0) | (y % res != 0)
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise GridIdError(
            f"{_row(source, row_word, row + row_offset)} : carreau {arr[row].as_py()!r} hors de la grille de {res} m ; "
            f"attendu des coordonnées multiples de {res}"
        )
    return ParsedIds(epsg=epsg, resolution=res, x=x, y=y)


def _parse_same_shape(arr: pa.Array) -> ParsedIds | None:
    """Fast path for the usual file, whose ids all share one length, CRS and resolution.

    Reads the ids' bytes as an ``n × length`` array and decodes the digits arithmetically;
    ``None`` sends anything unusual to the regular-expression path, which names the offending row.
    """
    if len(arr) == 0 or arr.null_count:
        return None
    offset_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    _, offset_buffer, data_buffer = arr.buffers()
    offsets = np.frombuffer(
        offset_buffer, dtype=offset_type, count=len(arr) + 1, offset=arr.offset * np.dtype(offset_type).itemsize
    )
    length = int(offsets[1] - offsets[0])
    if length == 0 or offsets[-1] - offsets[0] != length * len(arr) or (np.diff(offsets) != length).any():
        return None
    chars = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]].reshape(len(arr), length)
    match = re.match(ID_PATTERN, chars[0].tobytes().decode("ascii", "replace"))
    if match is None:
        return None
    north, east = match.start("y"), match.start("x")
    if (chars[:, :north] != chars[0, :north]).any() or (chars[:, east - 1] != ord("E")).any():
        return None
    y_digits, x_digits = chars[:, north : east - 1] - ord("0"), chars[:, east:] - ord("0")
    if (y_digits > 9).any() or (x_digits > 9).any():  # uint8: bytes below '0' wrap above 9
        return None
    return ParsedIds(int(match["epsg"]), int(match["res"]), _decimal(x_digits), _decimal(y_digits))


def _decimal(digits: np.ndarray) -> np.ndarray:
    value = np.zeros(len(digits), dtype=np.int64)
    for position in range(digits.shape[1]):  # a handful of digit columns, each one vectorised pass
        value *= 10
        value += digits[:, position]
    return value


def _row(source: str, row_word: str, number: int) -> str:
    """Where an error is, in French: ``grid.csv : ligne 6``."""
    return f"{source} : {ROW_WORDS.get(row_word, row_word)} {number}"


def _single_value(column: pa.Array, what: str, where: tuple[str, str, int]) -> int:
    source, row_word, row_offset = where
    values = pc.unique(column)
    if len(values) != 1:
        first, other = values[0].as_py(), values[1].as_py()
        row = int(pc.index(column, other).as_py())
        raise GridIdError(
            f"{_row(source, row_word, row + row_offset)} : {what} dans les identifiants de carreaux "
            f"({first} et {other}) ; attendu une seule grille par fichier"
        )
    return int(values[0].as_py())


def format_ids(x: np.ndarray, y: np.ndarray, resolution: int = 200, epsg: int = 3035) -> np.ndarray:
    """Build INSPIRE ids from lower-left corners.

    Examples
    --------
    >>> format_ids(np.array([3763200]), np.array([2999000])).tolist()
    ['CRS3035RES200mN2999000E3763200']
    """
    prefix = f"CRS{epsg}RES{resolution}mN"
    ys = pc.cast(pa.array(np.asarray(y, dtype=np.int64)), pa.string())
    xs = pc.cast(pa.array(np.asarray(x, dtype=np.int64)), pa.string())
    joined = pc.binary_join_element_wise(pa.scalar(prefix), ys, pa.scalar("E"), xs, "")
    return np.asarray(joined.to_numpy(zero_copy_only=False), dtype=object)


_SQUARE_HEADER = np.frombuffer(
    b"\x01" + (3).to_bytes(4, "little") + (1).to_bytes(4, "little") + (5).to_bytes(4, "little"), np.uint8
)


def square_wkb(x: np.ndarray, y: np.ndarray, size: float) -> pa.Array:
    """Little-endian WKB squares with lower-left corners ``x, y``, built directly in numpy.

    Millions of cell squares are written this way without creating a GEOS object per cell: one
    packed record per square (WKB header, then the closed ring's ten coordinates) in one buffer.
    """
    x0, y0 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x1, y1 = x0 + size, y0 + size
    record = np.empty(len(x0), dtype=[("header", np.uint8, len(_SQUARE_HEADER)), ("ring", "<f8", (10,))])
    record["header"] = _SQUARE_HEADER
    ring = record["ring"]
    for position, coordinate in enumerate((x0, y0, x1, y0, x1, y1, x0, y1, x0, y0)):
        ring[:, position] = coordinate
    offsets = np.arange(len(x0) + 1, dtype=np.int64) * record.dtype.itemsize
    return pa.Array.from_buffers(pa.large_binary(), len(x0), [None, pa.py_buffer(offsets), pa.py_buffer(record)])


@dataclass(frozen=True)
class Grid:
    """A north-up frame holding a set of cells: each cell's ``row`` and ``col`` in it."""

    epsg: int
    resolution: int
    west: int
    north: int
    shape: tuple[int, int]
    row: np.ndarray
    col: np.ndarray

    @classmethod
    def around(cls, x: np.ndarray, y: np.ndarray, resolution: int, epsg: int = 3035, pad: int = 1) -> Grid:
        """Frame the cells with lower-left corners ``x, y``, with ``pad`` empty cells on every side."""
        west = int(x.min()) - pad * resolution
        north = int(y.max()) + (1 + pad) * resolution
        col = ((x - west) // resolution).astype(np.int64)
        row = ((north - resolution - y) // resolution).astype(np.int64)
        shape = (int(row.max()) + 1 + pad, int(col.max()) + 1 + pad)
        return cls(epsg, resolution, west, north, shape, row, col)

    def runs_along_grid(self) -> bool:
        """Whether the cells come strictly in a scan order: along rows or columns, either way.

        INSEE's files come sorted by cell, by rows or by columns depending on the vintage. Strict
        order also means that no cell appears twice.
        """
        height, width = self.shape
        along = (
            self.row * width + self.col,
            self.row * width - self.col,
            self.col * height + self.row,
            self.col * height - self.row,
        )
        return any(_monotonic(keys) for keys in along)  # each one either way: every direction of scan

    def spatial_order(self) -> np.ndarray | None:
        """None if the cells already run along grid rows or columns; else a permutation to raster order.

        Raster order is north to south, then west to east.
        """
        if self.runs_along_grid():
            return None
        if max(self.shape) <= np.iinfo(np.uint16).max:  # two linear-time radix passes
            by_col = np.argsort(self.col.astype(np.uint16), kind="stable")
            return by_col[np.argsort(self.row[by_col].astype(np.uint16), kind="stable")]
        return np.argsort(self.row * self.shape[1] + self.col)

    def corners(self, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower-left corners of raster positions."""
        x = self.west + col * self.resolution
        y = self.north - (row + 1) * self.resolution
        return x, y


def _monotonic(values: np.ndarray) -> bool:
    steps = np.diff(values)
    return bool((steps > 0).all() or (steps < 0).all())

"""Read income grids into a :class:`CellTable`.

Accepted inputs (docs/facts.md, "INSEE Filosofi 200 m gridded data"):

* INSEE Filosofi 200 m grids, CSV / GeoPackage / Shapefile / GeoParquet, every vintage: 2015
  capitalised names (``IdINSPIRE``, ``Ind``, ``Men_pauv``, ``Ind_snv``, ``I_est_cr``), 2017-2021
  lower case (``idcar_200m``, ``ind``, ``men_pauv``, ``ind_snv``, ``i_est_200``), RFL 2010
  (``ind_c``, ``ind_srf``: declared income). A file may hold only some columns.
* A plain cell table with exact figures: ``idcar_200m``, ``population`` and either
  ``median_income`` (the cell's median declared income per UC) or ``population_low`` (residents
  below the rule's threshold).
* A GeoTIFF on the grid (EPSG:3035 or any projected CRS, pixels the size of the cells, aligned on
  multiples of it) whose band descriptions name the figures, with the same names as the tables
  (``population`` or ``ind``, ``population_low``, ``median_income``, ``ind_snv``, ``men``,
  ``men_pauv``...). Pixels with residents become cells.

Cells are identified by their INSPIRE id; the file geometry, when there is one, is ignored (INSEE
ships metropolitan geometry in Lambert-93, where cells are no longer aligned squares).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..errors import InputError
from ..files import csv_header, input_kind
from ..labels import COUNT_EXPECTED, INPUT_WHAT, NOT_UTF8, ROW_WORDS, UNREADABLE, VALUE_EXPECTED, integer, one_of
from ..manifest import sha256, shown_path
from ..settings import MAX_CELL_INCOME_EUR, MAX_CELL_RESIDENTS
from .grid import Grid, ParsedIds, parse_ids

# canonical name -> accepted source names (lower case), first match wins
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("idcar_200m", "idinspire", "id_inspire", "idcar_1km", "idcar_nat", "idcar"),
    "population": ("population", "ind", "ind_c"),
    "households": ("men",),
    "poor_households": ("men_pauv",),
    "income_sum": ("ind_snv", "ind_srf"),
    "imputed": ("i_est_200", "i_est_cr", "i_est_1km"),
    "median_income": ("median_income",),
    "population_low": ("population_low",),
}
NUMERIC = ("population", "households", "poor_households", "income_sum", "median_income", "population_low")
INCOME_CONCEPT = {"ind_snv": "disposable", "ind_srf": "declared"}
SUFFIXES = {
    ".csv": "csv",
    ".txt": "csv",
    ".gpkg": "layer",
    ".shp": "layer",
    ".parquet": "parquet",
    ".tif": "raster",
    ".tiff": "raster",
}
GRID = INPUT_WHAT["an income grid"]
"""What a grid file should hold, in the messages (``un carroyage de revenus``)."""
COLUMN_WHAT = {"id": "d'identifiant de carreau", "population": "de population"}
"""The columns every grid needs, as the error naming a missing one says them."""


@dataclass(frozen=True)
class CellTable:
    """Inhabited cells of one income grid, with canonical column names.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per cell: ``id``, ``x``, ``y`` (lower-left corner, EPSG:3035 metres),
        ``population`` and whichever of ``households``, ``poor_households``, ``income_sum``,
        ``imputed``, ``median_income``, ``population_low`` the file holds.
    epsg, resolution : int
        Grid CRS and cell size decoded from the ids.
    source : str
        Path of the file read.
    sha256 : str
        Hash of the file's bytes (for the run manifest).
    columns : dict
        Canonical name -> the file's own column name.
    """

    frame: pd.DataFrame
    epsg: int
    resolution: int
    source: str
    sha256: str
    columns: dict[str, str] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        """True when the file gives the low-income figure itself (no estimation needed)."""
        return "population_low" in self.frame or "median_income" in self.frame

    @property
    def income_concept(self) -> str:
        """``declared`` or ``disposable``: which income the file's figures measure."""
        if self.exact:
            return "declared"
        return INCOME_CONCEPT[self.columns["income_sum"].strip().lower()]

    def describe(self) -> dict[str, object]:
        """Facts about the input for the run manifest."""
        return {
            "path": shown_path(self.source),
            "sha256": self.sha256,
            "cells": len(self.frame),
            "population": float(self.frame["population"].sum()),
            "epsg": self.epsg,
            "resolution_m": self.resolution,
            "columns": self.columns,
            "income_concept": self.income_concept,
        }


def read_grid(path: str | Path) -> CellTable:
    """Read an income grid file (CSV, GeoPackage, Shapefile or GeoParquet).

    Parameters
    ----------
    path : str or Path
        The file. Its suffix chooses the reader.

    Returns
    -------
    CellTable

    Raises
    ------
    InputError
        Missing, empty or binary file; missing column; malformed, off-grid or duplicate cell id;
        missing, non-numeric or negative count. The message names the file, the row and what was
        expected.

    Examples
    --------
    >>> from carroyage.data import AMIENS_2019
    >>> cells = read_grid(AMIENS_2019)
    >>> len(cells.frame), cells.resolution, cells.income_concept
    (1273, 200, 'disposable')
    """
    path = Path(path)
    name = str(path)
    kind = input_kind(path, SUFFIXES, "an income grid")
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(sha256, path)  # hashed while the file is parsed: both release the GIL
        table, row_word, row_offset = _READERS[kind](path)
        if table.num_rows == 0:
            raise InputError(f"{name} : aucun carreau ; attendu au moins une ligne de données")
        columns = _match_columns(table.column_names, name)
        frame, parsed = _to_frame(table, columns, name, row_word, row_offset)
        return CellTable(frame, parsed.epsg, parsed.resolution, name, digest.result(), columns)


def _read_csv(path: Path) -> tuple[pa.Table, str, int]:
    names, delimiter = csv_header(path)
    _match_columns(names, str(path))  # a duplicated or missing column is named before parsing
    known = {alias for aliases in ALIASES.values() for alias in aliases}
    wanted = [c for c in names if c.strip().lower() in known]  # parse only the columns the engine uses
    id_columns = [c for c in wanted if c.strip().lower() in ALIASES["id"]]
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in id_columns},
                strings_can_be_null=True,
                include_columns=wanted or None,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        line = _first_undecodable_line(path)
        if line is not None:
            raise InputError(f"{path} : ligne {line} : " + NOT_UTF8.format(detail="")) from exc
        raise InputError(UNREADABLE.format(path=path, reason=_first_line(exc), expected=f"{GRID} en CSV")) from exc
    return table, "line", 2


def _first_undecodable_line(path: Path) -> int | None:
    """The number of the first line that is not UTF-8, if any (read in blocks, not all at once)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _read_layer(path: Path) -> tuple[pa.Table, str, int]:
    import pyogrio

    try:
        _, table = pyogrio.read_arrow(path, read_geometry=False)
    except Exception as exc:  # pyogrio raises several DataSource errors; all mean "not readable"
        expected = f"{GRID} en GeoPackage ou Shapefile"
        raise InputError(UNREADABLE.format(path=path, reason=_first_line(exc), expected=expected)) from exc
    return table, "feature", 1


def _read_parquet(path: Path) -> tuple[pa.Table, str, int]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(UNREADABLE.format(path=path, reason=_first_line(exc), expected=f"{GRID} en Parquet")) from exc
    return table.drop_columns([c for c in ("geometry",) if c in table.column_names]), "row", 1


def _read_raster(path: Path) -> tuple[pa.Table, str, int]:
    import rasterio
    from rasterio.errors import RasterioIOError

    from .grid import format_ids

    try:
        with rasterio.open(path) as source:
            names = [(d or "").strip() for d in source.descriptions]
            bands = source.read(masked=True)
            transform, crs = source.transform, source.crs
    except RasterioIOError as exc:
        raise InputError(UNREADABLE.format(path=path, reason=_first_line(exc), expected=f"{GRID} en GeoTIFF")) from exc
    epsg = crs.to_epsg() if crs else None
    size = transform.a
    if epsg is None or transform.b or transform.d or size != -transform.e or size <= 0 or size != int(size):
        found = (
            "système de coordonnées sans code EPSG"
            if epsg is None
            else "grille tournée"
            if transform.b or transform.d
            else f"pixels de {size:g} m sur {-transform.e:g} m"
        )
        raise InputError(
            f"{path} : {found} ; attendu une grille orientée au nord, dans une projection EPSG, "
            "à pixels carrés d'un nombre entier de mètres"
        )
    if (transform.c % size) or (transform.f % size):
        raise InputError(
            f"{path} : coin du raster ({transform.c}, {transform.f}) hors de la grille de {size:g} m ; "
            f"attendu des coordonnées multiples de {size:g}"
        )
    if not all(names) or len(set(names)) != len(names):
        found = (
            f"bande {names.index('') + 1} sans description"
            if not all(names)
            else f"description {next(n for n in names if names.count(n) > 1)!r} en double"
        )
        raise InputError(
            f"{path} : {found} ; attendu une description distincte par bande, nommant son chiffre "
            "(population, ind_snv, population_low...)"
        )
    lower = [n.lower() for n in names]
    band = next((lower.index(alias) for alias in ALIASES["population"] if alias in lower), None)
    if band is None:
        raise InputError(
            f"{path} : pas de bande de population ; attendu une bande décrite comme {one_of(ALIASES['population'])}"
        )
    rows, cols = np.nonzero(np.ma.filled(bands[band], 0) > 0)
    x = (transform.c + cols * size).astype(np.int64)
    y = (transform.f - (rows + 1) * size).astype(np.int64)
    columns = {"idcar_200m": pa.array(format_ids(x, y, int(size), epsg), pa.string())}
    for name, band in zip(names, bands, strict=True):
        columns[name] = pa.array(np.ma.filled(band.astype(np.float64), np.nan)[rows, cols])
    return pa.table(columns), "pixel", 1


_READERS = {"csv": _read_csv, "layer": _read_layer, "parquet": _read_parquet, "raster": _read_raster}


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _match_columns(names: list[str], source: str) -> dict[str, str]:
    cleaned = [n.strip().lower() for n in names]
    known = {alias for aliases in ALIASES.values() for alias in aliases}
    twice = sorted({n for n in cleaned if n in known and cleaned.count(n) > 1})
    if twice:
        raise InputError(f"{source} : colonne {twice[0]!r} en double dans l'en-tête ; attendu chaque colonne une fois")
    lower = dict(zip(cleaned, names, strict=True))
    found = {}
    for canonical, aliases in ALIASES.items():
        match = next((lower[a] for a in aliases if a in lower), None)
        if match is not None:
            found[canonical] = match
    for canonical in ("id", "population"):
        if canonical not in found:
            raise InputError(
                f"{source} : pas de colonne {COLUMN_WHAT[canonical]} ; "
                f"attendu l'une des colonnes {one_of(ALIASES[canonical])}"
            )
    has_exact = "median_income" in found or "population_low" in found
    if not has_exact and "income_sum" not in found:
        raise InputError(
            f"{source} : pas de colonne de revenu ; attendu ind_snv (Filosofi) ou, pour des chiffres exacts, "
            "median_income ou population_low"
        )
    return found


def _to_frame(
    table: pa.Table, columns: dict[str, str], source: str, row_word: str, row_offset: int
) -> tuple[pd.DataFrame, ParsedIds]:
    def where(i: int) -> str:
        return f"{source} : {ROW_WORDS.get(row_word, row_word)} {i + row_offset}"

    ids = table.column(columns["id"]).combine_chunks()
    if ids.null_count:
        raise InputError(
            f"{where(_first_true(ids.is_null()))} : identifiant de carreau vide ; attendu CRS3035RES200mN{{y}}E{{x}}"
        )
    ids = ids.cast(pa.string())
    parsed = parse_ids(ids, source, row_word=row_word, row_offset=row_offset)
    _check_grid_crs(parsed, source)
    data: dict[str, object] = {"id": pd.arrays.ArrowStringArray(ids), "x": parsed.x, "y": parsed.y}
    ids_np = _IdLookup(ids)
    for canonical in NUMERIC:
        if canonical in columns:
            data[canonical] = _numeric(table.column(columns[canonical]), columns[canonical], ids_np, where, canonical)
    if "imputed" in columns:
        data["imputed"] = _numeric(table.column(columns["imputed"]), columns["imputed"], ids_np, where) > 0
    frame = pd.DataFrame(data, copy=False)  # one block per column: no copy of millions of rows
    _check_duplicates(frame, parsed.resolution, where)
    _check_consistency(frame, columns, ids_np, where)
    return frame, parsed


def _check_grid_crs(parsed: ParsedIds, source: str) -> None:
    """INSPIRE ids name a projected CRS in metres and a positive cell size; refuse anything else."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    if parsed.resolution <= 0:
        raise InputError(
            f"{source} : identifiants de carreaux en RES{parsed.resolution}m ; "
            "attendu une taille de carreau positive (RES200m)"
        )
    try:
        crs = CRS.from_epsg(parsed.epsg)
    except CRSError:
        raise InputError(
            f"{source} : identifiants de carreaux en EPSG:{parsed.epsg}, système de coordonnées inconnu ; "
            "attendu EPSG:3035"
        ) from None
    if not crs.is_projected or crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise InputError(
            f"{source} : identifiants de carreaux en EPSG:{parsed.epsg}, système non projeté en mètres ; "
            "attendu EPSG:3035 (ou celui d'un carroyage d'outre-mer, par ex. EPSG:5490, EPSG:2975)"
        )


class _IdLookup:
    """Cell ids by row, for error messages, without turning millions of ids into Python strings."""

    def __init__(self, ids: pa.Array) -> None:
        self.ids = ids

    def __getitem__(self, row: int) -> str:
        return cast(str, self.ids[int(row)].as_py())


def _numeric(
    column: pa.ChunkedArray, name: str, ids: _IdLookup, where: Callable[[int], str], canonical: str = "population"
) -> np.ndarray:
    """A count or income column as floats: numbers only, none missing, within plausible bounds."""
    array = column.combine_chunks()
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        text = pc.utf8_trim_whitespace(array)
        ok = pc.match_substring_regex(text, r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")  # no decimal comma
        bad = pc.and_(pc.invert(pc.fill_null(ok, True)), pc.is_valid(text))
        if pc.any(bad).as_py():
            i = _first_true(bad)
            raise InputError(
                f"{where(i)} (carreau {ids[i]}) : colonne {name!r} contient {array[i].as_py()!r} ; "
                + VALUE_EXPECTED["float_parsing"]
            )
        try:
            array = pc.cast(text, pa.float64())
        except pa.ArrowInvalid:  # bytes that are not UTF-8 text slipped through the pattern
            i = _first_undecodable(array)
            raise InputError(
                f"{where(i)} (carreau {ids[i]}) : colonne {name!r} : texte non UTF-8 ; attendu un nombre"
            ) from None
    try:
        values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # bytes that are not text: not UTF-8
        i = _first_undecodable(array)
        raise InputError(
            f"{where(i)} (carreau {ids[i]}) : colonne {name!r} : texte non UTF-8 ; attendu un nombre"
        ) from None
    missing = np.isnan(values)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise InputError(f"{where(i)} (carreau {ids[i]}) : colonne {name!r} est vide ; {COUNT_EXPECTED}")
    negative = values < 0
    if negative.any():
        i = int(np.flatnonzero(negative)[0])
        raise InputError(f"{where(i)} (carreau {ids[i]}) : colonne {name!r} vaut {values[i]:g} ; {COUNT_EXPECTED}")
    income = canonical in ("income_sum", "median_income")
    bound = MAX_CELL_INCOME_EUR if income else MAX_CELL_RESIDENTS
    implausible = ~(values <= bound)  # inf included
    if implausible.any():
        i = int(np.flatnonzero(implausible)[0])
        setting = "MAX_CELL_INCOME_EUR" if income else "MAX_CELL_RESIDENTS"
        raise InputError(
            f"{where(i)} (carreau {ids[i]}) : colonne {name!r} vaut {values[i]:g} ; "
            f"attendu au plus {integer(bound)} par carreau (settings.{setting})"
        )
    return cast(np.ndarray, values)


def _first_undecodable(array: pa.Array) -> int:
    """The first row whose bytes are not UTF-8 (on the error path only: a loop is fine)."""
    for i, value in enumerate(array.cast(pa.binary()).to_pylist()):
        try:
            (value or b"").decode("utf-8")
        except UnicodeDecodeError:
            return i
    return 0


def _first_true(mask: pa.Array) -> int:
    return int(pc.index(pc.fill_null(mask, False), True).as_py())


def _check_duplicates(frame: pd.DataFrame, resolution: int, where: Callable[[int], str]) -> None:
    x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
    if Grid.around(x, y, resolution).runs_along_grid() or not _has_duplicates(x, y, resolution):
        return  # cells strictly in scan order are all distinct: INSEE's files need no bitmap
    key = x * (1 << 31) + y
    order = np.argsort(key, kind="stable")
    repeated = np.flatnonzero(key[order][1:] == key[order][:-1])
    if len(repeated):
        pairs = np.column_stack([order[repeated], order[repeated + 1]])
        i = int(pairs.max(axis=1).min())
        first = int(pairs[pairs.max(axis=1).argmin()].min())
        raise InputError(
            f"{where(i)} : carreau {cast(str, frame.at[i, 'id'])} en double "
            f"(première occurrence : {where(first).rsplit(' : ', 1)[1]}) ; attendu chaque carreau une fois"
        )


def _check_consistency(
    frame: pd.DataFrame, columns: dict[str, str], ids: _IdLookup, where: Callable[[int], str]
) -> None:
    pairs = [("population_low", "population"), ("poor_households", "households")]
    for part, whole in pairs:
        if part in frame and whole in frame:
            over = frame[part].to_numpy() > frame[whole].to_numpy() * (1 + 1e-9) + 1e-9
            if over.any():
                i = int(np.flatnonzero(over)[0])
                raise InputError(
                    f"{where(i)} (carreau {ids[i]}) : {columns[part]!r} ({cast(float, frame.at[i, part]):g}) dépasse "
                    f"{columns[whole]!r} ({cast(float, frame.at[i, whole]):g}) ; "
                    f"attendu {columns[part]!r} au plus égal à {columns[whole]!r}"
                )


def _has_duplicates(x: np.ndarray, y: np.ndarray, step: int) -> bool:
    """One scatter into a bitmap of the cells' frame (a hash pass for an unusually large frame)."""
    width = (x.max() - x.min()) // step + 1
    height = (y.max() - y.min()) // step + 1
    if width * height > 200_000_000:
        return bool(pd.Index(x * (1 << 31) + y).has_duplicates)
    seen = np.zeros(int(width * height), dtype=bool)
    seen[(y - y.min()) // step * width + (x - x.min()) // step] = True
    return int(np.count_nonzero(seen)) < len(x)

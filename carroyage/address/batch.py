"""Address files: every row back, in order, untouched, with its answer appended.

Coordinates are found without flags in columns named ``lon``/``lat`` or ``longitude``/``latitude``,
addresses in a column named ``adresse``/``address`` or in several columns given with
``--address-cols``. The file is streamed in chunks (its size is unbounded) and written under a
temporary name until complete. A malformed row gets ``status = invalid`` and a ``reason``.
"""

from __future__ import annotations

import csv
import io
import json
import mmap
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .. import labels
from ..errors import InputError
from ..files import atomic_path, parse_decimals, sniff_delimiter
from ..settings import CSV_CHUNK_ROWS, MAX_ADDRESS_CHARS, MIN_SCORE, TOLERANCE_M
from .check import StreetZones, refine
from .lookup import STATUS, ZoneSet, arrow_of, numpy_of, prefetch_nearest, string_scalar, strings_of
from .normalise import too_long

if TYPE_CHECKING:  # the geocoder (rapidfuzz) is imported only for files of addresses
    from .geocode import Geocoder, Match

ANSWER_COLUMNS = [
    "status",
    "zone_type",
    "zone_code",
    "zone_name",
    "distance_m",
    "geocode_label",
    "geocode_score",
    "geocode_type",
    "geocode_id",
    "street_partly_in",
    "reason",
]
"""Appended to every row. For an ``out`` row ``zone_*`` and ``distance_m`` (positive) are the
nearest zone's; ``geocode_type`` is ``housenumber``, ``street`` or ``municipality`` and ``geocode_id`` the BAN id;
``street_partly_in`` is ``true`` when the matched street crosses a zone boundary."""
LON_NAMES, LAT_NAMES = ("lon", "longitude", "lng"), ("lat", "latitude")
ADDRESS_NAMES = ("adresse", "address", "adresse_complete")
EXCEL_SAFE_COLUMNS = ("zone_type", "zone_code", "zone_name", "geocode_label", "geocode_type", "geocode_id", "reason")
"""The appended text columns ``--excel-safe`` neutralises (numbers and ``status`` cannot hold a formula)."""
FORMULA_START = r"^[=+\-@\t\r]"
"""What a spreadsheet may read as a formula (OWASP, "CSV Injection"): such a cell gets a leading ``'``."""


@dataclass(frozen=True)
class Columns:
    """Where the positions or addresses are in the file."""

    lon: int | None
    lat: int | None
    address: list[int]


def find_columns(
    header: list[str],
    source: str,
    address_cols: list[str] | None = None,
    lon_col: str | None = None,
    lat_col: str | None = None,
) -> Columns:
    """Locate the coordinate or address columns (case-insensitive), or say what was expected."""
    lower = {name.strip().lower(): i for i, name in enumerate(header)}

    def one(name: str | None, defaults: tuple[str, ...], flag: str) -> int | None:
        if name is not None:
            if name.lower() not in lower:
                raise InputError(_missing_column(source, name, flag, header))
            return lower[name.lower()]
        return next((lower[n] for n in defaults if n in lower), None)

    lon, lat = one(lon_col, LON_NAMES, "--lon-col"), one(lat_col, LAT_NAMES, "--lat-col")
    if address_cols:
        missing = [c for c in address_cols if c.lower() not in lower]
        if missing:
            raise InputError(_missing_column(source, missing[0], "--address-cols", header))
        address = [lower[c.lower()] for c in address_cols]
    else:
        address = [lower[n] for n in ADDRESS_NAMES if n in lower][:1]
    if (lon is None) != (lat is None):
        raise InputError(
            f"{source} : une seule des colonnes de longitude et de latitude ; attendu les deux "
            "(lon/lat ou longitude/latitude)"
        )
    if lon is None and not address:
        raise InputError(
            f"{source} : ni coordonnées ni adresse ; attendu des colonnes lon/lat (ou longitude/latitude), "
            "une colonne adresse/address, ou --address-cols / --lon-col --lat-col"
        )
    return Columns(lon, lat, address)


def _missing_column(source: str, name: str, option: str, header: list[str]) -> str:
    columns = labels.one_of(header)
    return labels.MISSING_COLUMN.format(path=source, name=name, option=f" ({option})", columns=columns)


def locate_csv(
    source: str | Path,
    target: str | Path,
    zones: ZoneSet,
    geocoder: Geocoder | None = None,
    *,
    address_cols: list[str] | None = None,
    lon_col: str | None = None,
    lat_col: str | None = None,
    tolerance: float = TOLERANCE_M,
    min_score: float = MIN_SCORE,
    chunk_rows: int = CSV_CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    streets: StreetZones | None = None,
    excel_safe: bool = False,
) -> Counter[str]:
    """Annotate every row of a UTF-8 CSV file with its zone; return the count of each status.

    Parameters
    ----------
    source, target : str or Path
        Input and output CSV files (same delimiter; the input's values come back untouched).
    zones : ZoneSet
    geocoder : BanGeocoder or AddokGeocoder, optional
        Needed when rows are located by address.
    address_cols, lon_col, lat_col : optional
        Columns to use instead of the ones found by name.
    tolerance : float
        Metres around boundaries within which the answer is ``uncertain``.
    min_score : float
        Geocoding scores below this make the answer ``uncertain``.
    chunk_rows : int
        Rows handled at once.
    progress : callable, optional
        Called with the number of rows done after each chunk.
    workers : int
        Processes that geocode (0: every core); a BAN index is shared with them by ``fork``.
    streets : StreetZones, optional
        Where the BAN index's streets lie against ``zones`` (computed here when not given).
    excel_safe : bool
        Prefix with ``'`` the appended text cells a spreadsheet would read as a formula (starting
        with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return); the input's own cells stay
        untouched.

    Notes
    -----
    Well-formed files are read and written by Arrow's CSV reader and writer; a file with a
    malformed row (wrong number of fields) is read again with Python's csv module, which keeps
    such rows, so that every row comes back in order either way.
    """
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise InputError(labels.NO_SUCH_FILE.format(path=source))
    header, delimiter = _header(source)
    columns = find_columns(header, str(source), address_cols, lon_col, lat_col)
    if columns.lon is None and geocoder is None:
        raise InputError(f"{source} : des adresses à géocoder et aucun géocodeur ; {labels.GEOCODER_EXPECTED}")
    if streets is None and geocoder is not None and columns.address:
        streets = StreetZones.of(geocoder, zones)
    if columns.lon is not None and source.stat().st_size > 1 << 20:
        prefetch_nearest()  # out rows get their nearest zone: its library loads while the file is read
    answer = _Answerer(len(header), columns, zones, geocoder, tolerance, min_score, streets, workers, excel_safe)
    names = _answer_names(header)
    try:
        return _run(
            source,
            target,
            header,
            delimiter,
            answer,
            names,
            zones,
            geocoder,
            tolerance,
            min_score,
            progress,
            chunk_rows,
        )
    finally:
        answer.close()


def _run(
    source: Path,
    target: Path,
    header: list[str],
    delimiter: str,
    answer: _Answerer,
    names: list[str],
    zones: ZoneSet,
    geocoder: Geocoder | None,
    tolerance: float,
    min_score: float,
    progress: Callable[[int], None] | None,
    chunk_rows: int,
) -> Counter[str]:
    quoted, balanced = _quotes(source)
    readers = (_arrow_chunks, _python_chunks) if balanced else (_python_chunks,)
    for reader in readers:
        counts: Counter[str] = Counter()
        try:
            with atomic_path(target) as temporary, temporary.open("wb") as out:
                out.write((_join_header(header + names, delimiter) + "\n").encode("utf-8"))
                done = 0
                chunks = reader(source, header, delimiter, chunk_rows)
                for chunk, answers in _answered(chunks, answer, delimiter, ahead=not answer.columns.address):
                    found = np.bincount(answers.codes, minlength=len(ANSWER_STATUS))
                    counts.update({name: int(n) for name, n in zip(ANSWER_STATUS, found, strict=True) if n})
                    chunk.write(out, answers, names, delimiter, quoted)
                    done += chunk.rows
                    if progress:
                        progress(done)
            _write_manifest(
                source,
                target,
                zones,
                counts,
                tolerance=tolerance,
                min_score=min_score,
                geocoder=type(geocoder).__name__ if geocoder else None,
            )
            return counts
        except _Malformed:
            continue  # read again, row by row
    raise AssertionError("unreachable: the Python reader accepts every row")


def _answered(
    chunks: Iterator[_Chunk], answer: _Answerer, delimiter: str, ahead: bool
) -> Iterator[tuple[_Chunk, _Answers]]:
    """Each chunk with its answers, in order; with ``ahead``, a chunk is answered in a second
    thread while the one before it is written and the next one read.

    Only for files of coordinates: the lookup (shapely, pyproj, the k-d tree) and Arrow's reader
    and writer release the interpreter lock, and the zones are used by that one thread only.
    """
    if not ahead:
        yield from ((chunk, answer(chunk, delimiter)) for chunk in chunks)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="carroyage-locate") as thread:
        pending: deque[tuple[_Chunk, Future[_Answers]]] = deque()
        for chunk in chunks:
            pending.append((chunk, thread.submit(answer, chunk, delimiter)))
            if len(pending) > 1:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def _write_manifest(source: Path, target: Path, zones: ZoneSet, counts: Counter[str], **settings: object) -> None:
    """``TARGET.manifest.json`` beside the annotated file: a CSV has no room for it."""
    from ..manifest import build_manifest, file_record

    sources = sorted(set(zones.fields["source"]))
    record = build_manifest(
        stage="locate-csv",
        inputs={"file": file_record(source), "zones": [file_record(s) for s in sources]},
        counts=dict(counts),
        **settings,
    )
    with atomic_path(target.with_name(target.name + ".manifest.json")) as temporary:
        temporary.write_text(json.dumps(record, ensure_ascii=False, indent=1, default=str), encoding="utf-8")


class _Malformed(Exception):
    """A row with the wrong number of fields: the Arrow reader cannot keep it in place."""


def _header(source: Path) -> tuple[list[str], str]:
    with source.open("rb") as handle:
        first = handle.readline(1 << 20)
    try:
        line = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source} : ligne 1 : " + labels.NOT_UTF8.format(detail=f" ({exc.reason})")) from exc
    if not line.strip():
        raise InputError(labels.EMPTY_FILE.format(path=source, what=labels.HEADER_LINE))
    line = line.splitlines()[0]  # a file with CR line ends is one "line" to readline
    delimiter = sniff_delimiter(line)
    try:
        return next(csv.reader([line], delimiter=delimiter, strict=True)), delimiter
    except csv.Error as exc:
        raise InputError(
            f"{source} : ligne 1 (l'en-tête) : CSV invalide ({exc}) ; attendu des noms de colonnes"
        ) from exc


def _join_header(names: list[str], delimiter: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(names)
    return buffer.getvalue()


def _answer_names(header: list[str]) -> list[str]:
    taken = {h.strip().lower() for h in header}
    return [f"{name}_carroyage" if name in taken else name for name in ANSWER_COLUMNS]


@dataclass
class _ArrowChunk:
    batch: pa.RecordBatch

    @property
    def rows(self) -> int:
        rows: int = self.batch.num_rows
        return rows

    def well_formed(self) -> np.ndarray:
        return np.ones(self.rows, dtype=bool)

    def column(self, index: int) -> pa.Array:
        return self.batch.column(index)

    def malformed_reasons(self, rows: np.ndarray) -> list[str]:
        return []

    def write(self, out: BinaryIO, answers: _Answers, names: list[str], delimiter: str, quoted: bool) -> None:
        """The rows as read, their answers appended; ``quoted``: the file holds a quote somewhere."""
        table = pa.Table.from_batches([self.batch])
        # an unquoted file has no value holding a delimiter, a quote or a line end: nothing to look for
        needs_quotes = answers.quote or (quoted and any(_needs_quotes(column, delimiter) for column in table.columns))
        for name, column in zip(names, answers.table.columns, strict=True):
            table = table.append_column(name, column)
        # Arrow quotes every string when asked to quote "as needed": quote only if some value must be
        style = "needed" if needs_quotes else "none"
        pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style=style))


@dataclass
class _PythonChunk:
    lines: list[list[str]]
    width: int
    unclosed: frozenset[int] = frozenset()  # rows whose line has an unclosed quote

    @property
    def rows(self) -> int:
        return len(self.lines)

    def well_formed(self) -> np.ndarray:
        shaped = np.fromiter((len(row) == self.width for row in self.lines), bool, self.rows)
        shaped[list(self.unclosed)] = False
        return shaped

    def column(self, index: int) -> pa.Array:
        return pa.array([row[index] if len(row) == self.width else "" for row in self.lines], type=pa.string())

    def malformed_reasons(self, rows: np.ndarray) -> list[str]:
        return [
            labels.UNCLOSED_QUOTE
            if i in self.unclosed
            else labels.MALFORMED_LINE.format(fields=len(self.lines[i]), width=self.width)
            for i in np.flatnonzero(rows)
        ]

    def write(self, out: BinaryIO, answers: _Answers, names: list[str], delimiter: str, quoted: bool) -> None:
        text = io.StringIO()
        writer = csv.writer(text, delimiter=delimiter, lineterminator="\n")
        extras = zip(*answers.table.to_pydict().values(), strict=True)
        writer.writerows([*row, *extra] for row, extra in zip(self.lines, extras, strict=True))
        out.write(text.getvalue().encode("utf-8"))


def _arrow_chunks(source: Path, header: list[str], delimiter: str, chunk_rows: int) -> Iterator[_ArrowChunk]:
    names = [f"c{i}" for i in range(len(header))]
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=1 << 22, encoding="utf8"),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),  # a malformed row raises ArrowInvalid
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            yield _ArrowChunk(batch)
    except pa.ArrowInvalid as exc:
        if "utf8" in str(exc).lower():
            raise InputError(f"{source} : " + labels.NOT_UTF8.format(detail="")) from exc
        raise _Malformed() from exc


def _quotes(source: Path) -> tuple[bool, bool]:
    """Whether a row (past the header) holds a quote at all, and whether every physical line
    holds an even number of them (Arrow would read an unclosed quote across the following lines).

    A file whose rows have no quotes (most) is told by one ``memchr`` over its mapped bytes;
    otherwise one vectorised pass over them counts each line's quotes.
    """
    if source.stat().st_size == 0:
        return False, True
    with source.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        header_end = min((i for i in (mapped.find(b"\n"), mapped.find(b"\r")) if i >= 0), default=len(mapped))
        if mapped.find(b'"', header_end) < 0:
            return False, True
    data = np.memmap(source, dtype=np.uint8, mode="r")
    quotes = np.flatnonzero(data == ord('"'))
    line_ends = np.flatnonzero((data == ord("\n")) | (data == ord("\r")))
    per_line = np.bincount(np.searchsorted(line_ends, quotes), minlength=len(line_ends) + 1)
    return True, not (per_line % 2).any()


def _needs_quotes(column: pa.Array | pa.ChunkedArray, delimiter: str) -> bool:
    """Whether a value of a text column holds the delimiter, a quote or a line end."""
    return any(pc.any(pc.match_substring(column, char)).as_py() for char in (delimiter, '"', "\n", "\r"))


def _python_chunks(source: Path, header: list[str], delimiter: str, chunk_rows: int) -> Iterator[_PythonChunk]:
    """Rows read one physical line at a time, so that a broken line never swallows the next ones.

    An unclosed quote makes its own line ``invalid`` and nothing else: a quoted field spanning
    lines is not read as one (beneficiary files hold none; losing or merging rows is worse).
    """
    csv.field_size_limit(1 << 30)  # an overlong field comes back untouched, with an invalid row
    with source.open("r", encoding="utf-8-sig", newline=None) as handle:
        lines: list[list[str]] = []
        unclosed: set[int] = set()
        number = 1
        try:
            next(handle)
            for line in handle:
                number += 1
                text = line.rstrip("\n")
                try:
                    row = next(csv.reader([text], delimiter=delimiter, strict=True), [])
                except csv.Error:
                    row = None
                if row is None or text.count('"') % 2:
                    unclosed.add(len(lines))
                    row = text.split(delimiter)
                lines.append(row)
                if len(lines) == chunk_rows:
                    yield _PythonChunk(lines, len(header), frozenset(unclosed))
                    lines, unclosed = [], set()
        except UnicodeDecodeError as exc:
            raise InputError(f"{source} : ligne {number + 1} : " + labels.NOT_UTF8.format(detail="")) from exc
        if lines:
            yield _PythonChunk(lines, len(header), frozenset(unclosed))


_Chunk = _ArrowChunk | _PythonChunk

ANSWER_STATUS = (*STATUS, "invalid")
"""Each row's status, by code: the lookup's, and ``invalid``."""
INVALID = ANSWER_STATUS.index("invalid")


@dataclass
class _Answers:
    """A chunk's answer columns, each row's status code, and whether a value needs CSV quotes."""

    table: pa.Table
    codes: np.ndarray
    quote: bool


@dataclass
class _Answerer:
    """Turns a chunk of rows into the answer columns."""

    width: int
    columns: Columns
    zones: ZoneSet
    geocoder: Geocoder | None
    tolerance: float
    min_score: float
    streets: StreetZones | None = None
    workers: int = 1
    excel_safe: bool = False

    def __post_init__(self) -> None:
        self.cache: dict[str, Match | None] = {}
        self.pool: Any = None
        # the zones' texts, once: a row's are taken from them (the last entry: no zone)
        self.zone_text = {
            c: self._safe(strings_of([*map(str, self.zones.fields[c]), ""])) for c in ("type", "code", "name")
        }
        self.zone_quotes: dict[str, np.ndarray] = {}

    def close(self) -> None:
        """Stop the geocoding processes, if any were started."""
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None

    def _geocode_texts(self, texts: list[str]) -> list[Match | None]:
        """Geocode distinct texts: in one vectorised call, or shared among worker processes."""
        many = getattr(self.geocoder, "geocode_many", None)
        if many is None:
            return [cast(Geocoder, self.geocoder).geocode(t) for t in texts]
        workers = self.workers or (os.cpu_count() or 1)
        if workers > 1 and len(texts) >= 2_000 and "fork" in multiprocessing.get_all_start_methods():
            if self.pool is None:
                global _WORKER_GEOCODER
                _WORKER_GEOCODER = self.geocoder  # inherited by the forked workers: no copy, no reload
                self.pool = multiprocessing.get_context("fork").Pool(workers)
            size = -(-len(texts) // (4 * workers))
            parts = [texts[i : i + size] for i in range(0, len(texts), size)]
            return [m for part in self.pool.map(_geocode_part, parts) for m in part]
        found: list[Match | None] = many(texts)
        return found

    def __call__(self, chunk: _ArrowChunk | _PythonChunk, delimiter: str) -> _Answers:
        lon, lat, label, score, reason = self._positions(chunk)
        located = self.zones.locate(lon, lat, self.tolerance)
        codes = located.status_codes()
        codes[reason != ""] = INVALID
        kind, found_id, partly = self._refine(codes, reason)
        weak = (codes != INVALID) & (score < self.min_score)
        codes[weak] = ANSWER_STATUS.index("uncertain")
        reason[weak] = [labels.WEAK_GEOCODING.format(score=s) for s in score[weak]]
        zone, distance = located.main_zone()
        far = np.flatnonzero((zone < 0) & (codes != INVALID) & np.isfinite(lon))
        if len(far):  # out rows: the nearest zone and its distance
            zone[far], distance[far] = located.nearest(far)
        matched = np.fromiter(self.matches, dtype=np.int64, count=len(self.matches))
        texts = {
            **self._zone_columns(zone, delimiter),
            "geocode_label": self._text(label, matched, delimiter),
            "geocode_type": self._text(kind, matched, delimiter),
            "geocode_id": self._text(found_id, matched, delimiter),
            "street_partly_in": self._text(partly, matched, delimiter),
            "reason": self._text(reason, np.flatnonzero(reason != ""), delimiter),
        }
        numbers = {
            "status": strings_of(ANSWER_STATUS).take(arrow_of(codes)),
            "distance_m": _decimal_text(distance, 1),
            "geocode_score": _decimal_text(score, 3),
        }
        columns = {name: numbers[name] if name in numbers else texts[name][0] for name in ANSWER_COLUMNS}
        return _Answers(pa.table(columns), codes, any(needs for _, needs in texts.values()))

    def _positions(
        self, chunk: _ArrowChunk | _PythonChunk
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each row's position (read, or geocoded), geocoding label and score, and the reason
        it is invalid (``""``: none)."""
        n = chunk.rows
        well_formed = chunk.well_formed()
        reason = np.full(n, "", dtype=object)
        reason[~well_formed] = chunk.malformed_reasons(~well_formed)
        lon, lat = np.full(n, np.nan), np.full(n, np.nan)
        label, score = np.full(n, "", dtype=object), np.full(n, np.nan)
        self.matches: dict[int, Match] = {}
        if self.columns.lon is not None:
            assert self.columns.lat is not None  # find_columns finds both or neither
            lon, lat, bad = _coordinates(chunk.column(self.columns.lon), chunk.column(self.columns.lat))
            bad &= well_formed
            reason[bad] = labels.BAD_POSITION
        if self.columns.address:
            todo = well_formed & ~np.isfinite(lon)
            texts = [chunk.column(c).to_pylist() for c in self.columns.address]
            self._geocode(texts, todo, lon, lat, label, score, reason)
        return lon, lat, label, score, reason

    def _refine(self, codes: np.ndarray, reason: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each geocoded row's status knowing how it was geocoded, its geocoding type, id and
        whether its street crosses a boundary."""
        n = len(codes)
        kind, found_id, partly = (np.full(n, "", dtype=object) for _ in range(3))
        for i, match in self.matches.items():
            if codes[i] == INVALID:
                continue
            status, reason[i] = refine(ANSWER_STATUS[codes[i]], str(reason[i]), match, self.streets, self.zones)
            codes[i] = ANSWER_STATUS.index(status)
            kind[i], found_id[i] = match.kind, match.id
            state = self.streets.partly_in(match) if self.streets is not None else None
            partly[i] = "" if state is None else ("true" if state else "false")
        return kind, found_id, partly

    def _zone_columns(self, zone: np.ndarray, delimiter: str) -> dict[str, tuple[pa.Array, bool]]:
        """``zone_type``, ``zone_code``, ``zone_name`` of each row's zone (-1: none, empty)."""
        if delimiter not in self.zone_quotes:
            self.zone_quotes[delimiter] = np.any(
                [_quote_mask(self.zone_text[c], delimiter) for c in self.zone_text], axis=0
            )
        picked = np.where(zone < 0, self.zones.zone_count, zone)
        quote = bool(self.zone_quotes[delimiter][picked].any())
        return {f"zone_{c}": (text.take(arrow_of(picked)), quote) for c, text in self.zone_text.items()}

    def _text(self, values: np.ndarray, rows: np.ndarray, delimiter: str) -> tuple[pa.Array, bool]:
        """A text column empty but at ``rows`` (only those values are converted), and whether
        one of them needs quotes."""
        if not len(rows):  # the usual case of a file of coordinates: no text to convert or copy
            offsets = pa.py_buffer(np.zeros(len(values) + 1, dtype=np.int32))
            return pa.Array.from_buffers(pa.string(), len(values), [None, offsets, pa.py_buffer(b"")]), False
        given = self._safe(strings_of([*map(str, values[rows]), ""]))
        index = np.full(len(values), len(rows), dtype=np.int64)
        index[rows] = np.arange(len(rows))
        return given.take(arrow_of(index)), bool(_quote_mask(given, delimiter).any())

    def _safe(self, text: pa.Array) -> pa.Array:
        """With ``excel_safe``, a leading ``'`` on each value a spreadsheet would take for a formula."""
        if not self.excel_safe:
            return text
        formula = pc.match_substring_regex(text, FORMULA_START)
        return pc.if_else(formula, pc.binary_join_element_wise(string_scalar("'"), text, string_scalar("")), text)

    def _geocode(
        self,
        texts: list[list[Any]],
        todo: np.ndarray,
        lon: np.ndarray,
        lat: np.ndarray,
        label: np.ndarray,
        score: np.ndarray,
        reason: np.ndarray,
    ) -> None:
        rows: list[tuple[int, str]] = []
        for i in np.flatnonzero(todo):
            text = " ".join(part[i].strip() for part in texts if part[i] and part[i].strip())
            if not text:
                reason[i] = labels.NO_POSITION_NOR_ADDRESS if reason[i] else labels.EMPTY_ADDRESS
            elif too_long(text):
                reason[i] = labels.ADDRESS_TOO_LONG.format(limit=MAX_ADDRESS_CHARS)
            else:
                rows.append((int(i), text))
        if self.geocoder is None:
            return  # a file with coordinates and addresses, no geocoder given: left as it was
        if len(self.cache) >= 200_000:
            self.cache.clear()
        missing = list(dict.fromkeys(text for _, text in rows if text not in self.cache))
        self.cache.update(zip(missing, self._geocode_texts(missing), strict=True))  # one call per distinct text
        for row, text in rows:
            match = self.cache[text]
            if match is None:
                reason[row] = labels.ADDRESS_NOT_FOUND
                continue
            lon[row], lat[row], label[row], score[row], reason[row] = (
                match.lon,
                match.lat,
                match.label,
                match.score,
                "",
            )
            self.matches[row] = match


_WORKER_GEOCODER: Any = None


def _geocode_part(texts: list[str]) -> list[Match | None]:
    """In a forked worker: geocode with the geocoder inherited from the parent."""
    found: list[Match | None] = _WORKER_GEOCODER.geocode_many(texts)
    return found


def _coordinates(lon_text: pa.Array, lat_text: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decimal degrees (a decimal comma is accepted); ``bad`` marks what is not a valid position."""
    lon, lat = (_decimals(text) for text in (lon_text, lat_text))
    bad = ~((np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    lon[bad], lat[bad] = np.nan, np.nan
    return lon, lat, bad


def _quote_mask(text: pa.Array, delimiter: str) -> np.ndarray:
    """Which values of a text column hold the delimiter, a quote or a line end."""
    found = [pc.match_substring(text, char) for char in (delimiter, '"', "\n", "\r")]
    return np.asarray(np.any([numpy_of(f) for f in found], axis=0))


def _decimals(text: pa.Array) -> np.ndarray:
    """:func:`carroyage.files.parse_decimals`, its usual case (every value a plain number) without pandas."""
    try:
        return numpy_of(pc.cast(text, pa.float64()))
    except pa.ArrowInvalid:  # decimal commas, garbage: the general reader
        return parse_decimals(text)


def _decimal_text(values: np.ndarray, digits: int) -> pa.Array:
    """``f"{v:.{digits}f}"`` of each finite value, ``""`` for the others, built by Arrow.

    The rounding is Python's (half to even on the exact value): the scaled value is rounded by
    numpy, and the few whose scaling may have crossed a half are formatted by Python.

    >>> _decimal_text(np.array([-121.25, 0.35, np.nan, -0.04, 1234.96]), 1).to_pylist()
    ['-121.2', '0.3', '', '-0.0', '1235.0']
    """
    finite = np.flatnonzero(np.isfinite(values))
    value = values[finite]
    scaled = np.abs(value) * 10**digits
    whole = np.rint(scaled).astype(np.int64)
    units, decimals = np.divmod(whole, 10**digits)
    minus, nothing = string_scalar("-"), string_scalar("")
    text = pc.binary_join_element_wise(
        pc.if_else(arrow_of(np.signbit(value)), minus, nothing), pc.cast(arrow_of(units), pa.string()), nothing
    )
    if digits:
        fraction = pc.utf8_lpad(pc.cast(arrow_of(decimals), pa.string()), digits, "0")
        text = pc.binary_join_element_wise(text, fraction, string_scalar("."))
    near_half = np.abs(scaled - np.floor(scaled) - 0.5) <= 4 * np.spacing(scaled)
    if near_half.any():
        exact = text.to_pylist()
        for i in np.flatnonzero(near_half):
            exact[i] = f"{value[i]:.{digits}f}"
        text = strings_of(exact)
    index = np.full(len(values), len(finite), dtype=np.int64)
    index[finite] = np.arange(len(finite))
    return pa.concat_arrays([text, strings_of([""])]).take(arrow_of(index))

"""The address check: ``locate``, ``locate-csv`` and ``serve``.

Nothing here imports the delimitation engine: a planner's check starts in a fraction of a second.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import InputError
from ..settings import HOST, MAX_UPLOAD_MB, MIN_SCORE, PORT, TOLERANCE_M, WORKERS
from .options import Addok, Ban, Candidates, MinScore, Quiet, Tolerance, Workers, Zones, app, written

if TYPE_CHECKING:
    from ..address.check import Checker


def _checker(
    zones: list[Path] | None, ban: Path | None, addok: str | None, tolerance: float, min_score: float
) -> Checker:
    from ..address.check import make_checker

    checker = make_checker(zones, ban, addok, tolerance, min_score)
    if checker.zones.dropped:
        dropped = checker.zones.dropped
        typer.echo(f"note: {len(dropped)} zone(s) without area left out: {', '.join(dropped)}", err=True)
    return checker


@app.command()
def locate(
    address: Annotated[str | None, typer.Argument(help='A postal address, e.g. "8 bd du Port, Amiens".')] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude (WGS84), with --lat, instead of an address.")] = None,
    lat: Annotated[float | None, typer.Option(help="Latitude (WGS84).")] = None,
    zones: Zones = None,
    ban: Ban = None,
    addok: Addok = None,
    tolerance: Tolerance = TOLERANCE_M,
    min_score: MinScore = MIN_SCORE,
    as_json: Annotated[bool, typer.Option("--json", help="Answer as JSON.")] = False,
    candidates: Candidates = 1,
) -> None:
    """Is this address (or position) in a QPV, a quartier vécu or a veille-active zone?"""
    import json

    from ..address.query import validate_query

    validate_query(address, lon, lat, geocoder=ban or addok)  # before the zones are loaded
    from ..address.check import format_answer

    answer = _checker(zones, ban, addok, tolerance, min_score).check(address, lon, lat, candidates=candidates)
    typer.echo(json.dumps(answer, ensure_ascii=False, indent=1) if as_json else format_answer(answer))


@app.command(name="locate-csv")
def locate_csv(
    source: Annotated[Path, typer.Argument(help="CSV file (UTF-8, ',' or ';') with lon/lat or address columns.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Annotated CSV to write.")],
    address_cols: Annotated[
        str | None, typer.Option(help="Comma-separated columns that make the address (default: adresse/address).")
    ] = None,
    lon_col: Annotated[str | None, typer.Option(help="Longitude column (default: lon/longitude).")] = None,
    lat_col: Annotated[str | None, typer.Option(help="Latitude column (default: lat/latitude).")] = None,
    zones: Zones = None,
    ban: Ban = None,
    addok: Addok = None,
    tolerance: Tolerance = TOLERANCE_M,
    min_score: MinScore = MIN_SCORE,
    workers: Workers = 0,
    quiet: Quiet = False,
    excel_safe: Annotated[
        bool,
        typer.Option(
            "--excel-safe",
            help="Prefix with ' the appended cells a spreadsheet would run as a formula (=, +, -, @...); "
            "the file's own cells stay as they are.",
        ),
    ] = False,
) -> None:
    """Annotate every row of a file with its zone: status, code, name, distance, geocoding."""
    from ..address.batch import locate_csv as run_batch

    if not source.is_file():  # before the zones are loaded
        raise InputError(f"{source}: no such file")
    checker = _checker(zones, ban, addok, tolerance, min_score)
    start = time.perf_counter()

    def progress(rows: int) -> None:
        if not quiet:
            typer.echo(f"  [{time.perf_counter() - start:6.1f} s] {rows:,} rows", err=True)

    counts = run_batch(
        source,
        out,
        checker.zones,
        checker.geocoder,
        address_cols=[c.strip() for c in address_cols.split(",")] if address_cols else None,
        lon_col=lon_col,
        lat_col=lat_col,
        tolerance=tolerance,
        min_score=min_score,
        progress=progress,
        workers=workers,
        excel_safe=excel_safe,
    )
    total = sum(counts.values())
    statuses = ("in", "uncertain", "out", "invalid")
    typer.echo(f"{total:,} rows: " + ", ".join(f"{status} {counts.get(status, 0):,}" for status in statuses))
    written(out)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = HOST,
    port: Annotated[int, typer.Option(help="Port.")] = PORT,
    zones: Zones = None,
    ban: Ban = None,
    addok: Addok = None,
    tolerance: Tolerance = TOLERANCE_M,
    min_score: MinScore = MIN_SCORE,
    max_upload_mb: Annotated[float, typer.Option(help="Largest CSV upload accepted (MB).")] = MAX_UPLOAD_MB,
    workers: Workers = WORKERS,
) -> None:
    """Serve the address page (/), the API (/api/locate, /api/locate-csv, /openapi.json) and
    addok's (/search, /reverse, /search/csv); slow or greedy clients are cut off (README, "Address check")."""
    import os

    from ..address.server import ServeSettings, run

    settings = ServeSettings(
        [str(z) for z in zones or []], str(ban) if ban else None, addok, tolerance, min_score, int(max_upload_mb * 1e6)
    )
    checker = _checker(zones, ban, addok, tolerance, min_score)  # builds and caches the BAN index once
    run(checker, settings, host, port, workers or (os.cpu_count() or 1))

"""The address check: ``locate``, ``locate-csv`` and ``serve``.

Nothing here imports the delimitation engine: a planner's check starts in a fraction of a second.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .. import labels
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
        typer.echo(labels.NOTE + labels.DROPPED_ZONES.format(count=len(dropped), zones=", ".join(dropped)), err=True)
    return checker


@app.command()
def locate(
    address: Annotated[str | None, typer.Argument(help='Une adresse postale, par ex. "8 bd du Port, Amiens".')] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude (WGS84), avec --lat, à la place d'une adresse.")] = None,
    lat: Annotated[float | None, typer.Option(help="Latitude (WGS84).")] = None,
    zones: Zones = None,
    ban: Ban = None,
    addok: Addok = None,
    tolerance: Tolerance = TOLERANCE_M,
    min_score: MinScore = MIN_SCORE,
    as_json: Annotated[bool, typer.Option("--json", help="Réponse en JSON.")] = False,
    candidates: Candidates = 1,
) -> None:
    """Dire si une adresse est dans une zone.

    Une adresse (ou une position) est-elle dans un QPV, un quartier vécu ou une zone de veille
    active ? Réponse : DANS la zone, HORS zone ou INCERTAIN (près d'une limite, ou géocodage
    incertain), avec la distance aux limites des zones.
    """
    import json

    from ..address.query import validate_query

    validate_query(address, lon, lat, geocoder=ban or addok)  # before the zones are loaded
    from ..address.check import format_answer

    answer = _checker(zones, ban, addok, tolerance, min_score).check(address, lon, lat, candidates=candidates)
    typer.echo(json.dumps(answer, ensure_ascii=False, indent=1) if as_json else format_answer(answer))


@app.command(name="locate-csv")
def locate_csv(
    source: Annotated[
        Path, typer.Argument(help="Fichier CSV (UTF-8, séparateur , ou ;) avec des colonnes lon/lat ou une adresse.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV annoté à écrire.")],
    address_cols: Annotated[
        str | None,
        typer.Option(help="Colonnes qui forment l'adresse, séparées par des virgules (par défaut : adresse/address)."),
    ] = None,
    lon_col: Annotated[str | None, typer.Option(help="Colonne de longitude (par défaut : lon/longitude).")] = None,
    lat_col: Annotated[str | None, typer.Option(help="Colonne de latitude (par défaut : lat/latitude).")] = None,
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
            help="Préfixer d'une ' les cellules ajoutées qu'un tableur lirait comme une formule (=, +, -, @...) ; "
            "les cellules du fichier restent telles quelles.",
        ),
    ] = False,
) -> None:
    """Annoter chaque ligne d'un fichier de sa zone.

    Colonnes ajoutées : statut (status), zone (zone_type, zone_code, zone_name), distance à la
    limite (distance_m), géocodage (geocode_label, geocode_score...) et motif (reason).
    """
    from ..address.batch import locate_csv as run_batch

    if not source.is_file():  # before the zones are loaded
        raise InputError(labels.NO_SUCH_FILE.format(path=source))
    checker = _checker(zones, ban, addok, tolerance, min_score)
    start = time.perf_counter()

    def progress(rows: int) -> None:
        if not quiet:
            seconds = labels.decimal(time.perf_counter() - start, 1).rjust(6)
            typer.echo(labels.STAGE.format(seconds=seconds, message=labels.lines(rows)), err=True)

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
    statuses = ("in", "uncertain", "out", "invalid")
    shares = ", ".join(f"{labels.STATUS_SHORT[s]} {labels.integer(counts.get(s, 0))}" for s in statuses)
    typer.echo(labels.ROWS_SUMMARY.format(rows=labels.lines(sum(counts.values())), counts=shares))
    written(out)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Adresse d'écoute.")] = HOST,
    port: Annotated[int, typer.Option(help="Port.")] = PORT,
    zones: Zones = None,
    ban: Ban = None,
    addok: Addok = None,
    tolerance: Tolerance = TOLERANCE_M,
    min_score: MinScore = MIN_SCORE,
    max_upload_mb: Annotated[float, typer.Option(help="Plus gros fichier CSV accepté en envoi (Mo).")] = MAX_UPLOAD_MB,
    workers: Workers = WORKERS,
) -> None:
    """Servir la page d'adresses et son API.

    La page (/), l'API (/api/locate, /api/locate-csv, /openapi.json) et celle d'addok (/search,
    /reverse, /search/csv) ; les clients lents ou trop gourmands sont coupés (README, section
    Address check).
    """
    import os

    from ..address.server import ServeSettings, run

    settings = ServeSettings(
        [str(z) for z in zones or []], str(ban) if ban else None, addok, tolerance, min_score, int(max_upload_mb * 1e6)
    )
    checker = _checker(zones, ban, addok, tolerance, min_score)  # builds and caches the BAN index once
    run(checker, settings, host, port, workers or (os.cpu_count() or 1))

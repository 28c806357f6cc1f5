"""The address page and its API (FastAPI).

* ``GET /``: a French page with an address form and a map of the answer; Leaflet is inlined from
  the package's copy, so the page works on an intranet with no access to a CDN.
* ``GET /api/locate?adresse=`` or ``?lon=&lat=`` (``&tolerance=``): the JSON answer of
  ``carroyage locate --json``.
* ``GET /api/zones?lon=&lat=``: the zones around a point (GeoJSON), for the map.
* ``POST /api/locate-csv``: an uploaded CSV file comes back annotated; uploads larger than the
  limit (50 MB by default) get HTTP 413.
* ``GET /search?q=&limit=&postcode=&citycode=``, ``GET /reverse?lon=&lat=``, ``POST /search/csv``
  (``data``, ``columns``, ``postcode``, ``citycode``): addok's API and response shape (GeoJSON
  FeatureCollection; addok-csv's ``result_*`` columns), so that tools written for addok or the
  national address API work against it.
* ``GET /openapi.json``: the OpenAPI description.

``carroyage serve --workers N`` runs N processes: the BAN index is built once and cached on disk
next to the BAN file by the parent; each worker then builds its app from the same settings
(:func:`app_from_environment`, a uvicorn factory) and loads that cached index.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..assets import leaflet_assets
from ..errors import AddressNotFound, CarroyageError, GeocodingError, InputError
from ..settings import AROUND_RADIUS_M, CANDIDATES, MAX_UPLOAD_MB, MIN_SCORE, TOLERANCE_M
from .check import Checker
from .geocode import Match

UPLOAD_PATH = "/api/locate-csv"
UPLOAD_PATHS = (UPLOAD_PATH, "/search/csv")
SETTINGS_VARIABLE = "CARROYAGE_SERVE_SETTINGS"
ATTRIBUTION, LICENCE = "BAN", "ETALAB-2.0"
CSV_HEADERS = [
    "latitude",
    "longitude",
    "result_label",
    "result_score",
    "result_score_next",
    "result_type",
    "result_id",
    "result_housenumber",
    "result_name",
    "result_street",
    "result_postcode",
    "result_city",
    "result_context",
    "result_citycode",
    "result_oldcitycode",
    "result_oldcity",
    "result_district",
]
"""The columns addok-csv (with addok-france's fields) appends to every row of ``/search/csv``."""


@dataclass(frozen=True)
class ServeSettings:
    """What ``carroyage serve`` was started with, passed to worker processes as JSON."""

    zones: list[str]
    ban: str | None
    addok: str | None
    tolerance: float = TOLERANCE_M
    min_score: float = MIN_SCORE
    max_upload_bytes: int = int(MAX_UPLOAD_MB * 1e6)

    def to_json(self) -> str:
        """The settings as one JSON line.

        >>> ServeSettings.from_json(ServeSettings([], "b.csv", None).to_json()).ban
        'b.csv'
        """
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        """The settings back from :meth:`to_json`."""
        return cls(**json.loads(text))


def app_from_environment() -> UploadLimit:
    """The app of one worker process, from the settings its parent put in the environment."""
    from .check import make_checker

    settings = ServeSettings.from_json(os.environ[SETTINGS_VARIABLE])
    checker = make_checker(settings.zones or None, settings.ban, settings.addok, settings.tolerance, settings.min_score)
    return create_app(checker, settings.max_upload_bytes)


class UploadLimit:
    """Refuse request bodies over ``limit`` bytes on the upload path with HTTP 413, early.

    A declared ``Content-Length`` is checked before anything is read; a chunked body is counted
    as it arrives.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in UPLOAD_PATHS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"fichier trop volumineux : {self.limit / 1e6:g} Mo au plus"}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def create_app(checker: Checker, max_upload_bytes: int = int(MAX_UPLOAD_MB * 1e6)) -> UploadLimit:
    """The web application for one set of zones and one geocoder."""
    app = FastAPI(
        title="carroyage — adresses et géographie prioritaire",
        description="Is an address in a QPV, a quartier vécu or a veille-active zone?",
        version="1",
        docs_url=None,  # the interactive docs load their assets from a CDN: the page must not
        redoc_url=None,
    )
    page = _page()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return page

    # FastAPI reads a return annotation as the response model: the OpenAPI schema (a JSON object) is given here
    # instead, and the handler is annotated with what it really returns
    @app.get("/api/locate", response_model=dict)
    async def locate(
        adresse: str | None = Query(None, description="Adresse postale"),
        lon: float | None = Query(None, description="Longitude (WGS84)"),
        lat: float | None = Query(None, description="Latitude (WGS84)"),
        tolerance: float | None = Query(None, ge=0, le=1000, description="Tolérance en mètres"),
    ) -> JSONResponse:
        """The answer for one address or position: status, zones, distances, geocoding."""
        try:
            if adresse:  # geocoding may take a while: off the event loop
                return JSONResponse(await run_in_threadpool(checker.check, adresse, lon, lat, tolerance))
            return JSONResponse(checker.check(None, lon, lat, tolerance))  # a millisecond: answered inline
        except AddressNotFound as exc:
            raise HTTPException(404, f"adresse introuvable : {adresse}") from exc
        except GeocodingError as exc:
            raise HTTPException(502, str(exc)) from exc
        except InputError as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.get("/api/zones")
    def zones(lon: float, lat: float, radius: float = Query(AROUND_RADIUS_M, ge=0, le=20_000)) -> JSONResponse:
        """Zones around a point, as GeoJSON (WGS84)."""
        return JSONResponse(checker.zones.around(lon, lat, radius))

    @app.post(UPLOAD_PATH, response_class=FileResponse)
    def locate_csv(file: UploadFile = File(..., description="CSV (UTF-8) avec lon/lat ou adresse")) -> FileResponse:
        """The uploaded file, every row annotated (status, zone, distance, geocoding)."""
        from .batch import locate_csv as run_batch

        folder = Path(tempfile.mkdtemp(prefix="carroyage-"))
        source, target = folder / "entree.csv", folder / "resultat.csv"
        with source.open("wb") as handle:
            while block := file.file.read(1 << 20):
                handle.write(block)
        try:
            counts = run_batch(
                source,
                target,
                checker.zones,
                checker.geocoder,
                tolerance=checker.tolerance,
                min_score=checker.min_score,
            )
        except BaseException as exc:
            _remove(folder)  # whatever went wrong, no upload is left behind
            if isinstance(exc, CarroyageError):
                raise HTTPException(400, str(exc).replace(str(source), file.filename or "fichier")) from exc
            raise
        name = Path(file.filename or "adresses.csv").stem + "_qpv.csv"
        return FileResponse(
            target,
            media_type="text/csv",
            filename=name,
            headers={"X-Carroyage-Summary": json.dumps(dict(counts))},
            background=BackgroundTask(_remove, folder),
        )

    _addok_endpoints(app, checker)
    return UploadLimit(app, max_upload_bytes)


def _addok_endpoints(app: FastAPI, checker: Checker) -> None:
    """``/search``, ``/reverse`` and ``/search/csv`` as addok (+ addok-france, addok-csv) answer them."""

    def geocoder_or_400() -> Any:
        if checker.geocoder is None:
            raise HTTPException(400, "geocoding needs a BAN file (--ban) or an addok server (--addok)")
        return checker.geocoder

    @app.get("/search", response_model=dict)
    @app.get("/search/", response_model=dict, include_in_schema=False)
    def search(
        q: str | None = Query(None, description="Adresse recherchée"),
        limit: int = Query(CANDIDATES, description="Nombre de résultats (1 à 100)"),
        postcode: str | None = Query(None, description="Filtre : code postal"),
        citycode: str | None = Query(None, description="Filtre : code INSEE de la commune"),
    ) -> JSONResponse:
        """Scored candidates as a GeoJSON FeatureCollection, like addok's ``/search``."""
        if not q or not q.strip():
            raise HTTPException(400, "missing parameter: q")
        if not 1 <= limit <= 100:
            raise HTTPException(400, "limit: out of range (1..100)")
        geocoder_or_400()
        try:
            found = checker.candidates(q, limit, postcode or "", citycode or "")
        except InputError as exc:
            raise HTTPException(413, str(exc)) from exc
        except GeocodingError as exc:
            raise HTTPException(502, str(exc)) from exc
        filters = {k: [v] for k, v in (("postcode", postcode), ("citycode", citycode)) if v}
        return JSONResponse(_collection(found, query=q, filters=filters, limit=limit))

    @app.get("/reverse", response_model=dict)
    @app.get("/reverse/", response_model=dict, include_in_schema=False)
    def reverse(
        lon: float | None = Query(None, ge=-180, le=180),
        lat: float | None = Query(None, ge=-90, le=90),
        limit: int = Query(1, ge=1, le=100),
    ) -> JSONResponse:
        """The nearest addresses to a point, like addok's ``/reverse``."""
        if lon is None or lat is None:
            raise HTTPException(400, f"missing parameter: {'lon' if lon is None else 'lat'}")
        geocoder = geocoder_or_400()
        if not hasattr(geocoder, "reverse"):
            raise HTTPException(501, "reverse geocoding needs a BAN file (--ban)")
        return JSONResponse(_collection(geocoder.reverse(lon, lat, limit), limit=limit, distance=(lon, lat)))

    @app.post("/search/csv", response_class=Response)
    @app.post("/search/csv/", response_class=Response, include_in_schema=False)
    async def search_csv(request: Request) -> Response:
        """A CSV file (multipart ``data``) back with addok-csv's ``result_*`` columns on every row.

        ``columns`` (repeated) names the columns that make the address (default: all of them);
        ``postcode`` and ``citycode`` name the columns holding those filters.
        """
        geocoder_or_400()
        form = await request.form()
        upload = form.get("data")
        if upload is None or isinstance(upload, str):
            raise HTTPException(400, "Missing file")
        raw = await upload.read()
        options = {key: [str(v) for v in form.getlist(key)] for key in ("columns", "postcode", "citycode", "delimiter")}
        min_score = float(str(form.get("min_score") or 0.5))
        body = await run_in_threadpool(_search_csv, checker, raw, options, min_score)
        stem = Path(getattr(upload, "filename", None) or "adresses.csv").stem
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{stem}.geocoded.csv"'},
        )


def _search_csv(checker: Checker, raw: bytes, options: dict[str, list[str]], min_score: float) -> bytes:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, 'Unable to decode with encoding "utf-8-sig"') from exc
    if not text.strip():
        raise HTTPException(400, "Empty file")
    first = text.splitlines()[0]
    delimiter = (options["delimiter"] or [""])[0] or max(";,\t|", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    rows = [row + [""] * (len(header) - len(row)) for row in reader]
    index = {name: i for i, name in enumerate(header)}
    columns = [c for value in options["columns"] for c in value.split(",") if c] or header
    for name in [*columns, *options["postcode"], *options["citycode"]]:
        if name not in index:
            raise HTTPException(400, f"Cannot found column '{name}' in columns {header}")
    queries = [" ".join(row[index[c]] for c in columns if row[index[c]]) for row in rows]
    postcodes = [row[index[options["postcode"][0]]] for row in rows] if options["postcode"] else None
    citycodes = [row[index[options["citycode"][0]]] for row in rows] if options["citycode"] else None
    search_many = getattr(checker.geocoder, "search_many", None)
    if search_many is not None:
        found: list[list[Match]] = search_many(queries, 2, postcodes, citycodes)
    else:
        found = [checker.candidates(q, 2) if q else [] for q in queries]
    names = header + [h for h in CSV_HEADERS if h not in index]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(names)
    for row, matches in zip(rows, found, strict=True):
        values: dict[str, Any] = dict(zip(header, row, strict=False))
        if matches and round(matches[0].score, 2) > min_score:
            best = matches[0]
            values.update(
                {
                    "latitude": best.lat,
                    "longitude": best.lon,
                    "result_label": best.label,
                    "result_score": round(best.score, 2),
                    "result_score_next": round(matches[1].score, 2) if len(matches) > 1 else 0,
                    "result_type": best.kind,
                    "result_id": best.id,
                    "result_housenumber": best.housenumber,
                    "result_name": best.street or best.name,  # addok-csv: the street, not "8 Rue..."
                    "result_street": best.street,
                    "result_postcode": best.postcode,
                    "result_city": best.city,
                    "result_context": best.context,
                    "result_citycode": best.citycode,
                    "result_oldcity": best.oldcity,
                }
            )
        writer.writerow([values.get(name, "") for name in names])
    return out.getvalue().encode("utf-8")


def _collection(
    matches: list[Match],
    query: str | None = None,
    filters: dict[str, list[str]] | None = None,
    limit: int | None = None,
    distance: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Matches as addok renders them: a GeoJSON FeatureCollection with addok-france's properties."""
    collection: dict[str, Any] = {
        "type": "FeatureCollection",
        "version": "draft",
        "features": [_feature(m, distance) for m in matches],
        "attribution": ATTRIBUTION,
        "licence": LICENCE,
    }
    if query:
        collection["query"] = query
    if filters:
        collection["filters"] = filters
    if limit:
        collection["limit"] = limit
    return collection


def _feature(match: Match, reference: tuple[float, float] | None = None) -> dict[str, Any]:
    x, y = match.x, match.y
    if not (math.isfinite(x) and math.isfinite(y)):
        x, y = _lambert93(match.lon, match.lat)
    properties: dict[str, Any] = {
        "label": match.label,
        "score": match.score,
        "id": match.id,
        "type": match.kind,
        "name": match.name,
        "postcode": match.postcode,
        "citycode": match.citycode,
        "x": round(x, 2),
        "y": round(y, 2),
        "city": match.city,
        "context": match.context,
        "importance": match.importance,
    }
    if match.housenumber:
        properties["housenumber"] = match.housenumber
    if match.street:
        properties["street"] = match.street
    if match.oldcity:
        properties["oldcity"] = match.oldcity
    if reference is not None:
        scale = math.cos(math.radians(reference[1]))
        metres = math.hypot((match.lon - reference[0]) * scale, match.lat - reference[1]) * 111_320
        properties["distance"] = int(round(metres))
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [match.lon, match.lat]},
        "properties": properties,
    }


def _lambert93(lon: float, lat: float) -> tuple[float, float]:
    import pyproj

    x, y = pyproj.Transformer.from_crs(4326, 2154, always_xy=True).transform(lon, lat)
    return float(x), float(y)


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _page() -> str:
    """The page template (``page.html`` beside this module), DSFR, Leaflet and French labels inlined.

    One self-contained HTML string: the DSFR's style sheets with the Marianne fonts and icons as
    data URIs, Leaflet, and the labels of :mod:`carroyage.labels` the script shows.
    """
    from .. import labels
    from ..assets import dsfr_css

    script, css = leaflet_assets()
    words = {
        "statuts": labels.STATUS_SHORT,
        "types": {"quartier_vecu": "Quartier vécu", "veille_active": "Veille active"},
        "officiel": "QPV officiel",
        "candidat": "Quartier candidat (calculé)",
    }
    template = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    return (
        template.replace("/*DSFR_CSS*/", dsfr_css())
        .replace("/*LEAFLET_CSS*/", css)
        .replace("/*LABELS*/{}", json.dumps(words, ensure_ascii=False).replace("</", "<\\/"))
        .replace("/*LEAFLET_JS*/", script)
    )

"""The address page and its API (FastAPI).

* ``GET /``: a French page with an address form and a map of the answer; Leaflet is inlined from
  the package's copy, so the page works on an intranet with no access to a CDN.
* ``GET /api/locate?adresse=`` or ``?lon=&lat=`` (``&tolerance=``): the JSON answer of
  ``carroyage locate --json``.
* ``GET /api/zones?lon=&lat=``: the zones around a point (GeoJSON), for the map.
* ``POST /api/locate-csv``: an uploaded CSV file comes back annotated; uploads larger than the
  limit (50 MB by default) get HTTP 413.
* ``GET /openapi.json``: the OpenAPI description.
"""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..assets import leaflet_assets
from ..errors import AddressNotFound, CarroyageError, GeocodingError, InputError
from ..settings import AROUND_RADIUS_M, MAX_UPLOAD_MB
from .check import Checker

UPLOAD_PATH = "/api/locate-csv"


class UploadLimit:
    """Refuse request bodies over ``limit`` bytes on the upload path with HTTP 413, early.

    A declared ``Content-Length`` is checked before anything is read; a chunked body is counted
    as it arrives.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != UPLOAD_PATH:
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

    return UploadLimit(app, max_upload_bytes)


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _page() -> str:
    """The page template (``page.html`` beside this module) with Leaflet inlined."""
    script, css = leaflet_assets()
    template = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    return template.replace("/*LEAFLET_CSS*/", css).replace("/*LEAFLET_JS*/", script)

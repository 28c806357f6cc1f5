"""The address page and its API (FastAPI), and the server that runs them (uvicorn).

* ``GET /``: a French page with an address form and a map of the answer; Leaflet and the DSFR are
  inlined from the package's copies, so the page works on an intranet with no access to a CDN.
* ``GET /api/locate?adresse=`` or ``?lon=&lat=`` (``&tolerance=``): the JSON answer of
  ``carroyage locate --json``.
* ``GET /api/zones?lon=&lat=``: the zones around a point (GeoJSON), for the map.
* ``POST /api/locate-csv``: an uploaded CSV file (multipart ``file``) comes back annotated;
  ``excel_safe=true`` prefixes with ``'`` the appended cells a spreadsheet would run as a formula
  (``locate-csv --excel-safe``; the page's checkbox).
* ``GET /search?q=&limit=&postcode=&citycode=``, ``GET /reverse?lon=&lat=``, ``POST /search/csv``
  (``data``, ``columns``, ``postcode``, ``citycode``): addok's API and response shape (GeoJSON
  FeatureCollection; addok-csv's ``result_*`` columns), so that tools written for addok or the
  national address API work against it.
* ``GET /openapi.json``: the OpenAPI description.

What any client may take of the service is bounded (defaults in :mod:`carroyage.settings`):

* :class:`Guard`, around the app: security headers on every response (a Content-Security-Policy
  allowing the page's own inline script and styles by hash, and nothing else), and any request
  body over the limit (50 MB), declared or chunked, gets HTTP 413;
* :class:`GuardedProtocol`, around uvicorn's HTTP protocol: request line and headers must arrive
  within 10 s and the whole request within 120 s (HTTP 408), headers within 16 KiB (HTTP 431),
  at most 200 open connections per process (HTTP 503); idle keep-alive connections close after 5 s.

``carroyage serve --workers N`` runs N processes: the BAN index is built once and cached on disk
next to the BAN file by the parent; each worker then builds its app from the same settings
(:func:`app_from_environment`, a uvicorn factory) and loads that cached index.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import functools
import hashlib
import io
import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import labels
from ..assets import leaflet_assets
from ..errors import AddressNotFound, CarroyageError, GeocodingError, InputError
from ..settings import (
    AROUND_RADIUS_M,
    CANDIDATES,
    HEADERS_TIMEOUT_S,
    KEEP_ALIVE_S,
    MAX_CONNECTIONS,
    MAX_HEADER_BYTES,
    MAX_UPLOAD_MB,
    MIN_SCORE,
    REQUEST_TIMEOUT_S,
    SHUTDOWN_TIMEOUT_S,
    TOLERANCE_M,
    UPLOAD_DRAIN_MB,
)
from .check import Checker
from .geocode import Match

UPLOAD_PATH = "/api/locate-csv"
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

TILES = "https://tile.openstreetmap.org"
"""The one other origin the page reaches: the map's background tiles (the map reads without them)."""
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""The Content-Security-Policy of every response but the page: nothing may run or load from it."""
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),  # the tile servers' policy asks for an origin
    (b"x-frame-options", b"DENY"),
]
"""Sent with every response, with a Content-Security-Policy (the page's, or :data:`API_CSP`)."""


@dataclass(frozen=True)
class Limits:
    """What one client may take of a ``carroyage serve`` process (see :mod:`carroyage.settings`)."""

    headers_timeout: float = HEADERS_TIMEOUT_S
    request_timeout: float = REQUEST_TIMEOUT_S
    keep_alive: int = KEEP_ALIVE_S
    max_connections: int = MAX_CONNECTIONS
    max_header_bytes: int = MAX_HEADER_BYTES

    def uvicorn_options(self) -> dict[str, Any]:
        """The limits uvicorn has settings for, as ``uvicorn.run`` / ``uvicorn.Config`` arguments."""
        return {
            "timeout_keep_alive": self.keep_alive,
            "limit_concurrency": self.max_connections,
            # above ours, so that GuardedProtocol's 431 comes first (h11's own refusal is a bare 400)
            "h11_max_incomplete_event_size": self.max_header_bytes + 65_536,
            "timeout_graceful_shutdown": SHUTDOWN_TIMEOUT_S,
            "server_header": False,
            "log_level": "warning",
        }


@dataclass(frozen=True)
class ServeSettings:
    """What ``carroyage serve`` was started with, passed to worker processes as JSON."""

    zones: list[str]
    ban: str | None
    addok: str | None
    tolerance: float = TOLERANCE_M
    min_score: float = MIN_SCORE
    max_upload_bytes: int = int(MAX_UPLOAD_MB * 1e6)
    limits: Limits = field(default_factory=Limits)

    def to_json(self) -> str:
        """The settings as one JSON line.

        >>> ServeSettings.from_json(ServeSettings([], "b.csv", None, limits=Limits(keep_alive=2)).to_json()).limits
        Limits(headers_timeout=10.0, request_timeout=120.0, keep_alive=2, max_connections=200, max_header_bytes=16384)
        """
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        """The settings back from :meth:`to_json`."""
        values = json.loads(text)
        return cls(**{**values, "limits": Limits(**values.get("limits", {}))})


def run(checker: Checker, settings: ServeSettings, host: str, port: int, workers: int) -> None:
    """Serve until interrupted: ``workers`` processes, each with ``settings.limits``."""
    import uvicorn

    options = {"host": host, "port": port, **settings.limits.uvicorn_options()}
    if workers == 1:
        app = create_app(checker, max_upload_bytes=settings.max_upload_bytes)
        uvicorn.run(app, http=GuardedProtocol.bounded(settings.limits), **options)
        return
    # each worker process loads the cached index (no rebuild) through the factory, which also
    # gives the protocol class (imported by name there) its limits
    os.environ[SETTINGS_VARIABLE] = settings.to_json()
    uvicorn.run(
        f"{__name__}:app_from_environment",
        factory=True,
        http=f"{__name__}:GuardedProtocol",
        workers=workers,
        **options,
    )


def app_from_environment() -> Guard:
    """The app of one worker process, from the settings its parent put in the environment."""
    from .check import make_checker

    settings = ServeSettings.from_json(os.environ[SETTINGS_VARIABLE])
    GuardedProtocol.limits = settings.limits
    checker = make_checker(settings.zones or None, settings.ban, settings.addok, settings.tolerance, settings.min_score)
    return create_app(checker, settings.max_upload_bytes)


@functools.cache
def _uvicorn_protocol() -> Any:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:  # uvicorn without its [standard] extra
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


class GuardedProtocol(asyncio.Protocol):
    """uvicorn's HTTP protocol, with the deadlines it lacks: no client holds a connection for long.

    uvicorn times out idle keep-alive connections only, so a client that opens a connection and
    sends nothing, or trickles its request line, headers or body, holds it (and a place under
    ``limit_concurrency``) forever. Here each request is timed from its first byte (from the
    connection's opening for the first one): its request line and headers must arrive within
    ``limits.headers_timeout``, its body within ``limits.request_timeout``, or it gets HTTP 408
    and the connection is closed. Request line and headers still incomplete after
    ``limits.max_header_bytes`` get HTTP 431; a connection over uvicorn's ``limit_concurrency``
    gets HTTP 503. These answers carry the same headers as the app's (:class:`Guard`).

    The uvicorn protocol is wrapped, not subclassed: it parses and runs the app as before, and
    this class only reads the state of its request cycle (``cycle``, ``more_body``...).
    """

    limits = Limits()

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None) -> None:
        inner = _uvicorn_protocol()
        self.inner: Any = inner(config=config, server_state=server_state, app_state=app_state, _loop=_loop)
        self.loop: asyncio.AbstractEventLoop = self.inner.loop
        self.transport: Any = None
        self.timer: asyncio.TimerHandle | None = None
        self.timed: object = None  # the cycle before the request being timed (None: the first request)
        self.started = 0.0
        self.header_bytes = 0
        self.crowded = False

    @classmethod
    def bounded(cls, limits: Limits) -> type[GuardedProtocol]:
        """This protocol with other limits (for one process: a class made here cannot be pickled)."""
        return type(cls.__name__, (cls,), {"limits": limits})

    # -- asyncio.Protocol, delegated
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are no asyncio.Transport subclasses
        self.inner.connection_made(transport)
        cap = self.inner.limit_concurrency
        self.crowded = cap is not None and len(self.inner.connections) >= cap  # answered at its first bytes
        self._time_request()

    def data_received(self, data: bytes) -> None:
        if self.crowded:
            self._refuse(503, labels.TOO_MANY_CONNECTIONS)
            return
        if self.timed is not self.inner.cycle and self._idle():  # the first bytes of the next request
            self._time_request()
        self.inner.data_received(data)
        if self.inner.cycle is self.timed:  # its headers still incomplete
            self.header_bytes += len(data)
            if self.header_bytes > self.limits.max_header_bytes:
                self._refuse(431, labels.HEADERS_TOO_LARGE.format(limit=labels.integer(self.limits.max_header_bytes)))
        elif self.timer is not None and not self.inner.cycle.more_body:  # the whole request is in
            self.timer.cancel()
            self.timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        keep_open: bool | None = self.inner.eof_received()
        return keep_open

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def shutdown(self) -> None:
        self.inner.shutdown()

    # -- the deadlines
    def _idle(self) -> bool:
        cycle = self.inner.cycle
        return cycle is None or bool(cycle.response_complete)

    def _time_request(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timed, self.started, self.header_bytes = self.inner.cycle, self.loop.time(), 0
        self.timer = self.loop.call_later(self.limits.headers_timeout, self._deadline)

    def _deadline(self) -> None:
        self.timer = None
        cycle = self.inner.cycle
        if cycle is self.timed:
            self._refuse(408, labels.REQUEST_TOO_SLOW.format(seconds=_seconds(self.limits.headers_timeout)))
            return
        if not cycle.more_body:
            return
        left = self.started + self.limits.request_timeout - self.loop.time()
        if left > 0:
            self.timer = self.loop.call_later(left, self._deadline)
            return
        detail = labels.REQUEST_TOO_SLOW.format(seconds=_seconds(self.limits.request_timeout))
        self._refuse(408, detail, answer=not cycle.response_started)

    def _refuse(self, status: int, detail: str, answer: bool = True) -> None:
        """Answer ``status`` (unless a response has begun), stop the request's app, close."""
        cycle = self.inner.cycle
        if cycle is not None and cycle is not self.timed:
            cycle.disconnected = True  # the app's receive() now returns http.disconnect; its sends are dropped
            cycle.message_event.set()
        if answer and not self.transport.is_closing():
            self.transport.write(_raw_response(status, detail))
        self.transport.close()


def _seconds(value: float) -> str:
    return labels.decimal(value, 0 if value == int(value) else 1)


def _raw_response(status: int, detail: str) -> bytes:
    from http import HTTPStatus

    body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *SECURITY_HEADERS,
        (b"content-security-policy", API_CSP.encode()),
    ]
    head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()
    return head + b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body


class Guard:
    """The app's outer layer: security headers on every response, request bodies bounded.

    A body over ``limit`` bytes gets HTTP 413 whether its size is declared (``Content-Length``,
    refused before anything is read) or not (chunked: counted as it arrives). Up to ``drain``
    bytes more of it are read and discarded first, so that a client still sending receives the
    answer rather than a reset connection; a longer body is cut off (``Connection: close``).
    """

    def __init__(self, app: ASGIApp, limit: int, page_csp: str = API_CSP, drain: int = int(UPLOAD_DRAIN_MB * 1e6)):
        self.app, self.limit, self.page_csp, self.drain = app, limit, page_csp, drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secured = self._secured(send)
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            drained = declared - self.limit <= self.drain and await _drain(receive, declared, 0)
            await self._refuse(secured, drained)
            return
        received, refused = 0, False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit and not refused:
                refused = True
                drained = not message.get("more_body") or await _drain(receive, received + self.drain, received)
                await self._refuse(secured, drained)
                raise _TooLarge()
            return message

        async def app_send(message: Message) -> None:
            if not refused:  # the app's own answer to a body cut short (FastAPI: 400) is dropped
                await secured(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counting_receive, app_send)

    def _secured(self, send: Send) -> Send:
        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
                csp = (self.page_csp if html else API_CSP).encode()
                message = {**message, "headers": [*headers, *SECURITY_HEADERS, (b"content-security-policy", csp)]}
            await send(message)

        return secured

    async def _refuse(self, send: Send, keep_alive: bool) -> None:
        detail = labels.UPLOAD_TOO_LARGE.format(limit=labels.megabytes(self.limit))
        body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if not keep_alive:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def _content_length(scope: Scope) -> int | None:
    value = dict(scope["headers"]).get(b"content-length")
    return int(value) if value is not None and value.isdigit() else None  # the HTTP parser refused other values


async def _drain(receive: Receive, upto: int, received: int) -> bool:
    """Read and discard the rest of a body; whether it ended before ``upto`` bytes in all."""
    while received <= upto:
        message = await receive()
        if message["type"] != "http.request":
            return False
        received += len(message.get("body", b""))
        if not message.get("more_body"):
            return received <= upto
    return False


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


ERRORS = {
    400: "Invalid query or file",
    404: "Address not found",
    413: "Body over the upload limit",
    501: "Not available with this geocoder",
    502: "The geocoder failed",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem, "description": ERRORS[code]} for code in codes}


CSV_RESPONSE: dict[str, Any] = {"description": "The file, annotated", "content": {"text/csv": {}}}
SEARCH_CSV_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {"type": "string", "format": "binary", "description": "CSV (UTF-8)"},
                    "columns": {"type": "array", "items": {"type": "string"}, "description": "Address columns"},
                    "postcode": {"type": "string", "description": "Column holding the postcode filter"},
                    "citycode": {"type": "string", "description": "Column holding the INSEE code filter"},
                    "delimiter": {"type": "string", "description": "Column separator (default: guessed)"},
                    "min_score": {"type": "number", "description": "Lowest score kept (default 0.5)"},
                },
            }
        }
    },
}
"""``/search/csv`` reads its form itself (addok-csv's fields): its body, described for the schema."""


def create_app(checker: Checker, max_upload_bytes: int = int(MAX_UPLOAD_MB * 1e6)) -> Guard:
    """The web application for one set of zones and one geocoder."""
    app = FastAPI(
        title="carroyage — adresses et géographie prioritaire",
        description="Is an address in a QPV, a quartier vécu or a veille-active zone?",
        version="1",
        docs_url=None,  # the interactive docs load their assets from a CDN: the page must not
        redoc_url=None,
    )
    page = _page(max_upload_bytes)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home() -> str:
        return page

    # FastAPI reads a return annotation as the response model: the OpenAPI schema (a JSON object) is given here
    # instead, and the handler is annotated with what it really returns
    @app.get("/api/locate", response_model=dict, responses=_errors(400, 404, 502))
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
            raise HTTPException(404, str(exc)) from exc
        except GeocodingError as exc:
            raise HTTPException(502, str(exc)) from exc
        except InputError as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.get("/api/zones", response_model=dict)
    def zones(
        lon: float = Query(..., ge=-180, le=180, description="Longitude (WGS84)"),
        lat: float = Query(..., ge=-90, le=90, description="Latitude (WGS84)"),
        radius: float = Query(AROUND_RADIUS_M, ge=0, le=20_000, description="Rayon en mètres"),
    ) -> JSONResponse:
        """Zones around a point, as GeoJSON (WGS84)."""
        return JSONResponse(checker.zones.around(lon, lat, radius))

    @app.post(UPLOAD_PATH, response_class=FileResponse, responses={200: CSV_RESPONSE, **_errors(400, 413)})
    def locate_csv(
        file: UploadFile = File(..., description="CSV (UTF-8) avec lon/lat ou adresse"),
        excel_safe: bool = Form(
            False,
            description="Préfixer d'une ' les cellules ajoutées qu'un tableur lirait comme une formule "
            "(=, +, -, @...), comme `carroyage locate-csv --excel-safe` ; les cellules du fichier restent "
            "telles quelles (par défaut : non)",
        ),
    ) -> FileResponse:
        """The uploaded file, every row annotated (status, zone, distance, geocoding).

        With ``excel_safe``, the appended text cells a spreadsheet would run as a formula start with ``'``.
        """
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
                excel_safe=excel_safe,
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
    return Guard(app, max_upload_bytes, page_csp=page_csp(page))


def _addok_endpoints(app: FastAPI, checker: Checker) -> None:
    """``/search``, ``/reverse`` and ``/search/csv`` as addok (+ addok-france, addok-csv) answer them."""

    def geocoder_or_400() -> Any:
        if checker.geocoder is None:
            raise HTTPException(400, f"aucun géocodeur sur ce service ; {labels.GEOCODER_EXPECTED}")
        return checker.geocoder

    @app.get("/search", response_model=dict, responses=_errors(400, 413, 502))
    @app.get("/search/", response_model=dict, include_in_schema=False)
    def search(
        q: str | None = Query(None, description="Adresse recherchée"),
        limit: int = Query(CANDIDATES, description="Nombre de résultats (1 à 100)"),
        postcode: str | None = Query(None, description="Filtre : code postal"),
        citycode: str | None = Query(None, description="Filtre : code INSEE de la commune"),
    ) -> JSONResponse:
        """Scored candidates as a GeoJSON FeatureCollection, like addok's ``/search``."""
        if not q or not q.strip():
            raise HTTPException(400, labels.PARAMETER_MISSING.format(name="q"))
        if not 1 <= limit <= 100:
            expected = labels.EXPECTED_RANGES["between"].format(low=1, high=100)
            raise HTTPException(400, labels.USAGE["bad_value"].format(name="limit", value=limit, expected=expected))
        geocoder_or_400()
        try:
            found = checker.candidates(q, limit, postcode or "", citycode or "")
        except InputError as exc:
            raise HTTPException(413, str(exc)) from exc
        except GeocodingError as exc:
            raise HTTPException(502, str(exc)) from exc
        filters = {k: [v] for k, v in (("postcode", postcode), ("citycode", citycode)) if v}
        return JSONResponse(_collection(found, query=q, filters=filters, limit=limit))

    @app.get("/reverse", response_model=dict, responses=_errors(400, 501))
    @app.get("/reverse/", response_model=dict, include_in_schema=False)
    def reverse(
        lon: float | None = Query(None, ge=-180, le=180),
        lat: float | None = Query(None, ge=-90, le=90),
        limit: int = Query(1, ge=1, le=100),
    ) -> JSONResponse:
        """The nearest addresses to a point, like addok's ``/reverse``."""
        if lon is None or lat is None:
            raise HTTPException(400, labels.PARAMETER_MISSING.format(name="lon" if lon is None else "lat"))
        geocoder = geocoder_or_400()
        if not hasattr(geocoder, "reverse"):
            raise HTTPException(501, "géocodage inverse indisponible avec addok ; attendu un fichier BAN (--ban)")
        return JSONResponse(_collection(geocoder.reverse(lon, lat, limit), limit=limit, distance=(lon, lat)))

    @app.post(
        "/search/csv",
        response_class=Response,
        responses={200: CSV_RESPONSE, **_errors(400, 413)},
        openapi_extra={"requestBody": SEARCH_CSV_BODY},
    )
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
            raise HTTPException(400, "fichier manquant ; attendu un fichier CSV dans le champ data")
        raw = await upload.read()
        options = {key: [str(v) for v in form.getlist(key)] for key in ("columns", "postcode", "citycode", "delimiter")}
        given = str(form.get("min_score") or 0.5)
        try:
            min_score = float(given)
        except ValueError as exc:
            expected = labels.VALUE_EXPECTED["float_parsing"]
            raise HTTPException(
                400, labels.USAGE["bad_value"].format(name="min_score", value=given, expected=expected)
            ) from exc
        name = getattr(upload, "filename", None) or "adresses.csv"
        body = await run_in_threadpool(_search_csv, checker, raw, options, min_score, name)
        stem = Path(name).stem
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": _attachment(f"{stem}.geocoded.csv")},
        )


def _search_csv(
    checker: Checker, raw: bytes, options: dict[str, list[str]], min_score: float, name: str = "adresses.csv"
) -> bytes:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, f"{name} : " + labels.NOT_UTF8.format(detail=f" ({exc.reason})")) from exc
    if not text.strip():
        raise HTTPException(400, labels.EMPTY_FILE.format(path=name, what=labels.HEADER_LINE))
    first = text.splitlines()[0]
    delimiter = (options["delimiter"] or [""])[0] or max(";,\t|", key=first.count)
    if len(delimiter) != 1 or delimiter in '\r\n"':
        expected = "attendu un seul caractère, ni guillemet ni fin de ligne"
        raise HTTPException(
            400, labels.USAGE["bad_value"].format(name="delimiter", value=repr(delimiter), expected=expected)
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader)
    rows = [row + [""] * (len(header) - len(row)) for row in reader]
    index = {name: i for i, name in enumerate(header)}
    columns = [c for value in options["columns"] for c in value.split(",") if c] or header
    for column in [*columns, *options["postcode"], *options["citycode"]]:
        if column not in index:
            missing = labels.MISSING_COLUMN.format(path=name, name=column, option="", columns=labels.one_of(header))
            raise HTTPException(400, missing)
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


def _attachment(name: str) -> str:
    """A ``Content-Disposition`` for a file name a client chose: quotes, line breaks or any
    non-ASCII character in it are percent-encoded (RFC 6266 ``filename*``), never sent raw.

    >>> _attachment('a.csv'), _attachment('é"\\r\\n.csv')
    ('attachment; filename="a.csv"', "attachment; filename*=utf-8''%C3%A9%22%0D%0A.csv")
    """
    quoted = quote(name)
    return f'attachment; filename="{name}"' if quoted == name else f"attachment; filename*=utf-8''{quoted}"


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _page(max_upload_bytes: int = int(MAX_UPLOAD_MB * 1e6)) -> str:
    """The page template (``page.html`` beside this module), DSFR, Leaflet and French labels inlined.

    One self-contained HTML string: the DSFR's style sheets with the Marianne fonts and icons as
    data URIs, Leaflet, and the labels of :mod:`carroyage.labels` the script shows.
    """
    from ..assets import dsfr_css

    script, css = leaflet_assets()
    too_large = labels.UPLOAD_TOO_LARGE.format(limit=labels.megabytes(max_upload_bytes))
    words = {
        "statuts": labels.STATUS_SHORT,
        "types": {"quartier_vecu": "Quartier vécu", "veille_active": "Veille active"},
        "officiel": "QPV officiel",
        "candidat": "Quartier candidat (calculé)",
        "limite_octets": max_upload_bytes,
        "trop_volumineux": too_large[0].upper() + too_large[1:] + ".",
        "hors_service": labels.SERVICE_DOWN,
    }
    # "<" escaped inside the script: no text can close it or open a comment there
    inline = json.dumps(words, ensure_ascii=False).replace("<", "\\u003c")
    template = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
    return (
        template.replace("/*DSFR_CSS*/", dsfr_css())
        .replace("/*LEAFLET_CSS*/", css)
        .replace("{{MAX_UPLOAD_MO}}", labels.megabytes(max_upload_bytes))
        .replace("/*LABELS*/{}", inline)
        .replace("/*LEAFLET_JS*/", script)
    )


def page_csp(page: str) -> str:
    """The page's Content-Security-Policy: its own inline scripts and style sheets, by hash, and
    nothing else inline (no event-handler attribute, no injected script would run)."""

    def hashes(tag: str) -> str:
        bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.DOTALL)
        digests = (base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() for body in bodies)
        return " ".join(f"'sha256-{digest}'" for digest in digests)

    return (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
        f"img-src 'self' data: {TILES}; font-src data:; connect-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )

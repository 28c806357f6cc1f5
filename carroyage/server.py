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
from pathlib import Path

from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from .check import AddressNotFound, Checker
from .errors import CarroyageError, InputError
from .geocode import GeocodingError
from .maps import leaflet_assets

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

        async def counting_receive():
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


def create_app(checker: Checker, max_upload_bytes: int = 50_000_000) -> FastAPI:
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

    @app.get("/api/locate")
    async def locate(
        adresse: str | None = Query(None, description="Adresse postale"),
        lon: float | None = Query(None, description="Longitude (WGS84)"),
        lat: float | None = Query(None, description="Latitude (WGS84)"),
        tolerance: float | None = Query(None, ge=0, le=1000, description="Tolérance en mètres"),
    ) -> dict:
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
    def zones(lon: float, lat: float, radius: float = Query(1500.0, ge=0, le=20_000)) -> JSONResponse:
        """Zones around a point, as GeoJSON (WGS84)."""
        return JSONResponse(checker.zones.around(lon, lat, radius))

    @app.post(UPLOAD_PATH, response_class=FileResponse)
    def locate_csv(file: UploadFile = File(..., description="CSV (UTF-8) avec lon/lat ou adresse")):
        """The uploaded file, every row annotated (status, zone, distance, geocoding)."""
        from .batch import locate_csv as run_batch

        folder = Path(tempfile.mkdtemp(prefix="carroyage-"))
        source, target = folder / "entree.csv", folder / "resultat.csv"
        with source.open("wb") as handle:
            while block := file.file.read(1 << 20):
                handle.write(block)
        try:
            counts = run_batch(source, target, checker.zones, checker.geocoder, tolerance=checker.tolerance, min_score=checker.min_score)
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
    script, css = leaflet_assets()
    return PAGE.replace("/*LEAFLET_CSS*/", css).replace("/*LEAFLET_JS*/", script)


PAGE = """<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vérifier une adresse — géographie prioritaire</title>
<style>/*LEAFLET_CSS*/</style>
<style>
body { margin: 0; font: 15px/1.4 system-ui, sans-serif; display: flex; height: 100vh; }
#panneau { width: 400px; padding: 16px 20px; overflow: auto; box-sizing: border-box; }
#carte { flex: 1; }
h1 { font-size: 20px; margin-top: 0; } h2 { font-size: 16px; margin-top: 28px; }
label { display: block; margin-top: 10px; font-weight: 600; }
input[type=text], input[type=number] { width: 100%; padding: 6px; box-sizing: border-box; }
button { margin-top: 12px; padding: 8px 16px; }
#resultat { margin-top: 16px; padding: 10px; border-radius: 4px; display: none; }
#resultat.in { background: #fde0dd; } #resultat.out { background: #e5f5e0; } #resultat.uncertain { background: #fff3cd; }
#resultat.erreur { background: #eee; }
.statut { font-size: 18px; font-weight: 700; }
</style>
</head>
<body>
<div id="panneau">
  <h1>Cette adresse est-elle en quartier prioritaire&nbsp;?</h1>
  <form id="formulaire">
    <label for="adresse">Adresse</label>
    <input type="text" id="adresse" name="adresse" placeholder="8 bd du Port, Amiens" autocomplete="street-address">
    <details><summary>ou des coordonnées</summary>
      <label for="lon">Longitude</label><input type="text" id="lon" name="lon">
      <label for="lat">Latitude</label><input type="text" id="lat" name="lat">
    </details>
    <label for="tolerance">Tolérance (mètres)</label>
    <input type="number" id="tolerance" name="tolerance" value="20" min="0" max="1000">
    <button type="submit">Vérifier</button>
  </form>
  <div id="resultat" aria-live="polite"></div>
  <h2>Un fichier d'adresses</h2>
  <form id="fichier">
    <label for="csv">Fichier CSV (colonnes lon/lat ou adresse)</label>
    <input type="file" id="csv" name="file" accept=".csv,text/csv">
    <button type="submit">Traiter le fichier</button>
  </form>
  <div id="fichier-resultat"></div>
</div>
<div id="carte"></div>
<script>/*LEAFLET_JS*/</script>
<script>
var STATUTS = {"in": "Dans la zone", "out": "Hors zone", "uncertain": "Incertain"};
var TYPES = {"qpv": "QPV", "quartier_vecu": "Quartier vécu", "veille_active": "Veille active"};
var carte = L.map("carte").setView([46.6, 2.4], 6);
L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {maxZoom: 19, attribution: "© contributeurs OpenStreetMap"}).addTo(carte);
L.control.scale({imperial: false}).addTo(carte);
var couche = L.layerGroup().addTo(carte);

function ligne(parent, texte, classe) {
  var div = document.createElement("div");
  div.textContent = texte;
  if (classe) { div.className = classe; }
  parent.appendChild(div);
}

function metres(d) { return Math.round(Math.abs(d)).toLocaleString("fr-FR") + " m"; }

function afficher(reponse) {
  var zone = document.getElementById("resultat");
  zone.textContent = "";
  zone.className = reponse.status;
  zone.style.display = "block";
  ligne(zone, STATUTS[reponse.status], "statut");
  if (reponse.reason) { ligne(zone, reponse.reason); }
  if (reponse.geocoding) { ligne(zone, "Adresse trouvée : " + reponse.geocoding.label + " (score " + reponse.geocoding.score.toLocaleString("fr-FR", {minimumFractionDigits: 2, maximumFractionDigits: 2}) + ")"); }
  reponse.quartiers.forEach(function (q) {
    ligne(zone, (TYPES[q.type] || q.type) + " " + q.code + " " + q.name + " : " + (q.distance_m < 0 ? "à l'intérieur" : "à l'extérieur") + ", à " + metres(q.distance_m) + " de la limite");
  });
  if (!reponse.quartiers.length && reponse.nearest) {
    ligne(zone, "Zone la plus proche : " + (TYPES[reponse.nearest.type] || reponse.nearest.type) + " " + reponse.nearest.code + " " + reponse.nearest.name + ", à " + metres(reponse.nearest.distance_m));
  }
  var p = [reponse.position.lat, reponse.position.lon];
  couche.clearLayers();
  L.circle(p, {radius: reponse.tolerance_m, color: "#555", weight: 1}).addTo(couche);
  L.circleMarker(p, {radius: 6, color: "#000", fillColor: "#ffd700", fillOpacity: 1}).addTo(couche);
  carte.setView(p, 15);
  fetch("/api/zones?lon=" + reponse.position.lon + "&lat=" + reponse.position.lat).then(function (r) { return r.json(); }).then(function (zones) {
    L.geoJSON(zones, {
      style: function (f) { return {color: f.properties.type === "qpv" ? "#b2182b" : "#2166ac", weight: 2, fillOpacity: 0.15}; },
      onEachFeature: function (f, l) { var t = document.createElement("span"); t.textContent = f.properties.code + " " + f.properties.name; l.bindTooltip(t); }
    }).addTo(couche);
  });
}

function erreur(message) {
  var zone = document.getElementById("resultat");
  zone.textContent = "";
  zone.className = "erreur";
  zone.style.display = "block";
  ligne(zone, message);
}

document.getElementById("formulaire").addEventListener("submit", function (e) {
  e.preventDefault();
  var q = new URLSearchParams();
  var adresse = document.getElementById("adresse").value.trim();
  if (adresse) { q.set("adresse", adresse); } else {
    q.set("lon", document.getElementById("lon").value.replace(",", "."));
    q.set("lat", document.getElementById("lat").value.replace(",", "."));
  }
  q.set("tolerance", document.getElementById("tolerance").value || "20");
  fetch("/api/locate?" + q.toString()).then(function (r) {
    return r.json().then(function (body) { if (r.ok) { afficher(body); } else { erreur(typeof body.detail === "string" ? body.detail : "Requête invalide"); } });
  }).catch(function () { erreur("Le service ne répond pas."); });
});

document.getElementById("fichier").addEventListener("submit", function (e) {
  e.preventDefault();
  var fichier = document.getElementById("csv").files[0];
  var sortie = document.getElementById("fichier-resultat");
  sortie.textContent = "";
  if (!fichier) { ligne(sortie, "Choisissez un fichier."); return; }
  var donnees = new FormData();
  donnees.append("file", fichier);
  ligne(sortie, "Traitement…");
  fetch("/api/locate-csv", {method: "POST", body: donnees}).then(function (r) {
    sortie.textContent = "";
    if (!r.ok) { return r.json().then(function (b) { ligne(sortie, b.detail || "Erreur"); }); }
    var resume = JSON.parse(r.headers.get("X-Carroyage-Summary") || "{}");
    return r.blob().then(function (b) {
      var lien = document.createElement("a");
      lien.href = URL.createObjectURL(b);
      lien.download = fichier.name.replace(/\\.csv$/i, "") + "_qpv.csv";
      lien.textContent = "Télécharger le résultat";
      sortie.appendChild(lien);
      ligne(sortie, Object.keys(resume).map(function (k) { return k + " : " + resume[k]; }).join(", "));
    });
  });
});
</script>
</body>
</html>
"""

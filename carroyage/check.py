"""One address or position checked against the zones: the answer the CLI and the web API give."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CarroyageError, InputError
from .geocode import Match
from .lookup import ZoneSet

TYPE_LABELS = {"qpv": "QPV", "quartier_vecu": "quartier vécu", "veille_active": "veille active"}
STATUS_FR = {"in": "DANS la zone", "out": "HORS zone", "uncertain": "INCERTAIN"}


class AddressNotFound(CarroyageError, LookupError):
    """The geocoder found nothing resembling the address."""


@dataclass(frozen=True)
class Checker:
    """Zones, an optional geocoder and the settings of the answer."""

    zones: ZoneSet
    geocoder: object | None = None
    tolerance: float = 20.0
    min_score: float = 0.5

    def check(self, address: str | None = None, lon: float | None = None, lat: float | None = None, tolerance: float | None = None) -> dict:
        """The answer for one address or one position (WGS84), as a JSON-ready dict.

        ``status`` is ``in``, ``out`` or ``uncertain`` (near a boundary, or weak geocoding);
        ``quartiers`` lists the zones the point lies in or near, with the signed distance to their
        boundary (negative inside); ``nearest`` is the closest zone of all.
        """
        tolerance = self.tolerance if tolerance is None else tolerance
        match = None
        if address is not None and address.strip():
            if self.geocoder is None:
                raise InputError("geocoding an address needs a BAN file (--ban) or an addok server (--addok)")
            match = self.geocoder.geocode(address)
            if match is None:
                raise AddressNotFound(f"address not found: {address!r}")
            lon, lat = match.lon, match.lat
        elif lon is None or lat is None:
            raise InputError("expected an address, or both --lon and --lat")
        if not (np.isfinite(lon) and np.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
            raise InputError(f"position ({lon}, {lat}): expected longitude and latitude in decimal degrees (WGS84)")
        located = self.zones.locate(np.array([lon]), np.array([lat]), tolerance)
        status = str(located.status()[0])
        reason = ""
        if status == "uncertain":
            reason = f"à moins de {tolerance:g} m d'une limite"
        if match is not None and match.score < self.min_score:
            status, reason = "uncertain", f"géocodage incertain (score {match.score:.2f})"
        nearest = self.zones.nearest(lon, lat)
        return {
            "status": status,
            "reason": reason,
            "tolerance_m": tolerance,
            "position": {"lon": round(float(lon), 6), "lat": round(float(lat), 6)},
            "geocoding": None if match is None else _geocoding(match),
            "quartiers": located.quartiers(0),
            "nearest": None if nearest is None else {**self._zone(nearest[0]), "distance_m": round(nearest[1], 1)},
        }

    def _zone(self, row: int) -> dict:
        table = self.zones.table
        return {"type": table.at[row, "type"], "code": table.at[row, "code"], "name": table.at[row, "name"]}


def _geocoding(match: Match) -> dict:
    return {"label": match.label, "score": match.score, "type": match.kind, "id": match.id}


def format_answer(answer: dict) -> str:
    """The answer in French, for a person at a counter."""
    lines = []
    if answer["geocoding"]:
        g = answer["geocoding"]
        lines.append(f"Adresse trouvée : {g['label']} (score {g['score']:.2f})")
    lines.append(f"Position : {answer['position']['lon']:.6f}, {answer['position']['lat']:.6f} (WGS84)")
    lines.append(f"Réponse : {STATUS_FR[answer['status']]}" + (f" ({answer['reason']})" if answer["reason"] else ""))
    for q in answer["quartiers"]:
        where = "à l'intérieur" if q["distance_m"] < 0 else "à l'extérieur"
        lines.append(f"  {TYPE_LABELS.get(q['type'], q['type'])} {q['code']} {q['name']} : {where}, à {_metres(q['distance_m'])} de la limite")
    if not answer["quartiers"] and answer["nearest"]:
        n = answer["nearest"]
        lines.append(f"  Zone la plus proche : {TYPE_LABELS.get(n['type'], n['type'])} {n['code']} {n['name']}, à {_metres(n['distance_m'])}")
    return "\n".join(lines)


def _metres(value: float) -> str:
    return f"{abs(value):,.0f} m".replace(",", "\u202f")  # French thousands separator

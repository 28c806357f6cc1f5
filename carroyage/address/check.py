"""One address or position checked against the zones: the answer the CLI and the web API give."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import labels
from ..data import QPV_2024
from ..errors import AddressNotFound, InputError
from ..settings import MIN_SCORE, TOLERANCE_M
from .geocode import Geocoder, Match
from .lookup import ZoneSet, load_zones


@dataclass(frozen=True)
class Checker:
    """Zones, an optional geocoder and the settings of the answer."""

    zones: ZoneSet
    geocoder: Geocoder | None = None
    tolerance: float = TOLERANCE_M
    min_score: float = MIN_SCORE

    def check(
        self,
        address: str | None = None,
        lon: float | None = None,
        lat: float | None = None,
        tolerance: float | None = None,
    ) -> dict[str, Any]:
        """The answer for one address or one position (WGS84), as a JSON-ready dict.

        ``status`` is ``in``, ``out`` or ``uncertain`` (near a boundary, or weak geocoding);
        ``quartiers`` lists the zones the point lies in or near, with the signed distance to their
        boundary (negative inside); ``nearest`` is the closest zone of all.
        """
        tolerance = self.tolerance if tolerance is None else tolerance
        match = None
        validate_query(address, lon, lat, self.geocoder)
        if address is not None and address.strip():
            assert self.geocoder is not None  # validate_query refused an address without a geocoder
            match = self.geocoder.geocode(address)
            if match is None:
                raise AddressNotFound(f"address not found: {address!r}")
            lon, lat = match.lon, match.lat
            _check_position(lon, lat)
        assert lon is not None and lat is not None  # given, or found by geocoding (validate_query)
        located = self.zones.locate(np.array([lon]), np.array([lat]), tolerance)
        status = str(located.status()[0])
        reason = ""
        if status == "uncertain":
            reason = labels.NEAR_BOUNDARY.format(tolerance=tolerance)
        if match is not None and match.score < self.min_score:
            status, reason = "uncertain", labels.WEAK_GEOCODING.format(score=match.score)
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

    def _zone(self, row: int) -> dict[str, Any]:
        table = self.zones.table
        return {"type": table.at[row, "type"], "code": table.at[row, "code"], "name": table.at[row, "name"]}


def make_checker(
    zones: Sequence[str | Path] | None = None,
    ban: str | Path | None = None,
    addok: str | None = None,
    tolerance: float = TOLERANCE_M,
    min_score: float = MIN_SCORE,
) -> Checker:
    """A checker for zone files (the official 2024 QPV layer by default) and a BAN file or addok URL."""
    from .geocode import AddokGeocoder, BanGeocoder

    geocoder = AddokGeocoder(addok) if addok else BanGeocoder(ban) if ban else None
    return Checker(load_zones(list(zones or [QPV_2024])), geocoder, tolerance, min_score)


def locate(
    address: str | None = None,
    *,
    lon: float | None = None,
    lat: float | None = None,
    zones: Sequence[str | Path] | None = None,
    ban: str | Path | None = None,
    addok: str | None = None,
    tolerance: float = TOLERANCE_M,
    min_score: float = MIN_SCORE,
) -> dict[str, Any]:
    """Is this address (or position, WGS84) in a QPV, a quartier vécu or a veille-active zone?

    The answer of ``carroyage locate --json``; see :meth:`Checker.check`. For many queries, build
    one :func:`make_checker` and call its ``check``: the zones are then loaded once.

    Examples
    --------
    >>> locate(lon=2.3048, lat=49.9104)["status"]  # Amiens Nord
    'in'
    """
    validate_query(address, lon, lat, ban or addok)
    return make_checker(zones, ban, addok, tolerance, min_score).check(address, lon, lat)


def validate_query(address: str | None, lon: float | None, lat: float | None, geocoder: object | None) -> None:
    """Check a query before any data is loaded: an address and a geocoder, or a valid position.

    >>> validate_query(None, 2.30, 49.89, None)
    >>> validate_query(None, 2.30, None, None)
    Traceback (most recent call last):
    ...
    carroyage.errors.InputError: expected an address, or both --lon and --lat
    """
    if address is not None and address.strip():
        if geocoder is None:
            raise InputError("geocoding an address needs a BAN file (--ban) or an addok server (--addok)")
        return
    if lon is None or lat is None:
        raise InputError("expected an address, or both --lon and --lat")
    _check_position(lon, lat)


def _check_position(lon: float, lat: float) -> None:
    if not (np.isfinite(lon) and np.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
        raise InputError(f"position ({lon}, {lat}): expected longitude and latitude in decimal degrees (WGS84)")


def _geocoding(match: Match) -> dict[str, Any]:
    return {"label": match.label, "score": match.score, "type": match.kind, "id": match.id}


def format_answer(answer: dict[str, Any]) -> str:
    """The answer in French, for a person at a counter."""
    lines = []
    if answer["geocoding"]:
        lines.append(labels.ADDRESS_FOUND.format(**answer["geocoding"]))
    lines.append(labels.POSITION.format(**answer["position"]))
    lines.append(
        labels.ANSWER.format(status=labels.STATUS[answer["status"]])
        + (f" ({answer['reason']})" if answer["reason"] else "")
    )
    for q in answer["quartiers"]:
        where = labels.INSIDE if q["distance_m"] < 0 else labels.OUTSIDE
        lines.append(
            labels.ZONE_LINE.format(
                type=_type(q), code=q["code"], name=q["name"], where=where, distance=labels.metres(q["distance_m"])
            )
        )
    if not answer["quartiers"] and answer["nearest"]:
        n = answer["nearest"]
        lines.append(
            labels.NEAREST_LINE.format(
                type=_type(n), code=n["code"], name=n["name"], distance=labels.metres(n["distance_m"])
            )
        )
    return "\n".join(lines)


def _type(zone: dict[str, Any]) -> str:
    name: str = labels.ZONE_TYPES.get(zone["type"], zone["type"])
    return name

"""One address or position checked against the zones: the answer the CLI and the web API give."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import labels
from ..data import QPV_2024
from ..errors import AddressNotFound, InputError
from ..settings import MAX_ADDRESS_CHARS, MIN_SCORE, TOLERANCE_M
from .lookup import ZoneSet, load_zones
from .normalise import too_long
from .query import check_position as _check_position
from .query import validate_query

if TYPE_CHECKING:  # the geocoder (rapidfuzz) is imported only when an address is geocoded
    from .geocode import Geocoder, Match


@dataclass(frozen=True)
class StreetZones:
    """Where each street (and commune) of a BAN index lies against the zones (tolerance 0).

    ``zone[s]`` is the zone row when every address of street ``s`` lies in that one zone (-1
    otherwise); ``partly[s]`` is true when the street has addresses inside a zone and outside it
    (or in two zones): it crosses a boundary, as the official batch service flags it.
    ``commune_in`` holds the INSEE codes of communes with at least one address in a zone.
    """

    zone: np.ndarray
    partly: np.ndarray
    commune_in: frozenset[str]

    @classmethod
    def of(cls, geocoder: Any, zones: ZoneSet) -> StreetZones | None:
        """From a :class:`~carroyage.address.geocode.BanGeocoder` (``None`` for other geocoders)."""
        if not hasattr(geocoder, "street_of_row"):
            return None
        located = zones.locate(geocoder.lon, geocoder.lat, 0.0)
        zone, distance = located.main_zone()
        zone = np.where(distance < 0, zone, -1)
        street = geocoder.street_of_row
        count = geocoder.streets
        low = np.full(count, np.iinfo(np.int64).max)
        high = np.full(count, -1)
        np.minimum.at(low, street, zone)
        np.maximum.at(high, street, zone)
        whole = np.where((low == high) & (high >= 0), high, -1)
        partly = (high >= 0) & (low != high)
        commune_in = frozenset(str(c) for c in np.unique(geocoder.s_insee[street[zone >= 0]]))
        return cls(whole, partly, commune_in)

    def partly_in(self, match: Match) -> bool | None:
        """Whether the matched street crosses a zone boundary (``None``: no street, or unknown)."""
        if match.street_code < 0 or match.street_code >= len(self.partly):
            return None
        return bool(self.partly[match.street_code])


def refine(status: str, reason: str, match: Match, streets: StreetZones | None, zones: ZoneSet) -> tuple[str, str]:
    """The status of a geocoded point, knowing how it was geocoded.

    A street or commune answer (the number, or the street, was not found) is never ``in``: at
    most ``uncertain``, with the reason (the whole street lies in one zone, it crosses a
    boundary, the commune has zones).
    """
    position = labels.POSITIONS.get(match.position, match.position)
    if match.kind == "street":
        if streets is not None and 0 <= match.street_code < len(streets.zone):
            whole = int(streets.zone[match.street_code])
            if whole >= 0:
                return "uncertain", labels.STREET_IN_ONE_ZONE.format(code=zones.fields["code"][whole])
            if streets.partly[match.street_code]:
                return "uncertain", labels.STREET_CROSSES
        why = labels.NUMBER_NOT_FOUND if match.note == "number_not_found" else labels.NO_NUMBER
        return ("uncertain" if status == "in" else status), why.format(position=position)
    if match.kind == "municipality":
        if streets is None or match.citycode in streets.commune_in or status == "in":
            return "uncertain", labels.COMMUNE_HAS_ZONES
        return status, labels.COMMUNE_ONLY
    if match.note == "other_repetition" and not reason:
        return status, labels.OTHER_REPETITION.format(housenumber=match.housenumber)
    return status, reason


@dataclass(frozen=True)
class Checker:
    """Zones, an optional geocoder and the settings of the answer."""

    zones: ZoneSet
    geocoder: Geocoder | None = None
    tolerance: float = TOLERANCE_M
    min_score: float = MIN_SCORE

    @cached_property
    def streets(self) -> StreetZones | None:
        """Where each street of the BAN index lies against the zones (computed once)."""
        return StreetZones.of(self.geocoder, self.zones)

    def candidates(self, address: str, limit: int, postcode: str = "", citycode: str = "") -> list[Match]:
        """Up to ``limit`` geocoding candidates, best first (addok's ``/search``)."""
        if too_long(address):
            raise InputError(labels.ADDRESS_TOO_LONG.format(limit=MAX_ADDRESS_CHARS))
        search = getattr(self.geocoder, "search", None)
        if search is None:
            match = self.geocoder.geocode(address) if self.geocoder else None
            return [match] if match else []
        found: list[Match] = search(address, limit, postcode, citycode)
        return found

    def check(
        self,
        address: str | None = None,
        lon: float | None = None,
        lat: float | None = None,
        tolerance: float | None = None,
        candidates: int = 1,
    ) -> dict[str, Any]:
        """The answer for one address or one position (WGS84), as a JSON-ready dict.

        ``status`` is ``in``, ``out`` or ``uncertain`` (near a boundary, or weak geocoding);
        ``quartiers`` lists the zones the point lies in or near, with the signed distance to their
        boundary (negative inside); ``nearest`` is the closest zone of all.
        """
        tolerance = self.tolerance if tolerance is None else tolerance
        match = None
        others: list[Match] = []
        validate_query(address, lon, lat, self.geocoder)
        if address is not None and address.strip():
            assert self.geocoder is not None  # validate_query refused an address without a geocoder
            others = self.candidates(address, max(candidates, 1))
            if not others:
                raise AddressNotFound(labels.ADDRESS_NOT_FOUND_FOR.format(address=address))
            match = others[0]
            lon, lat = match.lon, match.lat
            _check_position(lon, lat)
        assert lon is not None and lat is not None  # given, or found by geocoding (validate_query)
        located = self.zones.locate(np.array([lon]), np.array([lat]), tolerance)
        status = str(located.status()[0])
        reason = ""
        if status == "uncertain":
            reason = labels.NEAR_BOUNDARY.format(tolerance=tolerance)
        partly = None
        if match is not None:
            status, reason = refine(status, reason, match, self.streets, self.zones)
            partly = self.streets.partly_in(match) if self.streets is not None else None
            if match.score < self.min_score:
                status, reason = "uncertain", ""
                reason = labels.WEAK_GEOCODING.format(score=match.score)
        nearest = self.zones.nearest(lon, lat)
        answer = {
            "status": status,
            "reason": reason,
            "tolerance_m": tolerance,
            "position": {"lon": round(float(lon), 6), "lat": round(float(lat), 6)},
            "geocoding": None if match is None else _geocoding(match),
            "street_partly_in": partly,
            "quartiers": located.quartiers(0),
            "nearest": None if nearest is None else {**self._zone(nearest[0]), "distance_m": round(nearest[1], 1)},
        }
        if candidates > 1:
            answer["candidates"] = [_geocoding(m) for m in others]
        return answer

    def _zone(self, row: int) -> dict[str, Any]:
        return {key: str(self.zones.fields[key][row]) for key in ("type", "code", "name")}


def make_checker(
    zones: Sequence[str | Path] | None = None,
    ban: str | Path | None = None,
    addok: str | None = None,
    tolerance: float = TOLERANCE_M,
    min_score: float = MIN_SCORE,
) -> Checker:
    """A checker for zone files (the official 2024 QPV layer by default) and a BAN file or addok URL."""
    geocoder: Geocoder | None = None
    if addok or ban:  # the geocoder's libraries are imported only when there is one
        from .geocode import AddokGeocoder, BanGeocoder

        geocoder = AddokGeocoder(addok) if addok else BanGeocoder(str(ban))
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
    candidates: int = 1,
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
    return make_checker(zones, ban, addok, tolerance, min_score).check(address, lon, lat, candidates=candidates)


def _geocoding(match: Match) -> dict[str, Any]:
    return {
        "label": match.label,
        "score": match.score,
        "type": match.kind,
        "id": match.id,
        "housenumber": match.housenumber,
        "street": match.street,
        "postcode": match.postcode,
        "city": match.city,
        "citycode": match.citycode,
        "position": match.position,
        "lon": round(match.lon, 6),
        "lat": round(match.lat, 6),
    }


def format_answer(answer: dict[str, Any]) -> str:
    """The answer in French, for a person at a counter."""
    lines = []
    if answer["geocoding"]:
        lines.append(labels.ADDRESS_FOUND.format(**answer["geocoding"]))
        if answer.get("street_partly_in"):
            lines.append("  " + labels.STREET_PARTLY_IN[True])
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
    if len(answer.get("candidates") or []) > 1:
        lines.append(labels.CANDIDATES_TITLE)
        for rank, c in enumerate(answer["candidates"], 1):
            kind = labels.GEOCODE_TYPES.get(c["type"], c["type"])
            lines.append(labels.CANDIDATE_LINE.format(rank=rank, label=c["label"], type=kind, score=c["score"]))
    return "\n".join(lines)


def _type(zone: dict[str, Any]) -> str:
    name: str = labels.ZONE_TYPES.get(zone["type"], zone["type"])
    return name

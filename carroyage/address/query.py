"""A query checked before anything heavy is loaded: ``carroyage locate`` refuses a bad one at once.

Only the standard library here: the CLI imports this module before pandas, GDAL or the zones.
"""

from __future__ import annotations

import math

from .. import labels
from ..errors import InputError
from ..settings import MAX_ADDRESS_CHARS


def validate_query(address: str | None, lon: float | None, lat: float | None, geocoder: object | None) -> None:
    """Check a query before any data is loaded: an address and a geocoder, or a valid position.

    >>> validate_query(None, 2.30, 49.89, None)
    >>> validate_query(None, 2.30, None, None)
    Traceback (most recent call last):
    ...
    carroyage.errors.InputError: ni adresse ni position ; attendu une adresse, ou --lon et --lat
    """
    if address is not None and address.strip():
        if geocoder is None:
            raise InputError(f"une adresse à géocoder et aucun géocodeur ; {labels.GEOCODER_EXPECTED}")
        if len(address) > MAX_ADDRESS_CHARS:
            raise InputError(
                f"adresse de {labels.integer(len(address))} caractères ; "
                f"attendu {MAX_ADDRESS_CHARS} au plus (settings.MAX_ADDRESS_CHARS)"
            )
        return
    if lon is None or lat is None:
        raise InputError("ni adresse ni position ; attendu une adresse, ou --lon et --lat")
    check_position(lon, lat)


def check_position(lon: float, lat: float) -> None:
    """Refuse what is not a longitude and latitude in decimal degrees."""
    if not (math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
        raise InputError(
            f"position ({lon}, {lat}) invalide ; attendu une longitude et une latitude en degrés décimaux (WGS84)"
        )

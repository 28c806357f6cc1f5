"""One error root for the whole package.

Every error a user can cause derives from :class:`CarroyageError`; children also inherit the
built-in they resemble (as rasterio does), so ``except ValueError`` keeps working. The CLI turns
any of them into one line on stderr and exit code 2.

>>> issubclass(InputError, ValueError) and issubclass(InputError, CarroyageError)
True
"""

from __future__ import annotations


class CarroyageError(Exception):
    """Root of every error raised by carroyage."""


class InputError(CarroyageError, ValueError):
    """An input file or value is missing, malformed or inconsistent."""


class GridIdError(InputError):
    """A cell id is not an INSPIRE id ``CRS{epsg}RES{size}mN{y}E{x}`` on a regular grid."""


class RuleError(CarroyageError, ValueError):
    """A rule name or parameter is unknown or out of range."""


class OutputError(CarroyageError, OSError):
    """An output file could not be written."""


class AddressNotFound(CarroyageError, LookupError):
    """The geocoder found nothing resembling the address."""


class GeocodingError(CarroyageError, RuntimeError):
    """The geocoder could not be used (unreachable server, unreadable index)."""


class CarroyageWarning(UserWarning):
    """A value that is legal but implausible (a likely typo); the CLI prints it as one line."""

"""carroyage: France's géographie prioritaire (QPV) from 200 m income grids.

The public API of both wings is re-exported here, lazily (PEP 562): ``import carroyage`` costs
nothing, and ``carroyage.locate`` loads the address check without the delimitation engine.

>>> import carroyage
>>> carroyage.delimit.__module__, carroyage.locate.__module__
('carroyage.engine.delimit', 'carroyage.address.check')
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    # ground floor
    "CarroyageError": "errors",
    "InputError": "errors",
    "GridIdError": "errors",
    "RuleError": "errors",
    "OutputError": "errors",
    "AddressNotFound": "errors",
    "GeocodingError": "errors",
    "Geography": "geography",
    "read_geography": "geography",
    "is_geography": "geography",
    "read_layer": "layers",
    "read_official": "layers",
    # the engine
    "Grid": "engine.grid",
    "format_ids": "engine.grid",
    "parse_ids": "engine.grid",
    "CellTable": "engine.readers",
    "read_grid": "engine.readers",
    "RULES": "engine.rules",
    "Rule": "engine.rules",
    "get_rule": "engine.rules",
    "IncomeModel": "engine.income",
    "cluster_cells": "engine.clusters",
    "delimit": "engine.delimit",
    "prepare": "engine.delimit",
    "apply_rule": "engine.delimit",
    "sensitivity": "engine.sensitivity",
    "read_households": "engine.households",
    "grid_households": "engine.households",
    "delimit_households": "engine.households",
    "synthesise": "engine.synth",
    # around the QPV
    "quartier_vecu": "around.zones",
    "veille_active": "around.zones",
    "WatchSettings": "around.zones",
    "compare": "around.compare",
    "validate": "around.validate",
    # publishing
    "write_geography": "publish.output",
    "write_layers": "publish.output",
    "interactive_map": "publish.maps",
    "save_map": "publish.maps",
    "static_map": "publish.maps",
    # the address check
    "locate": "address.check",
    "make_checker": "address.check",
    "Checker": "address.check",
    "locate_csv": "address.batch",
    "load_zones": "address.lookup",
    "ZoneSet": "address.lookup",
    "BanGeocoder": "address.geocode",
    "AddokGeocoder": "address.geocode",
    # whole commands, from files to files
    "delimit_file": "jobs",
    "validate_file": "jobs",
    "zones_file": "jobs",
    "compare_files": "jobs",
    "sensitivity_file": "jobs",
    "map_file": "jobs",
    "indicators_file": "jobs",
    "delimit_households_file": "jobs",
    "grid_households_file": "jobs",
}

__all__ = [
    "AddokGeocoder",
    "AddressNotFound",
    "BanGeocoder",
    "CarroyageError",
    "CellTable",
    "Checker",
    "GeocodingError",
    "Geography",
    "Grid",
    "GridIdError",
    "IncomeModel",
    "InputError",
    "OutputError",
    "RULES",
    "Rule",
    "RuleError",
    "WatchSettings",
    "ZoneSet",
    "apply_rule",
    "cluster_cells",
    "compare",
    "compare_files",
    "delimit",
    "delimit_file",
    "delimit_households",
    "delimit_households_file",
    "format_ids",
    "get_rule",
    "grid_households",
    "grid_households_file",
    "indicators_file",
    "interactive_map",
    "is_geography",
    "load_zones",
    "locate",
    "locate_csv",
    "make_checker",
    "map_file",
    "parse_ids",
    "prepare",
    "quartier_vecu",
    "read_geography",
    "read_grid",
    "read_households",
    "read_layer",
    "read_official",
    "save_map",
    "sensitivity",
    "sensitivity_file",
    "static_map",
    "synthesise",
    "validate",
    "validate_file",
    "veille_active",
    "write_geography",
    "write_layers",
    "zones_file",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'carroyage' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from .address.batch import locate_csv
    from .address.check import Checker, locate, make_checker
    from .address.geocode import AddokGeocoder, BanGeocoder
    from .address.lookup import ZoneSet, load_zones
    from .around.compare import compare
    from .around.validate import validate
    from .around.zones import WatchSettings, quartier_vecu, veille_active
    from .engine.clusters import cluster_cells
    from .engine.delimit import apply_rule, delimit, prepare
    from .engine.grid import Grid, format_ids, parse_ids
    from .engine.households import delimit_households, grid_households, read_households
    from .engine.income import IncomeModel
    from .engine.readers import CellTable, read_grid
    from .engine.rules import RULES, Rule, get_rule
    from .engine.sensitivity import sensitivity
    from .engine.synth import synthesise
    from .errors import (
        AddressNotFound,
        CarroyageError,
        GeocodingError,
        GridIdError,
        InputError,
        OutputError,
        RuleError,
    )
    from .geography import Geography, is_geography, read_geography
    from .jobs import (
        compare_files,
        delimit_file,
        delimit_households_file,
        grid_households_file,
        indicators_file,
        map_file,
        sensitivity_file,
        validate_file,
        zones_file,
    )
    from .layers import read_layer, read_official
    from .publish.maps import interactive_map, save_map, static_map
    from .publish.output import write_geography, write_layers

"""carroyage: France's géographie prioritaire (QPV) from 200 m income grids.

The public API is re-exported here; implementations live in one module per stage.
"""

from .clusters import cluster_cells
from .delimit import Geography, delimit
from .errors import CarroyageError, GridIdError, InputError, OutputError, RuleError
from .grid import Grid, format_ids, parse_ids
from .income import IncomeModel
from .readers import CellTable, read_grid
from .rules import RULES, Rule, get_rule

__version__ = "0.1.0"

__all__ = [
    "RULES",
    "CarroyageError",
    "CellTable",
    "Geography",
    "Grid",
    "GridIdError",
    "IncomeModel",
    "InputError",
    "OutputError",
    "Rule",
    "RuleError",
    "cluster_cells",
    "delimit",
    "format_ids",
    "get_rule",
    "parse_ids",
    "read_grid",
]

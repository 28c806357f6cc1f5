"""Paths to the data shipped with carroyage (see ``data/PROVENANCE.md``).

In a source checkout (and an editable install) the files live in the repository's ``data/``; a
built wheel carries the same files in ``carroyage/_data``.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
DATA_DIR = _HERE / "_data" if (_HERE / "_data").is_dir() else _HERE.parent / "data"

AMIENS_2019 = DATA_DIR / "filosofi2019_200m_amiens.csv"
AMIENS_2021 = DATA_DIR / "filosofi2021_200m_amiens_inc.csv"
QPV_2024 = DATA_DIR / "qpv2024_france.geojson"
QPV_2024_STATS = DATA_DIR / "qpv2024_stats_france.csv"
AMIENS_COMMUNES = DATA_DIR / "communes_amiens_metropole.geojson"
BAN_FIXTURE = DATA_DIR / "ban" / "adresses-80-extrait.csv"

VALIDATION_DIR = DATA_DIR / "validation"
VALIDATION_CITIES = {
    "amiens": AMIENS_2019,
    "saint-quentin": VALIDATION_DIR / "saint-quentin" / "filosofi2019_200m.csv",
    "abbeville": VALIDATION_DIR / "abbeville" / "filosofi2019_200m.csv",
}
"""Each validation city's Filosofi 2019 grid; ``VALIDATION_DIR / city`` holds its official 2024
perimeters (``qpv2024.gpkg``) and INSEE's figures for them (``qpv2024_stats.csv``)."""

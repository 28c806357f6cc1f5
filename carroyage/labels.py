"""Every French string a user reads, once: zone types, answers, reasons, map layers, numbers.

Code, docs and API field names stay English; what a planner, an elected official or the public
reads is French and comes from here, so that the CLI, the web page, the maps and the files agree.

>>> ZONE_TYPES["quartier_vecu"], STATUS["uncertain"]
('quartier vécu', 'INCERTAIN')
>>> metres(-1234.4)
'1\u202f234 m'
"""

from __future__ import annotations

THOUSANDS = "\u202f"  # French thousands separator: a narrow no-break space

# -- zones and answers ---------------------------------------------------------------------------
ZONE_TYPES = {"qpv": "QPV", "quartier_vecu": "quartier vécu", "veille_active": "veille active"}
STATUS = {"in": "DANS la zone", "out": "HORS zone", "uncertain": "INCERTAIN"}
"""One answer, as a person at a counter reads it."""
STATUS_SHORT = {"in": "dans la zone", "out": "hors zone", "uncertain": "incertain", "invalid": "invalide"}
"""The same in a table or a summary."""
NEAR_BOUNDARY = "à moins de {tolerance:g} m d'une limite"
WEAK_GEOCODING = "géocodage incertain (score {score:.2f})"
BAD_POSITION = "lon/lat invalides : degrés décimaux WGS84 attendus"
EMPTY_ADDRESS = "adresse vide"
NO_POSITION_NOR_ADDRESS = "ni position valide ni adresse"
ADDRESS_NOT_FOUND = "adresse introuvable"
MALFORMED_LINE = "ligne mal formée : {fields} champs au lieu de {width}"
ADDRESS_FOUND = "Adresse trouvée : {label} (score {score:.2f})"
POSITION = "Position : {lon:.6f}, {lat:.6f} (WGS84)"
ANSWER = "Réponse : {status}"
INSIDE, OUTSIDE = "à l'intérieur", "à l'extérieur"
ZONE_LINE = "  {type} {code} {name} : {where}, à {distance} de la limite"
NEAREST_LINE = "  Zone la plus proche : {type} {code} {name}, à {distance}"

# -- veille active ---------------------------------------------------------------------------------
WATCH_REASONS = {
    "previous": "ancien périmètre",
    "small": "population insuffisante",
    "near": "revenu proche du seuil",
    "local": "désignation locale",
}
PREVIOUS_GEOGRAPHY = "géographie précédente"

# -- maps ------------------------------------------------------------------------------------------
MAP_TITLE = "Géographie prioritaire"
LAYERS = {
    "qpv": "Quartiers prioritaires (calculés)",
    "quartier_vecu": "Quartiers vécus",
    "veille_active": "Veille active",
    "cells": "Carreaux 200 m : part sous le seuil",
    "official": "QPV officiels",
}
POPUPS = {
    "qpv": [
        ("code", "Code"),
        ("name", "Nom"),
        ("official", "QPV officiel recouvert"),
        ("population", "Habitants"),
        ("median_income", "Revenu médian (€/an)"),
        ("low_income_share", "Part sous le seuil"),
        ("estimated", "Chiffres"),
    ],
    "quartier_vecu": [("code", "QPV"), ("distance_m", "Distance (m)"), ("facilities", "Équipements rejoints")],
    "veille_active": [("reason", "Motif"), ("code", "Code"), ("name", "Nom"), ("population", "Habitants")],
    "cells": [("idcar_200m", "Carreau"), ("population", "Habitants"), ("low_income_share", "Part sous le seuil")],
    "official": [("code", "Code"), ("name", "Nom")],
}
"""(property, French label) shown in each layer's popup."""
FIGURES = {True: "estimés", False: "exacts"}
ESTIMATED_NOTE = "Chiffres estimés à partir du carroyage public"
ESTIMATED_SHORT = "Chiffres estimés."
THRESHOLD_NOTE = "Seuil de revenu : {value} €/an"
SOURCES = "Sources : INSEE Filosofi (carroyage 200 m), ANCT (QPV) ; calcul carroyage. "


def metres(value: float) -> str:
    """A distance in whole metres, French style, sign dropped (``1 234 m``)."""
    return f"{abs(value):,.0f} m".replace(",", THOUSANDS)

"""Every French string a user reads, once: zone types, answers, reasons, map layers, numbers.

Code, docs and API field names stay English; what a planner, an elected official or the public
reads is French and comes from here, so that the CLI, the web page, the maps and the files agree.

Conventions for every message a user reads (CLI help, stage lines, summaries, errors, warnings):

* French. Names of options (``--national-median``), columns (``ind_snv``), layers, file paths,
  CRS codes (``EPSG:3035``) and codes such as ``QN08003M`` stay exactly as they are typed.
* Typography: a plain space before ``:`` ``;`` ``?`` ``!`` and none before ``,`` ``.``
  (``Réponse : DANS la zone``; ``... ; attendu ...``); straight apostrophes.
* Numbers that are results go through :func:`integer`, :func:`decimal`, :func:`percent`,
  :func:`euros` (``11 274``, ``63,1 %``). Values a user types on the command line (an option's
  default or range in the help, the value echoed back in an error, ``22040``) keep the syntax
  the command reads (``0.5``, never ``0,5``).
* A file's path is written bare, never quoted, so that it can be copied: first on the line
  when the message is about that file (``grille.csv : ligne 6 : ...``), bare inside a sentence
  too. A value read from a file is quoted with straight apostrophes, as ``repr`` does (``'12 000'``).
* An error says what it found, then ``; attendu ...`` (what was expected), in one line.
* Wording used in more than one place lives here, once; a one-off error sentence stays at its
  raise site, in French; an option's help text stays beside the option (it is written once).
* Every line the CLI prints on stderr starts with one of :data:`ERROR`, :data:`WARNING`, :data:`NOTE`.

>>> ZONE_TYPES["quartier_vecu"], STATUS["uncertain"]
('quartier vécu', 'INCERTAIN')
>>> metres(-1234.4)
'1\u202f234 m'
"""

from __future__ import annotations

import errno
from collections.abc import Iterable

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
UNCLOSED_QUOTE = "guillemet non fermé : la ligne est lue seule, les suivantes gardent leur place"
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
    "qpv": "Quartiers candidats (calculés, non officiels)",
    "quartier_vecu": "Quartiers vécus",
    "veille_active": "Veille active",
    "cells": "Carreaux 200 m : part sous le seuil",
    "official": "QPV officiels (ANCT)",
    "communes": "Limites et noms des communes",
}
POPUPS = {
    "qpv": [
        ("population", "Habitants"),
        ("median_income", "Revenu médian"),
        ("low_income_share", "Part sous le seuil"),
        ("official", "QPV officiel recouvert"),
        ("estimated", "Chiffres"),
    ],
    "quartier_vecu": [("code", "Quartier"), ("distance_m", "Distance"), ("facilities", "Équipements rejoints")],
    "veille_active": [("reason", "Motif"), ("code", "Code"), ("name", "Nom"), ("population", "Habitants")],
    "cells": [
        ("idcar_200m", "Carreau"),
        ("population", "Habitants"),
        ("low_income_share", "Part sous le seuil"),
        ("median_income", "Revenu médian estimé"),
    ],
    "official": [("code", "Code"), ("name", "Nom")],
}
"""(property, French label) shown in each layer's popup."""
FIGURES = {True: "estimés (carroyage public)", False: "exacts"}
ESTIMATED_NOTE = "Chiffres estimés à partir du carroyage public"
ESTIMATED_SHORT = "Chiffres estimés."
ESTIMATED_SUMMARY = "chiffres ESTIMÉS à partir du carroyage public (méthode : docs/method.md)"
THRESHOLD_NOTE = "Seuil de revenu : {value} par an"
SOURCES = "Sources : INSEE Filosofi (carroyage 200 m), ANCT (QPV) ; calcul carroyage. "


def metres(value: float) -> str:
    """A distance in whole metres, French style, sign dropped (``1 234 m``)."""
    return integer(abs(value)) + " m"


# -- tableaux de bord (carroyage indicators) -------------------------------------------------------
TABLEAU_TITLE = "Tableau de bord des quartiers"
INDICATOR_LABELS = {
    "residents": "Habitants",
    "households": "Ménages",
    "one_person_share": "Ménages d'une personne",
    "large_household_share": "Ménages de 5 personnes ou plus",
    "single_parent_share": "Familles monoparentales",
    "owner_share": "Ménages propriétaires",
    "collective_share": "Ménages en logement collectif",
    "mean_living_standard": "Niveau de vie moyen (€ par an et par UC)",
    "household_poverty_rate": "Taux de pauvreté des ménages",
    "low_income_share": "Part des habitants sous le seuil du décret",
    "age_0_3_share": "Part des 0-3 ans",
    "age_4_5_share": "Part des 4-5 ans",
    "age_6_10_share": "Part des 6-10 ans",
    "age_11_17_share": "Part des 11-17 ans",
    "age_18_24_share": "Part des 18-24 ans",
    "age_25_39_share": "Part des 25-39 ans",
    "age_40_54_share": "Part des 40-54 ans",
    "age_55_64_share": "Part des 55-64 ans",
    "age_65_79_share": "Part des 65-79 ans",
    "age_80p_share": "Part des 80 ans ou plus",
    "age_unknown_share": "Part des habitants d'âge inconnu",
    "imputed_share": "Part des habitants en carreaux imputés",
    "grid_coverage": "Part de la surface couverte par le carroyage",
    "insee_population": "Population municipale (INSEE)",
    "insee_households": "Ménages (INSEE)",
    "insee_poverty_rate": "Taux de pauvreté (INSEE, individus)",
    "population_ratio": "Habitants du carroyage / population INSEE",
    "poverty_ratio": "Taux de pauvreté des ménages / taux INSEE",
}
"""The French name of each indicator (the CSV's English column names are the keys)."""
TABLEAU_COLUMNS = {
    "kind": "Territoire",
    "zone_type": "Type de zone",
    "code": "Code",
    "name": "Nom",
    "communes": "Communes",
    "method": "Méthode",
    "low_income_method": "Méthode (part sous le seuil)",
    "fragile": "Chiffres fragiles",
    "fragile_reason": "Motif de fragilité",
}
TERRITORY_KINDS = {
    "zone": "zone",
    "commune": "commune",
    "epci": "Ensemble des communes de référence",
    "grid": "Ensemble du carroyage",
}
TERRITORY_SHORT = {"epci": "Communes de référence", "grid": "Carroyage entier"}
"""The same, as column headings."""
ZONE_TYPE_OTHER = "zone"
METHODS = {"counted": "compté", "area-weighted": "pondéré par la surface", "estimated": "estimé", "insee": "INSEE"}
"""How a figure was obtained, as the tableau says it."""
FRAGILE = "Chiffres fragiles"
FRAGILE_REASONS = {"few households": "moins de 11 ménages", "mostly imputed": "carreaux majoritairement imputés"}
NOT_AVAILABLE = "n.d."
CHANGE = "Évolution"
INDICATOR_HEADER = "Indicateur"
METHOD_HEADER = "Méthode"
CONTENTS = "Sommaire"
REFERENCES_TITLE = "Territoires de référence"
TABLEAU_NOTE = (
    "Chiffres du carroyage INSEE Filosofi (200 m) : un carreau coupé par une zone y compte pour la "
    "part de sa surface qui est dedans (habitants répartis uniformément sur le carreau). La part sous "
    "le seuil du décret est estimée (le carroyage public ne donne pas de médiane par carreau). Les "
    "figures sont fragiles sous 11 ménages ou quand la majorité des habitants sont dans des carreaux "
    "imputés pour le secret statistique. Le carroyage compte les ménages fiscaux : sa population est "
    "inférieure à la population municipale de l'INSEE."
)
THRESHOLD_LINE = "Seuil du décret ({vintage}) : {value} €/an de niveau de vie"
GRID_LINE = "Carroyage {vintage} : {path}"
MANIFEST_TITLE = "Manifeste"
SUMMARY_HEADINGS = {
    "kind": "territoire",
    "code": "code",
    "name": "nom",
    "residents": "habitants",
    "insee": "INSEE",
    "ratio": "rapport",
    "fragile": "fragile",
}
"""The columns of the summary ``carroyage indicators`` prints."""
SUMMARY_KINDS = {"zone": "zone", "commune": "commune", "epci": "EPCI", "grid": "carroyage"}
FRAGILE_MARK = "oui"


def _french(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals, French separators and a true minus sign (never ``-0``)."""
    text = f"{round(value, digits) + 0.0:,.{digits}f}"
    return text.replace(",", THOUSANDS).replace(".", ",").replace("-", "\u2212")


def integer(value: float) -> str:
    """A whole number, French style (``11 274``; ``n.d.`` when missing).

    >>> integer(11274.3), integer(float("nan"))
    ('11\u202f274', 'n.d.')
    """
    return NOT_AVAILABLE if value != value else _french(value, 0)


def decimal(value: float, digits: int = 2) -> str:
    """A decimal number with a decimal comma (``0,77``)."""
    return NOT_AVAILABLE if value != value else _french(value, digits)


def percent(value: float, digits: int = 1) -> str:
    """A share as a French percentage (``47,3 %``, narrow no-break space before ``%``).

    >>> percent(0.4732)
    '47,3\u202f%'
    """
    return NOT_AVAILABLE if value != value else _french(100 * value, digits) + THOUSANDS + "%"


def euros(value: float) -> str:
    """An amount in whole euros (``19 234 €``)."""
    return NOT_AVAILABLE if value != value else integer(value) + THOUSANDS + "€"


def signed(value: float, unit: str = "count") -> str:
    """A change, signed: ``+1 234``, ``−2,1 pts`` (shares change by percentage points), ``+310 €``.

    >>> signed(-0.021, "share")
    '\u22122,1\u202fpts'
    """
    if value != value:
        return NOT_AVAILABLE
    sign = "+" if value > 0 else ""
    if unit == "share":
        return sign + decimal(100 * value, 1) + THOUSANDS + "pts"
    return sign + (euros(value) if unit == "euros" else integer(value))


# -- published maps, page and GIS files (issue 14) --------------------------------------------------
CANDIDATE = "Quartier candidat {code}"
"""A computed quartier's heading: never "QPV", which only an official perimeter is."""
NO_OFFICIAL = "aucun"
MAP_SUBTITLE = "{grid} · règle {rule} · calculé le {date}"
GRID_VINTAGE = "carroyage Filosofi {vintage}"
GRID_UNKNOWN = "carroyage 200 m"
LEGEND = "Légende"
CELLS_SCALE = "Part des habitants sous le seuil (carreaux)"
CONTEXT_NOTE = "Fond hors ligne : limites communales"
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
WRITTEN = "écrit : {path}"
SELF_CONTAINED = " (autonome, sans réseau)"
MAP_OUT_FORMAT = "{path} : format de carte inconnu ; attendu un nom en .html, .png ou .pdf"
STATIC_FORMAT = "{path} : format de carte statique inconnu ; attendu un nom en .png ou .pdf"
UNKNOWN_CRS = "{value} : système de coordonnées inconnu ; attendu un code EPSG, par ex. 2154 ou EPSG:2154"
OUTSIDE_CRS = "{path} : la couche {layer} sort du domaine d'EPSG:{epsg} ; attendu un système couvrant le territoire"
CRS_ELSEWHERE = (
    "{path} : EPSG:{epsg} ({name}) ne couvre pas le territoire de la géographie ; une faute de frappe ? "
    "(métropole : 2154, Lambert-93)"
)
VERSION = "carroyage {version}"
COMPARE_LAYERS = {
    "new": "Quartiers entrants",
    "modified": "Quartiers modifiés",
    "unchanged": "Quartiers inchangés",
    "left": "Quartiers sortants",
}
"""Titles of the ``carroyage compare`` layers in the GeoPackage's QGIS styles."""


def french_date(iso: str) -> str:
    """An ISO date as French prose (``2026-11-22`` → ``22 novembre 2026``; ``1er`` for the first).

    >>> french_date("2024-03-01")
    '1er mars 2024'
    """
    year, month, day = (int(part) for part in str(iso)[:10].split("-"))
    return f"{'1er' if day == 1 else day} {MONTHS[month - 1]} {year}"


# -- address check: how a geocoded answer was reached (issue 15) ------------------------------------
ADDRESS_TOO_LONG = "adresse trop longue : {limit} caractères au plus"
POSITIONS = {
    "interpolated": "interpolée entre les numéros voisins",
    "street_centre": "centre de la voie",
    "commune_centre": "centre de la commune",
}
"""Where a street or commune answer is placed."""
NUMBER_NOT_FOUND = "numéro absent de la voie : position de la voie ({position})"
NO_NUMBER = "adresse sans numéro : position de la voie ({position})"
STREET_IN_ONE_ZONE = "numéro non trouvé, mais toute la voie est dans la zone {code}"
STREET_CROSSES = "numéro non trouvé et la voie traverse une limite de zone"
COMMUNE_ONLY = "commune seule : position du centre de la commune"
COMMUNE_HAS_ZONES = "commune seule, et la commune compte des zones"
OTHER_REPETITION = "indice de répétition absent : {housenumber} retenu"
STREET_PARTLY_IN = {True: "la voie traverse une limite de zone", False: ""}
CANDIDATE_LINE = "  {rank}. {label} ({type}, score {score:.2f})"
CANDIDATES_TITLE = "Candidats :"
GEOCODE_TYPES = {"housenumber": "numéro", "street": "voie", "municipality": "commune"}

# -- address check: locate, locate-csv and the service's messages (issue 14) -----------------------
GEOCODER_EXPECTED = "attendu un fichier BAN (--ban) ou un serveur addok (--addok)"
"""What an address needs to be geocoded: said by ``locate``, ``locate-csv`` and the service."""
ADDRESS_NOT_FOUND_FOR = ADDRESS_NOT_FOUND + " : {address!r}"
MISSING_COLUMN = "{path} : colonne {name!r} absente{option} ; attendu l'une des colonnes {columns}"
"""A column named by an option or a form field that the file's header does not have."""
NOT_UTF8 = "texte non UTF-8{detail} ; attendu un fichier enregistré en UTF-8"
HEADER_LINE = "une ligne d'en-tête"
"""What an empty CSV should have held (:data:`EMPTY_FILE`)."""
PARAMETER_MISSING = "paramètre manquant : {name}"
ROWS_SUMMARY = "{rows} : {counts}"
"""The closing line of ``locate-csv``: rows, then the count of each status."""
DROPPED_ZONES = "zones sans surface écartées ({count}) : {zones}"


def lines(count: int) -> str:
    """A number of lines, French style (``1 ligne``, ``2 000 lignes``).

    >>> lines(1), lines(2000)
    ('1 ligne', '2\u202f000 lignes')
    """
    return integer(count) + (" ligne" if count < 2 else " lignes")


# -- carroyage serve: refusals (issue 13) -----------------------------------------------------------
UPLOAD_TOO_LARGE = "fichier trop volumineux : {limit} Mo au plus"
REQUEST_TOO_SLOW = "requête trop lente : elle doit parvenir en {seconds} s au plus"
HEADERS_TOO_LARGE = "en-têtes de requête trop longs : {limit} octets au plus"
TOO_MANY_CONNECTIONS = "service saturé : trop de connexions ouvertes, réessayez dans un instant"
SERVICE_DOWN = "Le service ne répond pas."


def megabytes(count: float) -> str:
    """A size in bytes as French megabytes, with no more decimals than it needs.

    >>> megabytes(50e6), megabytes(2e5), megabytes(1.25e9)
    ('50', '0,2', '1\u202f250')
    """
    value = count / 1e6
    digits = next(d for d in range(4) if round(value, d) == round(value, 3))
    return _french(value, digits)


# -- synthetic households and exact grids (issue 16) ------------------------------------------------
SYNTHETIC_NOTE = (
    "Ménages synthétiques tirés au hasard (graine {seed}) pour ressembler au carroyage {grid} : "
    "ils ne décrivent aucun ménage réel."
)
SECRECY_NOTE = (
    "Secret statistique : les carreaux de moins de {minimum} ménages ne sont pas diffusés seuls ; "
    "leurs valeurs sont réparties sur un groupe de carreaux (i_est_200 = 1)."
)

TABLEAU_LINK = "Tableau de bord de {code} →"
"""The fiche's link to the official QPV's row in the tableau de bord."""


# -- the command line: help, usage errors, file errors (issue 14) -----------------------------------
APP_HELP = "Géographie prioritaire (QPV) calculée sur les carroyages de revenus INSEE à 200 m."
VERSION_HELP = "Afficher la version de carroyage et quitter."
HELP_HELP = "Afficher cette aide et quitter."
ERROR = "carroyage : erreur : "
WARNING = "carroyage : avertissement : "
NOTE = "carroyage : note : "
INTERRUPTED = "carroyage : interrompu ; les fichiers inachevés ont été supprimés"
NO_SUCH_FILE = "{path} : fichier introuvable"
STAGE = "  [{seconds} s] {message}…"
"""A stage line on stderr: elapsed seconds (French decimal comma), then what starts."""
READING = "lecture de {path}"
WRITING = "écriture de {path}"
"""The stage lines of a command that reads its input and writes its output."""
A_GEOGRAPHY = "une géographie écrite par carroyage delimit"
"""What a command reading a geography's GeoPackage expects (``... ; attendu {A_GEOGRAPHY}``)."""
UNREADABLE = "{path} : fichier illisible ({reason}) ; attendu {expected}"
"""A file its reader cannot open: the library's reason (its first line), then what was expected."""
OUTPUT_FORMAT = "{path} : format de sortie inconnu ; attendu un nom en {suffixes}"
"""An output name whose suffix no writer knows (``{suffixes}``: ``.gpkg ou .parquet``)."""

HELP_USAGE = "Utilisation : "
USAGE_ARGUMENTS = {
    "address": "ADRESSE",
    "source": "FICHIER",
    "geography": "GÉOGRAPHIE",
    "old": "ANCIENNE",
    "new": "NOUVELLE",
    "households": "MÉNAGES",
    "grid": "CARROYAGE",
    "zones": "ZONES",
    "geopackage": "GEOPACKAGE",
}
"""Each command argument's name on the usage line (``carroyage delimit [OPTIONS] CARROYAGE``)."""
HELP_COMMAND_METAVAR = "COMMANDE [ARGUMENTS]..."
HELP_HEADINGS = {"Arguments": "Arguments", "Options": "Options", "Commands": "Commandes"}
HELP_BUILT_IN = {"Show this message and exit.": HELP_HELP}
"""Help texts that click writes itself, in French."""
HELP_DEFAULT = "par défaut : {value}"
HELP_REQUIRED = "obligatoire"
HELP_ENVVAR = "variable d'environnement : {value}"
HELP_RANGES = {"between": "de {low} à {high}", "at_least": "{low} au moins", "at_most": "{high} au plus"}
METAVARS = {
    "path": "FICHIER",
    "list[Path]": "FICHIER",
    "str": "TEXTE",
    "list[str]": "TEXTE",
    "float": "NOMBRE",
    "list[float]": "NOMBRE",
    "float range": "NOMBRE",
    "int": "ENTIER",
    "list[int]": "ENTIER",
    "int range": "ENTIER",
}
"""What the help shows after an option for the value it takes, by its Python type."""

USAGE = {
    "missing_argument": "argument manquant : {name}",
    "missing_option": "option obligatoire manquante : {name}",
    "no_such_option": "option inconnue : {name}",
    "no_such_command": "commande inconnue : {name}",
    "did_you_mean": " ; vouliez-vous dire {names} ?",
    "missing_command": "commande manquante ; voir carroyage --help",
    "needs_value": "{name} : valeur manquante",
    "takes_no_value": "{name} : cette option ne prend pas de valeur",
    "extra_arguments": "en trop sur la ligne de commande : {names}",
    "bad_value": "{name} {value} : {expected}",
    "invalid": "{name} : valeur invalide ({message})",
}
"""A mistake on the command line, in one line."""
VALUE_EXPECTED = {
    "int_parsing": "attendu un nombre entier",
    "int_from_float": "attendu un nombre entier",
    "float_parsing": "attendu un nombre (avec un point décimal : 0.5)",
    "bool_parsing": "attendu true ou false",
    "greater_than_equal": "attendu un nombre supérieur ou égal à {ge}",
    "greater_than": "attendu un nombre supérieur à {gt}",
    "less_than_equal": "attendu un nombre inférieur ou égal à {le}",
    "less_than": "attendu un nombre inférieur à {lt}",
}
"""What an option's value should have been, by the type of the validation error."""
EXPECTED_RANGES = {
    "between": "attendu un nombre de {low} à {high}",
    "strictly_between": "attendu un nombre strictement entre {low} et {high}",
}
"""What a value outside a closed or an open range should have been (rule parameters)."""
COUNT_EXPECTED = "attendu un nombre ≥ 0"
"""What a count or an amount read from a file should have been (grids, tableaux' extra columns)."""


def one_of(names: Iterable[str]) -> str:
    """Choices as French prose, for ``attendu ...`` (``rook ou queen``, ``a, b ou c``).

    >>> one_of(["seed", "decree-2014"]), one_of("abc")
    ('seed ou decree-2014', 'a, b ou c')
    """
    choices = list(names)
    return ", ".join(choices[:-1]) + " ou " + choices[-1] if len(choices) > 1 else "".join(choices)


ROW_WORDS = {"line": "ligne", "row": "ligne", "feature": "entité"}
"""How an error numbers the rows of a file: CSV lines, table rows, GIS features."""
INPUT_WHAT = {"an income grid": "un carroyage de revenus", "one row per household": "une ligne par ménage"}
"""What an input file should hold, as its readers describe it (their English phrases, until phase 2)."""
INPUT_FORMAT = "{path} : format {suffix} inconnu pour {what} ; attendu {expected}"
EMPTY_FILE = "{path} : fichier vide ; attendu {what}"
OUTPUT_IS_INPUT = "{path} : la sortie est aussi une entrée ; attendu un autre nom de fichier"
CANNOT_WRITE = "{path} : écriture impossible ({reason})"
OS_ERRORS = {
    "EACCES": "permission refusée",
    "EPERM": "opération non permise",
    "ENOENT": "fichier ou dossier introuvable",
    "ENOTDIR": "un élément du chemin n'est pas un dossier",
    "EISDIR": "c'est un dossier",
    "EEXIST": "le fichier existe déjà",
    "ENOSPC": "plus de place sur le disque",
    "EDQUOT": "quota de disque dépassé",
    "EROFS": "système de fichiers en lecture seule",
    "ENAMETOOLONG": "nom de fichier trop long",
    "EMFILE": "trop de fichiers ouverts",
}
"""The file system's refusals, by errno name (the system's own text for the others)."""


def os_reason(error: OSError) -> str:
    """Why the file system refused, in French when the errno is a usual one.

    >>> os_reason(PermissionError(13, "Permission denied"))
    'permission refusée'
    """
    name = errno.errorcode.get(error.errno or 0, "")
    return OS_ERRORS.get(name) or str(error.strerror or error)


# -- household microdata (carroyage/engine/households.py) -----------------------------------------

BAD_ROW_REASONS = {
    "missing_coordinates": "coordonnées manquantes",
    "outside_area": "hors du domaine du système de coordonnées",
    "missing_income": "revenu manquant ou infini",
    "negative_income": "revenu négatif",
    "missing_persons": "nombre de personnes manquant",
    "negative_persons": "nombre de personnes négatif",
    "invalid_persons": "nombre de personnes nul, fractionnaire ou infini",
    "invalid_uc": "unités de consommation invalides (uc < 1, ou under14 hors de 0 .. personnes − 1)",
}
"""Why a household row is left out, by the manifest's key (``inputs.households.bad_rows``)."""
HOUSEHOLD_ROWS_USABLE = "ménages : {rows} lignes, toutes utilisables"
HOUSEHOLD_ROWS_LEFT_OUT = "ménages : {bad} lignes sur {rows} écartées ({share}) : {detail}"
TOO_MANY_BAD_HOUSEHOLDS = (
    "{path} : {share} des {rows} lignes de ménages sont inutilisables ({detail}) ; "
    "attendu au plus {limit} (settings.HOUSEHOLDS_MAX_BAD_SHARE)"
)

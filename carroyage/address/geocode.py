"""Geocoding on the Base Adresse Nationale: a local index of the BAN CSV, or an addok server.

The BAN is published per department as ``adresses-DD.csv.gz`` (semicolon-separated; docs/facts.md,
"Address checks"). Its index is built once and cached as Parquet next to the file (or in the user
cache directory when that folder is read-only); it is keyed on the file's content
(sha256), so it is rebuilt whenever the file changes, even keeping its size and date.

Matching respects the whole address:

* the postcode and the commune (name, old commune name or INSEE code) choose the block of streets
  searched; a postcode or commune the index does not know (another department) gives ``None``
  (not found) rather than a street elsewhere, a wrong one within the department a penalty;
* the street is fuzzy-matched (rapidfuzz) within that block only;
* a house number is taken only if the street has it: otherwise the answer is the street
  (``kind = "street"``), placed between the neighbouring numbers or at the street's centre, and
  ``position`` says which; a query with a commune and no street answers the ``municipality``;
* a score below :data:`carroyage.settings.GEOCODE_FLOOR` is no answer.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rapidfuzz import fuzz, process

from ..errors import GeocodingError, InputError
from ..files import atomic_path
from ..labels import NO_SUCH_FILE
from ..manifest import sha256
from ..settings import CANDIDATES, GEOCODE_FLOOR, STREET_MIN_SIMILARITY
from .normalise import STOP_WORDS, STREET_TYPES, ParsedAddress, normalise, parse_many, too_long

BAN_COLUMNS = ("id", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune", "lon", "lat")
OPTIONAL_COLUMNS = ("nom_ancienne_commune", "code_insee_ancienne_commune", "nom_ld", "x", "y")
INDEX_VERSION = "3"
NO_NUMBER = -1  # ``numero`` of a BAN row without a house number (an empty field)
# score factors
OTHER_REPETITION = 0.9  # "12 bis" asked, only "12" (or the reverse): the same number, said so
STREET_LEVEL = 0.9  # the number is not on the street: the street's position
MUNICIPALITY = 0.8  # a commune alone
WRONG_POSTCODE = 0.9  # the commune is known but not with that postcode
UNKNOWN_CODE = 0.8  # a postcode of the department the index does not know
UNKNOWN_CITY = 0.8  # a commune name the index does not know (may be a lieu-dit or a typo)
FUZZY_CITY = 0.95  # a commune name recognised with a typo
OTHER_TYPE = 0.9  # "rue X" asked, "impasse X" found
AMBIGUOUS = 0.8  # no commune given and the street exists in several communes


@dataclass(frozen=True)
class Match:
    """A geocoded address: position (WGS84), label, score in [0, 1] and kind.

    ``kind`` is ``housenumber``, ``street`` or ``municipality`` (addok's ``type``). For a street
    answer ``position`` says where it is: ``interpolated`` between the neighbouring numbers or
    ``street_centre``; ``note`` says why an answer is not the exact address.
    """

    lon: float
    lat: float
    label: str
    score: float
    kind: str
    id: str = ""
    housenumber: str = ""
    name: str = ""
    street: str = ""
    postcode: str = ""
    city: str = ""
    citycode: str = ""
    oldcity: str = ""
    context: str = ""
    importance: float = 0.0
    x: float = math.nan
    y: float = math.nan
    position: str = ""  # "", interpolated, street_centre, commune_centre
    note: str = ""  # other_repetition, number_not_found, ...
    street_code: int = -1  # the index's street (for street_partly_in); -1: none or unknown


class Geocoder(Protocol):
    """Anything that geocodes one address: :class:`BanGeocoder`, :class:`AddokGeocoder`..."""

    def geocode(self, address: str) -> Match | None: ...


class BanGeocoder:
    """Geocode addresses on a BAN CSV file (``adresses-DD.csv`` or ``.csv.gz``).

    Parameters
    ----------
    path : str or Path
        The BAN file.
    cache_dir : str or Path, optional
        Where to keep the index when the file's folder is read-only (default: the user cache).
    """

    def __init__(self, path: str | Path, cache_dir: str | Path | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(NO_SUCH_FILE.format(path=self.path) + " (adresses BAN)")
        self.cache_dir = (
            Path(cache_dir)
            if cache_dir
            else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "carroyage"
        )
        self._prepare(self._load_index())

    # -- index -----------------------------------------------------------------------------
    def _stamp(self) -> str:
        # the file's content, not its size and date: an edited file that keeps both is re-indexed
        return f"{INDEX_VERSION}:{sha256(self.path)}"

    def index_paths(self) -> list[Path]:
        """Where the index is cached: beside the file, else in the user cache."""
        beside = self.path.with_name(self.path.name + ".carroyage-index.parquet")
        key = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]
        return [beside, self.cache_dir / f"ban-{key}.parquet"]

    def _load_index(self) -> pa.Table:
        stamp = self._stamp()
        for candidate in self.index_paths():
            if candidate.is_file():
                try:
                    # ParquetFile, not read_table (which imports pandas and Arrow's dataset layer)
                    opened = pq.ParquetFile(candidate)
                    if (opened.schema_arrow.metadata or {}).get(b"carroyage_stamp", b"").decode() == stamp:
                        return opened.read()
                except (OSError, pa.ArrowException):
                    continue
        table = self._build_index()
        for candidate in self.index_paths():
            try:
                candidate.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(candidate) as temporary:
                    pq.write_table(table.replace_schema_metadata({"carroyage_stamp": stamp}), temporary)
                break
            except OSError:  # a read-only folder (OutputError is one too): the user cache
                continue
        return table

    def _build_index(self) -> pa.Table:
        try:
            with pacsv.open_csv(self.path, parse_options=pacsv.ParseOptions(delimiter=";")) as probe:
                present = set(probe.schema.names)
            optional = [c for c in OPTIONAL_COLUMNS if c in present]
            text = ("id", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune", *optional)
            table = pacsv.read_csv(
                self.path,
                parse_options=pacsv.ParseOptions(delimiter=";"),
                convert_options=pacsv.ConvertOptions(
                    include_columns=[*BAN_COLUMNS, *optional],
                    column_types={c: pa.string() for c in text if c not in ("x", "y")},
                    strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, KeyError) as exc:
            raise InputError(
                f"{self.path} : pas un fichier d'adresses BAN ({str(exc).splitlines()[0]}) ; "
                f"attendu les colonnes {', '.join(BAN_COLUMNS)}, séparées par des points-virgules"
            ) from exc
        n = table.num_rows

        def numbers(name: str, kind: pa.DataType) -> pa.Array:
            try:
                return pc.cast(table[name], kind)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                reason = str(exc).splitlines()[0]
                raise InputError(
                    f"{self.path} : colonne {name} : valeurs non numériques ({reason}) ; attendu des nombres"
                ) from exc

        def column(name: str, kind: pa.DataType = pa.string()) -> pa.Array:
            if name in table.column_names:
                values = table[name].combine_chunks()
                return pc.fill_null(values.cast(kind), "" if kind == pa.string() else math.nan)
            return pa.array([""] * n if kind == pa.string() else np.full(n, math.nan), kind)

        street_key = pc.binary_join_element_wise(
            column("nom_voie"), column("code_postal"), column("code_insee"), column("nom_ancienne_commune"), "|"
        )
        built = pa.table(
            {
                "id": column("id"),
                "numero": pc.fill_null(numbers("numero", pa.int64()), NO_NUMBER),  # empty: no number, not NaN
                "rep": pc.utf8_lower(column("rep")),
                "nom_voie": column("nom_voie"),
                "code_postal": column("code_postal"),
                "code_insee": column("code_insee"),
                "nom_commune": column("nom_commune"),
                "nom_ancienne_commune": column("nom_ancienne_commune"),
                "code_insee_ancienne_commune": column("code_insee_ancienne_commune"),
                "nom_ld": column("nom_ld"),
                "lon": numbers("lon", pa.float64()),
                "lat": numbers("lat", pa.float64()),
                "x": column("x", pa.float64()),
                "y": column("y", pa.float64()),
                "street_key": street_key,
                "street_norm": normalise(column("nom_voie")),
                "commune_norm": normalise(column("nom_commune")),
                "old_commune_norm": normalise(column("nom_ancienne_commune")),
                "ld_norm": normalise(column("nom_ld")),
            }
        )
        order = pc.sort_indices(built, [("street_key", "ascending"), ("numero", "ascending"), ("rep", "ascending")])
        return built.take(order)

    def _prepare(self, table: pa.Table) -> None:
        """Arrays for matching: addresses sorted by street, one row per street, blocks by code."""
        self.table = table
        col = {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}
        self.lon, self.lat = col["lon"].astype(float), col["lat"].astype(float)
        self.numero = col["numero"].astype(np.int64)
        self.rep = col["rep"]
        self.ids = col["id"]
        self.x, self.y = col["x"].astype(float), col["y"].astype(float)
        key = col["street_key"]
        change = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
        self.street_start = np.flatnonzero(change)
        self.street_end = np.r_[self.street_start[1:], len(key)]
        self.street_of_row = np.cumsum(change) - 1
        first = self.street_start
        self.s_name = col["nom_voie"][first]
        self.s_norm = col["street_norm"][first]
        self.s_postcode = col["code_postal"][first]
        self.s_insee = col["code_insee"][first]
        self.s_city = col["nom_commune"][first]
        self.s_city_norm = col["commune_norm"][first]
        self.s_old = col["nom_ancienne_commune"][first]
        self.s_old_norm = col["old_commune_norm"][first]
        self.s_old_insee = col["code_insee_ancienne_commune"][first]
        counts = self.street_end - self.street_start
        sums_lon = np.add.reduceat(self.lon, first) if len(first) else np.zeros(0)
        sums_lat = np.add.reduceat(self.lat, first) if len(first) else np.zeros(0)
        self.s_lon, self.s_lat = sums_lon / np.maximum(counts, 1), sums_lat / np.maximum(counts, 1)
        self.s_importance = np.log1p(counts) / max(math.log1p(counts.max()) if len(counts) else 1.0, 1e-9)
        # the names a street is searched by: its own, and the lieux-dits of its addresses
        ld_rows = np.flatnonzero((col["ld_norm"] != "") & (col["ld_norm"] != col["street_norm"]))
        ld_pairs = sorted({(str(col["ld_norm"][r]), int(self.street_of_row[r])) for r in ld_rows})
        self.e_name = np.concatenate([self.s_norm, np.array([p[0] for p in ld_pairs], dtype=object)])
        self.e_street = np.concatenate(
            [np.arange(len(first)), np.array([p[1] for p in ld_pairs], dtype=np.int64)]
        ).astype(np.int64)
        self.e_core = np.array([_core(str(name)) for name in self.e_name], dtype=object)
        self.by_postcode = _groups(self.s_postcode[self.e_street])
        self.by_insee = _groups(self.s_insee[self.e_street])
        old_insee = self.s_old_insee[self.e_street]
        for code, rows in _groups(old_insee).items():
            if code:
                self.by_insee[code] = np.union1d(self.by_insee.get(code, np.zeros(0, np.int64)), rows)
        self.by_commune = _groups(self.s_city_norm[self.e_street])
        for name, rows in _groups(self.s_old_norm[self.e_street]).items():
            if name:
                self.by_commune[name] = np.union1d(self.by_commune.get(name, np.zeros(0, np.int64)), rows)
        self.by_commune.pop("", None)
        self.communes = frozenset(self.by_commune)
        self.commune_list = sorted(self.communes)
        self.departments = frozenset(str(code)[:2] for code in self.by_postcode) | frozenset(
            str(code)[:2] for code in self.by_insee
        )
        self.all_entries = np.arange(len(self.e_name))

    def house_number(self, row: int) -> str:
        """The house number of an index row as written (``12 bis``), ``""`` when it has none."""
        if self.numero[row] == NO_NUMBER:
            return ""
        return _joined(str(self.numero[row]), str(self.rep[row]))

    @property
    def streets(self) -> int:
        """Number of streets in the index."""
        return len(self.street_start)

    # -- matching --------------------------------------------------------------------------
    def geocode(self, address: str) -> Match | None:
        """The best match for one address, or ``None`` when nothing in the index is that address.

        Examples
        --------
        >>> from carroyage.data import BAN_FIXTURE
        >>> ban = BanGeocoder(BAN_FIXTURE)
        >>> m = ban.geocode("8 bd du Port, Amiens")
        >>> m.label, m.kind
        ('8 Boulevard du Port 80000 Amiens', 'housenumber')
        >>> ban.geocode("8 boulevard du Port 75001 Paris") is None  # another department
        True
        >>> m = ban.geocode("14 rue Jean Jaurès")  # no 14: the street, said so
        >>> m.kind, m.position, m.label
        ('street', 'street_centre', 'Rue Jean Jaurès 80450 Camon')
        """
        return self.geocode_many([address])[0]

    def geocode_many(self, addresses: Sequence[str]) -> list[Match | None]:
        """The best match for each address; the texts are normalised in one vectorised call.

        >>> from carroyage.data import BAN_FIXTURE
        >>> [m and m.kind for m in BanGeocoder(BAN_FIXTURE).geocode_many(["Amiens", "zzz qqq"])]
        ['municipality', None]
        """
        return [found[0] if found else None for found in self.search_many(addresses, limit=1)]

    def search(self, address: str, limit: int = CANDIDATES, postcode: str = "", citycode: str = "") -> list[Match]:
        """Up to ``limit`` candidates, best first (addok's ``/search``); ``postcode`` and
        ``citycode`` are strict filters, as addok's.

        >>> from carroyage.data import BAN_FIXTURE
        >>> [m.label for m in BanGeocoder(BAN_FIXTURE).search("rue des tilleuls", 2)]
        ['Rue des Tilleuls 80080 Amiens']
        """
        return self.search_many([address], limit, [postcode], [citycode])[0]

    def search_many(
        self,
        addresses: Sequence[str],
        limit: int = 1,
        postcodes: Sequence[str] | None = None,
        citycodes: Sequence[str] | None = None,
    ) -> list[list[Match]]:
        """:meth:`search` for many addresses (one normalisation call for all of them)."""
        texts = ["" if a is None or too_long(a) else a for a in addresses]
        parsed = parse_many(texts, self.communes)
        answers = []
        for i, query in enumerate(parsed):
            postcode = (postcodes[i] if postcodes else "") or ""
            citycode = (citycodes[i] if citycodes else "") or ""
            answers.append(self._search(query, limit, postcode.strip(), citycode.strip()))
        return answers

    def _block(self, query: ParsedAddress, postcode: str, citycode: str) -> tuple[np.ndarray, float] | None:
        """The name entries to search and the penalty; ``None`` when the address is elsewhere."""
        if postcode or citycode:  # strict filters (addok's)
            rows = self.all_entries
            if postcode:
                rows = np.intersect1d(rows, self.by_postcode.get(postcode, np.zeros(0, np.int64)))
            if citycode:
                rows = np.intersect1d(rows, self.by_insee.get(citycode, np.zeros(0, np.int64)))
            if not len(rows):
                return None
            if not query.postcode and not query.city:
                return rows, 1.0
        else:
            rows = self.all_entries
        by_code: np.ndarray | None = None
        code_penalty = 1.0
        if query.postcode:
            code = query.postcode
            if code in self.by_postcode:
                by_code = self.by_postcode[code]
            elif code in self.by_insee:
                by_code = self.by_insee[code]
            elif code[:2] not in self.departments:
                code_penalty = 0.0  # another department
            else:
                code_penalty = UNKNOWN_CODE
        by_city: np.ndarray | None = None
        city_penalty = 1.0
        if query.city:
            if query.city in self.by_commune:
                by_city = self.by_commune[query.city]
            else:
                pool = self.commune_list
                if by_code is not None:
                    pool = sorted(
                        set(self.s_city_norm[self.e_street[by_code]]) | set(self.s_old_norm[self.e_street[by_code]])
                    )
                close = process.extractOne(query.city, pool, scorer=fuzz.ratio, score_cutoff=85)
                if close is not None:
                    by_city, city_penalty = self.by_commune[close[0]], FUZZY_CITY
                else:
                    city_penalty = UNKNOWN_CITY
        if by_code is not None and by_city is not None:
            both = np.intersect1d(by_code, by_city)
            block, penalty = (both, city_penalty) if len(both) else (by_city, city_penalty * WRONG_POSTCODE)
        elif by_city is not None:
            block, penalty = by_city, city_penalty * (WRONG_POSTCODE if query.postcode else 1.0)
        elif by_code is not None:
            block, penalty = by_code, city_penalty
        elif code_penalty == 0.0 or (query.postcode and query.city):
            return None  # neither the code nor the commune is in the index: the address is elsewhere
        else:
            block, penalty = self.all_entries, code_penalty * city_penalty
        if len(rows) != len(self.all_entries):
            block = np.intersect1d(block, rows)
        return (block, penalty) if len(block) else None

    def _search(self, query: ParsedAddress, limit: int, postcode: str, citycode: str) -> list[Match]:
        found = self._block(query, postcode, citycode)
        if found is None:
            return []
        block, penalty = found
        if not query.street:
            return self._municipality(query, block, penalty)
        street_text, query_type = _street_type(query.street)
        core = _core(street_text)
        hits = process.extract(
            core,
            self.e_core[block],
            scorer=fuzz.WRatio,
            processor=None,
            limit=max(4 * limit, 8),
            score_cutoff=100 * STREET_MIN_SIMILARITY,
        )
        if not hits:
            return []
        best: dict[int, tuple[float, float]] = {}
        for _, similarity, position in hits:
            street = int(self.e_street[block[position]])
            name = str(self.e_name[block[position]])
            name_type = name.split(" ", 1)[0]
            if name_type not in STREET_TYPES:
                name_type = ""
            if query_type and name_type != query_type:
                similarity *= OTHER_TYPE  # "rue X" asked, "impasse X" (or the lieu-dit "X") found
            closeness = fuzz.ratio(street_text, name)  # only to order equal candidates
            best[street] = max(best.get(street, (0.0, 0.0)), (similarity / 100, closeness))
        ranked = [
            (street, value[0])
            for street, value in sorted(
                best.items(), key=lambda item: (-item[1][0], -item[1][1], -self.s_importance[item[0]])
            )
        ]
        top = ranked[0][1]
        same = [s for s, v in ranked if v >= top - 1e-9]
        if len({self.s_insee[s] for s in same}) > 1 and not query.city and not query.postcode and not citycode:
            penalty *= AMBIGUOUS  # the same street name in several communes, none said
        matches = [self._house(street, query, similarity * penalty) for street, similarity in ranked[:limit]]
        return [m for m in matches if m.score >= GEOCODE_FLOOR]

    def _street_fields(self, street: int) -> dict[str, Any]:
        return {
            "street": str(self.s_name[street]),
            "postcode": str(self.s_postcode[street]),
            "city": str(self.s_city[street]),
            "citycode": str(self.s_insee[street]),
            "oldcity": str(self.s_old[street]),
            "context": str(self.s_insee[street])[:2],
            "importance": round(float(self.s_importance[street]), 4),
            "street_code": street,
        }

    def _house(self, street: int, query: ParsedAddress, similarity: float) -> Match:
        start, end = int(self.street_start[street]), int(self.street_end[street])
        fields = self._street_fields(street)
        where = _joined(fields["postcode"], fields["city"])
        if query.number is not None:
            numbers = self.numero[start:end]
            same = np.flatnonzero(numbers == query.number) + start
            if len(same):
                exact = [r for r in same if self.rep[r] == query.repetition]
                row = exact[0] if exact else int(same[0])
                factor, note = (1.0, "") if exact else (OTHER_REPETITION, "other_repetition")
                house = self.house_number(int(row))
                return Match(
                    float(self.lon[row]),
                    float(self.lat[row]),
                    _joined(house, fields["street"], where),
                    round(similarity * factor, 3),
                    "housenumber",
                    str(self.ids[row]),
                    housenumber=house,
                    name=_joined(house, fields["street"]),
                    x=float(self.x[row]),
                    y=float(self.y[row]),
                    note=note,
                    **fields,
                )
            lon, lat, position = self._interpolate(start, end, query.number, street)
            return Match(
                lon,
                lat,
                _joined(fields["street"], where),
                round(similarity * STREET_LEVEL, 3),
                "street",
                str(self.ids[start]).rsplit("_", 1)[0],
                name=fields["street"],
                position=position,
                note="number_not_found",
                **fields,
            )
        return Match(
            float(self.s_lon[street]),
            float(self.s_lat[street]),
            _joined(fields["street"], where),
            round(similarity * STREET_LEVEL, 3),
            "street",
            str(self.ids[start]).rsplit("_", 1)[0],
            name=fields["street"],
            position="street_centre",
            note="no_number",
            **fields,
        )

    def _interpolate(self, start: int, end: int, number: int, street: int) -> tuple[float, float, str]:
        """Between the nearest numbers on the same side of the street, else its centre."""
        numbers = self.numero[start:end]
        side = (numbers != NO_NUMBER) & ((numbers % 2) == (number % 2))
        below = np.flatnonzero(side & (numbers < number))
        above = np.flatnonzero(side & (numbers > number))
        if len(below) and len(above):
            lo, hi = start + below[-1], start + above[0]
            t = (number - self.numero[lo]) / (self.numero[hi] - self.numero[lo])
            lon = self.lon[lo] + t * (self.lon[hi] - self.lon[lo])
            lat = self.lat[lo] + t * (self.lat[hi] - self.lat[lo])
            return float(lon), float(lat), "interpolated"
        return float(self.s_lon[street]), float(self.s_lat[street]), "street_centre"

    def _municipality(self, query: ParsedAddress, block: np.ndarray, penalty: float) -> list[Match]:
        if not query.city and not query.postcode:
            return []
        streets = np.unique(self.e_street[block])
        insee = self.s_insee[streets]
        codes, counts = np.unique(insee, return_counts=True)
        code = str(codes[np.argmax(counts)])
        mine = streets[insee == code]
        rows = np.concatenate([np.arange(self.street_start[s], self.street_end[s]) for s in mine])
        fields = self._street_fields(int(mine[0]))
        fields.update(street="", street_code=-1)
        return [
            Match(
                float(np.median(self.lon[rows])),
                float(np.median(self.lat[rows])),
                f"{fields['city']}",
                round(MUNICIPALITY * penalty, 3),
                "municipality",
                code,
                name=fields["city"],
                position="commune_centre",
                note="no_street",
                **fields,
            )
        ]

    def reverse(self, lon: float, lat: float, limit: int = 1) -> list[Match]:
        """The nearest addresses to a point (addok's ``/reverse``).

        >>> from carroyage.data import BAN_FIXTURE
        >>> BanGeocoder(BAN_FIXTURE).reverse(2.29009, 49.89745)[0].id
        '80021_6590_00008'
        """
        scale = math.cos(math.radians(lat))
        distance = ((self.lon - lon) * scale) ** 2 + (self.lat - lat) ** 2
        rows = np.argsort(distance)[:limit] if limit < len(distance) else np.argsort(distance)
        answers = []
        for row in rows:
            street = int(self.street_of_row[row])
            metres = math.sqrt(float(distance[row])) * 111_320
            score = round(max(0.0, 1 - metres / 1000), 3)
            if self.numero[row] == NO_NUMBER:  # an address without a number: the street, at that address
                match = self._house(street, ParsedAddress(None, "", "", "", ""), 1.0)
                lon, lat, found = float(self.lon[row]), float(self.lat[row]), str(self.ids[row])
                answers.append(replace(match, lon=lon, lat=lat, id=found, score=score, position="", note=""))
                continue
            query = ParsedAddress(int(self.numero[row]), str(self.rep[row]), "", "", "")
            answers.append(replace(self._house(street, query, 1.0), score=score))
        return answers


_TYPE_LIST = sorted(STREET_TYPES)


def _street_type(street: str) -> tuple[str, str]:
    """The street with its type first and spelled right, and that type ("" if none).

    A misspelt type ("aveune", "impause") is recognised, and a type written last ("des Saules
    place") moved first.

    >>> _street_type("aveune des lilas"), _street_type("des saules place"), _street_type("les peupliers")
    (('avenue des lilas', 'avenue'), ('place des saules', 'place'), ('les peupliers', ''))
    """
    words = street.split()
    if not words:
        return street, ""
    for index in (0, len(words) - 1) if len(words) > 1 else (0,):
        word = words[index]
        kind = word if word in STREET_TYPES else ""
        if not kind and len(word) >= 5:
            close = process.extractOne(word, _TYPE_LIST, scorer=fuzz.ratio, score_cutoff=80)
            kind = close[0] if close else ""
        if kind:
            rest = words[:index] + words[index + 1 :]
            return " ".join([kind, *rest]), kind
    return street, ""


def _core(name: str) -> str:
    """A street name without its type and stop words ("rue de la Paix" → "paix"): what is compared.

    >>> _core("rue de la paix"), _core("grande rue")
    ('paix', 'grande')
    """
    words = name.split()
    kept = [w for w in words if w not in STREET_TYPES and w not in STOP_WORDS]
    return " ".join(kept) if kept else name


def _joined(*parts: str) -> str:
    """The non-empty parts, one space apart: an empty field never shows (as ``nan`` or a double space).

    >>> _joined("", "Boulevard du Port", "80000 Amiens")
    'Boulevard du Port 80000 Amiens'
    """
    return " ".join(part for part in parts if part)


def _groups(values: np.ndarray) -> dict[str, np.ndarray]:
    """Positions of each distinct value."""
    if not len(values):
        return {}
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    cuts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    bounds = np.r_[cuts, len(values)]
    return {str(sorted_values[a]): np.sort(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)}


class AddokGeocoder:
    """Geocode with an addok-compatible HTTP service (``/search/?q=``), e.g. a self-hosted addok.

    A server on this machine (``localhost``, ``127.0.0.0/8``, ``::1``) is always reached directly,
    whatever ``HTTP_PROXY`` or ``ALL_PROXY`` say (a proxy would not reach it, or would reach its
    own loopback); any other server through the proxies of the environment, ``NO_PROXY`` included.

    Parameters
    ----------
    url : str
        Base URL, such as ``http://127.0.0.1:7878``.
    timeout : float
        Seconds to wait for each answer.
    """

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        direct = is_loopback(urllib.parse.urlsplit(self.url).hostname or "")
        handlers = [urllib.request.ProxyHandler({})] if direct else []  # {}: no proxy at all
        self._opener = urllib.request.build_opener(*handlers)

    def geocode(self, address: str) -> Match | None:
        """The best match for one address, or ``None``."""
        found = self.search(address, 1)
        return found[0] if found else None

    def search(self, address: str, limit: int = CANDIDATES, postcode: str = "", citycode: str = "") -> list[Match]:
        """Up to ``limit`` candidates from the server, best first."""
        params: dict[str, Any] = {"q": address, "limit": limit}
        params.update({k: v for k, v in (("postcode", postcode), ("citycode", citycode)) if v})
        query = urllib.parse.urlencode(params)
        try:
            with self._opener.open(f"{self.url}/search/?{query}", timeout=self.timeout) as response:
                answer = json.load(response)
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GeocodingError(f"addok {self.url} : pas de réponse ({reason}) ; le serveur est-il lancé ?") from exc
        return [_from_feature(feature) for feature in answer.get("features") or []]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's host name, without brackets) is this machine.

    >>> [is_loopback(h) for h in ("localhost", "127.0.0.1", "127.1.2.3", "::1", "10.0.0.1", "addok.fr")]
    [True, True, True, True, False, False]
    """
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _from_feature(feature: dict[str, Any]) -> Match:
    lon, lat = feature["geometry"]["coordinates"]
    props = feature["properties"]

    def text(key: str) -> str:  # an absent or null property is empty, never "None"
        value = props.get(key)
        return "" if value is None else str(value)

    return Match(
        float(lon),
        float(lat),
        text("label"),
        round(float(props.get("score") or 0.0), 3),
        text("type"),
        text("id"),
        housenumber=text("housenumber"),
        name=text("name"),
        street=text("street"),
        postcode=text("postcode"),
        city=text("city"),
        citycode=text("citycode"),
        context=text("context"),
        importance=float(props.get("importance") or 0.0),
    )


def ban_to_addok(path: str | Path, target: str | Path) -> Path:
    """Write a BAN file as addok import documents (JSON lines, one street with its numbers per line).

    Load them into a self-hosted addok with ``addok batch TARGET`` then ``addok ngrams``.
    """
    ban = BanGeocoder(path)
    lines = []
    for street in range(ban.streets):
        start, end = int(ban.street_start[street]), int(ban.street_end[street])
        numbers = {
            ban.house_number(r): {"lat": float(ban.lat[r]), "lon": float(ban.lon[r]), "id": str(ban.ids[r])}
            for r in range(start, end)
            if ban.numero[r] != NO_NUMBER  # an address without a number is the street's
        }
        first = str(ban.ids[start])
        lines.append(
            json.dumps(
                {
                    "id": first.rsplit("_", 1 if not ban.rep[start] else 2)[0],
                    "type": "street",
                    "name": str(ban.s_name[street]),
                    "postcode": str(ban.s_postcode[street]),
                    "citycode": str(ban.s_insee[street]),
                    "city": str(ban.s_city[street]),
                    "lat": float(ban.s_lat[street]),
                    "lon": float(ban.s_lon[street]),
                    "importance": 0.5,
                    "housenumbers": numbers,
                },
                ensure_ascii=False,
            )
        )
    target = Path(target)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target

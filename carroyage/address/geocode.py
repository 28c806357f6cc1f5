"""Geocoding on the Base Adresse Nationale: a local index of the BAN CSV, or an addok server.

The BAN is published per department as ``adresses-DD.csv.gz`` (semicolon-separated; docs/facts.md,
"Address checks"). Its index is built once and cached as Parquet next to the file (or in the user
cache directory when that folder is read-only); it is rebuilt when the file changes.
Street names are matched with rapidfuzz, within the postcode or commune when the query gives one.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rapidfuzz import fuzz, process

from ..errors import GeocodingError, InputError
from .normalise import normalise, parse

BAN_COLUMNS = ("id", "numero", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune", "lon", "lat")
INDEX_VERSION = "1"
EXACT, OTHER_NUMBER, STREET_ONLY = 1.0, 0.8, 0.6  # score factors by how the house number was found


@dataclass(frozen=True)
class Match:
    """A geocoded address: position (WGS84), label, score in [0, 1] and kind."""

    lon: float
    lat: float
    label: str
    score: float
    kind: str  # housenumber, street
    id: str = ""


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
            raise InputError(f"{self.path}: no such file (BAN addresses)")
        self.cache_dir = (
            Path(cache_dir)
            if cache_dir
            else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "carroyage"
        )
        self.addresses = self._load_index()
        streets = self.addresses.drop_duplicates("street").sort_values("street")
        self.street_names = streets["street_norm"].tolist()
        self.street_commune = streets["commune_norm"].to_numpy()
        self.street_postcode = streets["code_postal"].to_numpy()
        self.street_ids = streets["street"].to_numpy()
        self.communes = frozenset(self.street_commune)

    # -- index -----------------------------------------------------------------------------
    def _stamp(self) -> str:
        stat = self.path.stat()
        return f"{INDEX_VERSION}:{stat.st_size}:{int(stat.st_mtime)}"

    def _index_paths(self) -> list[Path]:
        beside = self.path.with_name(self.path.name + ".carroyage-index.parquet")
        import hashlib

        key = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]
        return [beside, self.cache_dir / f"ban-{key}.parquet"]

    def _load_index(self) -> pd.DataFrame:
        for candidate in self._index_paths():
            if candidate.is_file():
                table = pq.read_table(candidate)
                if (table.schema.metadata or {}).get(b"carroyage_stamp", b"").decode() == self._stamp():
                    cached: pd.DataFrame = table.to_pandas()
                    return cached
        table = self._build_index()
        for candidate in self._index_paths():
            try:
                candidate.parent.mkdir(parents=True, exist_ok=True)
                temporary = candidate.with_name(candidate.name + f".{os.getpid()}.tmp")
                pq.write_table(table.replace_schema_metadata({"carroyage_stamp": self._stamp()}), temporary)
                os.replace(temporary, candidate)
                break
            except OSError:
                continue  # read-only folder: try the user cache
        built: pd.DataFrame = table.to_pandas()
        return built

    def _build_index(self) -> pa.Table:
        try:
            table = pacsv.read_csv(
                self.path,
                parse_options=pacsv.ParseOptions(delimiter=";"),
                convert_options=pacsv.ConvertOptions(
                    include_columns=list(BAN_COLUMNS),
                    column_types={
                        c: pa.string() for c in ("id", "rep", "nom_voie", "code_postal", "code_insee", "nom_commune")
                    },
                ),
            )
        except (pa.ArrowInvalid, KeyError) as exc:
            raise InputError(
                f"{self.path}: not a BAN addresses file ({str(exc).splitlines()[0]}); "
                f"expected semicolon-separated columns {', '.join(BAN_COLUMNS)}"
            ) from exc
        numero = pc.cast(table["numero"], pa.int64())
        street_key = pc.binary_join_element_wise(table["nom_voie"], table["code_postal"], table["code_insee"], "|")
        return pa.table(
            {
                "id": table["id"],
                "numero": numero,
                "rep": pc.fill_null(pc.utf8_lower(table["rep"]), ""),
                "nom_voie": table["nom_voie"],
                "code_postal": table["code_postal"],
                "nom_commune": table["nom_commune"],
                "lon": pc.cast(table["lon"], pa.float64()),
                "lat": pc.cast(table["lat"], pa.float64()),
                "street": pc.dictionary_encode(street_key).combine_chunks().indices,
                "street_norm": normalise(table["nom_voie"].combine_chunks()),
                "commune_norm": normalise(table["nom_commune"].combine_chunks()),
            }
        )

    # -- matching --------------------------------------------------------------------------
    def geocode(self, address: str) -> Match | None:
        """The best match for one address, or ``None`` when no street resembles it.

        Examples
        --------
        >>> from carroyage.data import BAN_FIXTURE
        >>> m = BanGeocoder(BAN_FIXTURE).geocode("8 bd du Port, Amiens")
        >>> m.label, m.kind
        ('8 Boulevard du Port 80000 Amiens', 'housenumber')
        """
        query = parse(address, self.communes)
        if not query.street:
            return None
        candidates = np.ones(len(self.street_names), dtype=bool)
        penalty = 1.0
        if query.postcode:
            candidates &= self.street_postcode == query.postcode
        if query.city:
            in_city = self.street_commune == query.city
            if not in_city.any():
                close = process.extractOne(query.city, sorted(self.communes), scorer=fuzz.ratio, score_cutoff=85)
                in_city = self.street_commune == close[0] if close else in_city
                penalty = 0.9 if close else 0.7
            candidates &= in_city if in_city.any() else candidates
        if not candidates.any():
            candidates[:] = True
            penalty *= 0.7
        names = [self.street_names[i] for i in np.flatnonzero(candidates)]
        best = process.extractOne(query.street, names, scorer=fuzz.WRatio, score_cutoff=60)
        if best is None:
            return None
        street = self.street_ids[np.flatnonzero(candidates)[best[2]]]
        return self._house(street, query.number, query.repetition, best[1] / 100 * penalty)

    @cached_property
    def _by_street(self) -> dict[int, pd.DataFrame]:
        groups = dict(iter(self.addresses.groupby("street", sort=False)))  # pandas 3: GroupBy.keys is no method
        return cast(dict[int, pd.DataFrame], groups)  # the street keys are integer codes

    def _house(self, street: int, number: int | None, repetition: str, similarity: float) -> Match:
        rows = self._by_street[street]
        if number is not None:
            exact = rows[(rows["numero"] == number) & (rows["rep"] == repetition)]
            if len(exact) == 0:
                exact = rows[rows["numero"] == number]
            if len(exact):
                return _match(exact.iloc[0], similarity * EXACT, "housenumber")
            nearest = rows.iloc[int(np.argmin(np.abs(rows["numero"].to_numpy() - number)))]
            return _match(nearest, similarity * OTHER_NUMBER, "housenumber")
        first = rows.iloc[0]
        label = f"{first['nom_voie']} {first['code_postal']} {first['nom_commune']}"
        return Match(
            float(rows["lon"].mean()), float(rows["lat"].mean()), label, round(similarity * STREET_ONLY, 3), "street"
        )


def _match(row: pd.Series, score: float, kind: str) -> Match:
    number = f"{row['numero']}{' ' + row['rep'] if row['rep'] else ''}"
    label = f"{number} {row['nom_voie']} {row['code_postal']} {row['nom_commune']}"
    return Match(float(row["lon"]), float(row["lat"]), label, round(score, 3), kind, str(row["id"]))


class AddokGeocoder:
    """Geocode with an addok-compatible HTTP service (``/search/?q=``), e.g. a self-hosted addok.

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

    def geocode(self, address: str) -> Match | None:
        """The best match for one address, or ``None``."""
        query = urllib.parse.urlencode({"q": address, "limit": 1})
        try:
            with urllib.request.urlopen(f"{self.url}/search/?{query}", timeout=self.timeout) as response:
                answer = json.load(response)
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GeocodingError(f"addok at {self.url}: no answer ({reason}); is the server running?") from exc
        features = answer.get("features") or []
        if not features:
            return None
        feature = features[0]
        lon, lat = feature["geometry"]["coordinates"]
        props = feature["properties"]
        return Match(
            float(lon),
            float(lat),
            props.get("label", ""),
            round(float(props.get("score", 0.0)), 3),
            props.get("type", ""),
            str(props.get("id", "")),
        )


def ban_to_addok(path: str | Path, target: str | Path) -> Path:
    """Write a BAN file as addok import documents (JSON lines, one street with its numbers per line).

    Load them into a self-hosted addok with ``addok batch TARGET`` then ``addok ngrams``.
    """
    addresses = BanGeocoder(path).addresses
    lines = []
    for _, rows in addresses.groupby("street", sort=True):  # one document per street
        first = rows.iloc[0]
        numbers = {
            f"{n}{' ' + r if r else ''}": {"lat": la, "lon": lo, "id": i}
            for n, r, la, lo, i in zip(rows["numero"], rows["rep"], rows["lat"], rows["lon"], rows["id"], strict=True)
        }
        lines.append(
            json.dumps(
                {
                    "id": first["id"].rsplit("_", 1 if not first["rep"] else 2)[0],
                    "type": "street",
                    "name": first["nom_voie"],
                    "postcode": first["code_postal"],
                    "city": first["nom_commune"],
                    "lat": float(rows["lat"].mean()),
                    "lon": float(rows["lon"].mean()),
                    "importance": 0.5,
                    "housenumbers": numbers,
                },
                ensure_ascii=False,
            )
        )
    target = Path(target)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target

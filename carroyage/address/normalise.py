"""French postal addresses: normalisation and parsing, vectorised with pyarrow string kernels.

The same normalisation is applied to the Base Adresse Nationale (once, when its index is built)
and to each query, so that "8 bd du Port, Amiens" and "8 Boulevard du Port 80000 Amiens" meet on
"8 boulevard du port" + commune "amiens".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

# abbreviations of the "type de voie" and a few common words (La Poste / AFNOR usage)
ABBREVIATIONS = {
    "all": "allee",
    "av": "avenue",
    "ave": "avenue",
    "bd": "boulevard",
    "bld": "boulevard",
    "blvd": "boulevard",
    "bvd": "boulevard",
    "ch": "chemin",
    "che": "chemin",
    "chem": "chemin",
    "crs": "cours",
    "fg": "faubourg",
    "fbg": "faubourg",
    "imp": "impasse",
    "lot": "lotissement",
    "pl": "place",
    "pass": "passage",
    "prom": "promenade",
    "qu": "quai",
    "qua": "quai",
    "r": "rue",
    "res": "residence",
    "rte": "route",
    "sq": "square",
    "st": "saint",
    "ste": "sainte",
    "sts": "saints",
    "vla": "villa",
    "zac": "zac",
    "za": "za",
    "gal": "general",
    "mal": "marechal",
    "pdt": "president",
    "dr": "docteur",
    "cdt": "commandant",
    "cpt": "capitaine",
    "lt": "lieutenant",
}
REPETITIONS = {
    "b": "bis",
    "bis": "bis",
    "t": "ter",
    "ter": "ter",
    "q": "quater",
    "quater": "quater",
    "quinquies": "quinquies",
}
_HOUSE = re.compile(r"^\s*(\d{1,5})\s*(bis|ter|quater|quinquies|[a-z])?\b\s*,?\s*(.*)$")
_POSTCODE = re.compile(r"\b(\d{5})\b")


def normalise(texts: pa.Array | list[str]) -> pa.Array:
    """Lower case, no accents, no punctuation, abbreviations expanded, single spaces.

    Examples
    --------
    >>> normalise(["8 Bd du Port", "Allée   St-Éloi"]).to_pylist()
    ['8 boulevard du port', 'allee saint eloi']
    """
    text = pa.array(texts, type=pa.string()) if not isinstance(texts, pa.Array) else texts
    text = pc.utf8_normalize(pc.utf8_lower(text), "NFKD")
    text = pc.replace_substring_regex(text, r"\p{Mn}+", "")
    text = pc.replace_substring_regex(text, r"[^a-z0-9]+", " ")
    for short, full in ABBREVIATIONS.items():
        text = pc.replace_substring_regex(text, rf"(^| ){short}( |$)", rf"\1{full}\2")
    return pc.utf8_trim_whitespace(text)


@dataclass(frozen=True)
class ParsedAddress:
    """The parts of a query address (all normalised)."""

    number: int | None
    repetition: str
    street: str
    postcode: str
    city: str


def parse(address: str, communes: set[str] | frozenset[str] = frozenset()) -> ParsedAddress:
    """Split a one-line address into number, repetition, street, postcode and commune.

    The commune is what follows a comma, or the longest ending of the line that is a known
    commune name (``communes``, normalised).

    Examples
    --------
    >>> parse("8 bd du Port, Amiens")
    ParsedAddress(number=8, repetition='', street='boulevard du port', postcode='', city='amiens')
    >>> parse("12 bis rue Jean Jaurès 80000 Amiens", {"amiens"})
    ParsedAddress(number=12, repetition='bis', street='rue jean jaures', postcode='80000', city='amiens')
    """
    head, _, tail = address.partition(",")
    postcode_match = _POSTCODE.search(address)
    postcode = postcode_match.group(1) if postcode_match else ""
    head_text = normalise([_POSTCODE.sub(" ", head)])[0].as_py()
    city = normalise([_POSTCODE.sub(" ", tail)])[0].as_py() if tail else ""
    number, repetition = None, ""
    house = _HOUSE.match(head_text)
    if house and house.group(3):
        number, repetition, head_text = (
            int(house.group(1)),
            REPETITIONS.get(house.group(2) or "", house.group(2) or ""),
            house.group(3),
        )
    if not city and communes:
        words = head_text.split()
        for cut in range(1, len(words)):
            candidate = " ".join(words[cut:])
            if candidate in communes:
                head_text, city = " ".join(words[:cut]), candidate
                break
    return ParsedAddress(number, repetition, head_text, postcode, city)

"""French postal addresses: normalisation and parsing, vectorised with pyarrow string kernels.

The same normalisation is applied to the Base Adresse Nationale (once, when its index is built)
and to the queries (one call per chunk of queries), so that "8 bd du Port, Amiens" and
"8 Boulevard du Port 80000 Amiens" meet on "8 boulevard du port" + commune "amiens".

Every pass is linear in the length of the text: a fixed handful of RE2 regular expressions
(which never backtrack) and one dictionary look-up per word for the abbreviations, whatever
their number. Fields longer than :data:`carroyage.settings.MAX_ADDRESS_CHARS` are refused
before any of it (:func:`too_long`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ..settings import MAX_ADDRESS_CHARS

# abbreviations of the "type de voie" and a few common words (La Poste / AFNOR usage)
ABBREVIATIONS = {
    "all": "allee",
    "av": "avenue",
    "ave": "avenue",
    "bd": "boulevard",
    "bld": "boulevard",
    "blvd": "boulevard",
    "bvd": "boulevard",
    "boul": "boulevard",
    "ch": "chemin",
    "che": "chemin",
    "chem": "chemin",
    "chs": "chaussee",
    "crs": "cours",
    "fg": "faubourg",
    "fbg": "faubourg",
    "ham": "hameau",
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
    "rpt": "rond point",
    "sq": "square",
    "st": "saint",
    "ste": "sainte",
    "sts": "saints",
    "vla": "villa",
    "gal": "general",
    "gen": "general",
    "mal": "marechal",
    "pdt": "president",
    "pres": "president",
    "dr": "docteur",
    "cdt": "commandant",
    "cpt": "capitaine",
    "lt": "lieutenant",
    "gde": "grande",
    "gd": "grand",
    "pt": "petit",
    "pte": "petite",
    "ld": "lieudit",
    "n": "",  # "n°" once the sign is gone
    "no": "",
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
"""How a repetition index is written in a query → how the BAN's ``rep`` column writes it."""
STREET_TYPES = frozenset(
    [
        "rue",
        "avenue",
        "boulevard",
        "chemin",
        "allee",
        "impasse",
        "place",
        "route",
        "quai",
        "cours",
        "square",
        "passage",
        "promenade",
        "faubourg",
        "residence",
        "lotissement",
        "hameau",
        "sentier",
        "voie",
        "villa",
        "cite",
        "chaussee",
        "esplanade",
        "rond",
        "point",
        "parvis",
        "mail",
        "clos",
        "venelle",
        "ruelle",
        "lieudit",
    ]
)
STOP_WORDS = frozenset(["de", "du", "des", "la", "le", "les", "l", "d", "et", "a", "au", "aux", "en", "sur", "sous"])
_CODE = re.compile(r"^(\d{5}|2[ab]\d{3})$")
_NUMBER = re.compile(r"^\d{1,4}$")
_LETTER = re.compile(r"^[a-z]$")


def too_long(text: str) -> bool:
    """Whether a field is longer than the documented bound (it is then refused, not parsed).

    >>> too_long("8 bd du Port"), too_long("x" * 501)
    (False, True)
    """
    return len(text) > MAX_ADDRESS_CHARS


def normalise(texts: pa.Array | Sequence[str | None], keep_commas: bool = False) -> pa.Array:
    """Lower case, no accents, no punctuation, abbreviations expanded, single spaces.

    One call for a whole chunk: each step is one Arrow kernel over every text (linear time).
    With ``keep_commas`` the commas stay, as `` , `` tokens (they separate a query's parts).

    Examples
    --------
    >>> normalise(["8 Bd du Port", "Allée   St-Éloi", "12bis, R. Œuvre"]).to_pylist()
    ['8 boulevard du port', 'allee saint eloi', '12 bis rue oeuvre']
    >>> normalise(["2, av. de la Paix"], keep_commas=True).to_pylist()
    ['2 , avenue de la paix']
    """
    text = pa.array(texts, type=pa.string()) if not isinstance(texts, pa.Array) else texts
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    text = pc.fill_null(text.cast(pa.string()), "")
    text = pc.utf8_normalize(pc.utf8_lower(text), "NFKD")
    text = pc.replace_substring(pc.replace_substring(text, "œ", "oe"), "æ", "ae")
    text = pc.replace_substring_regex(text, r"\p{Mn}+", "")
    keep = "a-z0-9," if keep_commas else "a-z0-9"
    text = pc.replace_substring_regex(text, rf"[^{keep}]+", " ")
    if keep_commas:
        text = pc.replace_substring(text, ",", " , ")
    text = pc.replace_substring_regex(text, r"(\d)([a-z])", r"\1 \2")  # 12bis → 12 bis
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r" {2,}", " "))
    return _expand(text)


def _expand(text: pa.Array) -> pa.Array:
    """Abbreviations expanded word by word: one dictionary look-up per word, whatever their number."""
    words = pc.split_pattern(text, " ")
    flat = pc.list_flatten(words)
    keys = pa.array(list(ABBREVIATIONS), pa.string())
    values = pa.array(list(ABBREVIATIONS.values()), pa.string())
    found = pc.index_in(flat, value_set=keys)
    expanded = pc.if_else(pc.is_null(found), flat, values.take(pc.fill_null(found, 0)))
    rebuilt = pa.ListArray.from_arrays(words.offsets, expanded)
    joined = pc.binary_join(rebuilt, " ")
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(joined, r" {2,}", " "))


@dataclass(frozen=True)
class ParsedAddress:
    """The parts of a query address (all normalised).

    ``postcode`` is the five-character code found in the text: a postcode, or an INSEE commune
    code (the geocoder tells them apart). ``city_after_comma`` says the commune was a separate
    part of the query (after a comma) rather than found at the end of the street.
    """

    number: int | None
    repetition: str
    street: str
    postcode: str
    city: str
    city_after_comma: bool = False


def parse(address: str, communes: Collection[str] = frozenset()) -> ParsedAddress:
    """Split a one-line address into number, repetition, street, postcode and commune.

    The commune is a comma-separated part that is a known commune (``communes``, normalised),
    else the last such part, else the longest known commune at the end (or the start) of the
    street. ``cedex`` and its number are dropped; "lieu-dit" is dropped from the street.

    Examples
    --------
    >>> p = parse("8 bd du Port, Amiens")
    >>> p.number, p.street, p.city, p.city_after_comma
    (8, 'boulevard du port', 'amiens', True)
    >>> p = parse("12 bis rue Jean Jaurès 80000 Amiens", {"amiens"})
    >>> p.number, p.repetition, p.street, p.postcode, p.city
    (12, 'bis', 'rue jean jaures', '80000', 'amiens')
    >>> parse("2, avenue de la Paix").street
    'avenue de la paix'
    """
    return parse_many([address], communes)[0]


def parse_many(addresses: Sequence[str], communes: Collection[str] = frozenset()) -> list[ParsedAddress]:
    """:func:`parse` for many addresses: normalised in one vectorised call, then split.

    >>> [p.number for p in parse_many(["3 rue A", "rue B", "Amiens"], {"amiens"})]
    [3, None, None]
    """
    texts = normalise(list(addresses), keep_commas=True).to_pylist()
    return [split(text or "", communes) for text in texts]


def split(text: str, communes: Collection[str] = frozenset()) -> ParsedAddress:
    """Split one normalised text (with `` , `` tokens, see :func:`normalise`) into its parts."""
    parts = [words for words in (part.split() for part in text.split(",")) if words]
    codes: list[str] = []
    cleaned: list[list[str]] = []
    for words in parts:
        kept: list[str] = []
        skip = False
        for i, word in enumerate(words):
            if skip:
                skip = False
                continue
            if word == "cedex":
                skip = i + 1 < len(words) and words[i + 1].isdigit() and len(words[i + 1]) <= 2
                continue
            if _CODE.match(word):
                codes.append(word)
                continue
            kept.append(word)
        if kept and kept[-1] == "france" and len(kept) > 1:
            kept = kept[:-1]
        if kept and kept != ["france"]:
            cleaned.append(kept)
    # a part that is only a house number (and repetition) belongs to the next: "2, avenue de la Paix"
    merged: list[list[str]] = []
    for words in cleaned:
        if merged and _is_house(merged[-1]):
            merged[-1] = merged[-1] + words
        else:
            merged.append(words)
    city, after_comma = "", False
    if len(merged) > 1:
        names = [" ".join(words) for words in merged]
        known = [i for i, name in enumerate(names) if name in communes]
        pick = known[-1] if known else (len(merged) - 1 if not any(w.isdigit() for w in merged[-1]) else -1)
        if pick >= 0:
            city, after_comma = names[pick], True
            merged.pop(pick)
    words = [w for part in merged for w in part]
    if not city and communes:
        words, city = _commune_in_street(words, communes)
    number, repetition = None, ""
    if words and _NUMBER.match(words[0]) and len(words) > 1:
        number, words = int(words[0]), words[1:]
        if words and _NUMBER.match(words[0]) and len(words) > 1:  # a range, "12-14": the first
            words = words[1:]
        if len(words) > 1 and (words[0] in REPETITIONS or _LETTER.match(words[0])):
            repetition, words = REPETITIONS.get(words[0], words[0]), words[1:]
    elif len(words) > 1 and len(words[-1]) <= 3 and words[-1].isdigit() and _has_name(words[:-1]):
        # "rue du Port 8" (three digits at most: "rue du 8 Mai 1945" ends with a year)
        number, words = int(words[-1]), words[:-1]
    words = [w for w in words if w != "lieudit"]
    if len(words) > 1 and words[0] == "lieu" and words[1] == "dit":
        words = words[2:]
    return ParsedAddress(number, repetition, " ".join(words), codes[-1] if codes else "", city, after_comma)


def _is_house(words: list[str]) -> bool:
    if not words or not _NUMBER.match(words[0]):
        return False
    rest = words[1:]
    return not rest or (len(rest) == 1 and (rest[0] in REPETITIONS or bool(_LETTER.match(rest[0]))))


def _has_name(words: list[str]) -> bool:
    """Whether the words can be a street: something besides a number, a type and stop words."""
    return any(w not in STREET_TYPES and w not in STOP_WORDS and not w.isdigit() for w in words)


def _commune_in_street(words: list[str], communes: Collection[str]) -> tuple[list[str], str]:
    """The longest known commune at the end (else the start) of the words, if a street remains."""
    for cut in range(1, len(words)):
        candidate = " ".join(words[cut:])
        if candidate in communes and _has_name(words[:cut]):
            return words[:cut], candidate
    for cut in range(len(words) - 1, 0, -1):  # "Amiens 8 bd du Port": the commune first
        candidate = " ".join(words[:cut])
        if candidate in communes and _has_name(words[cut:]) and words[cut].isdigit():
            return words[cut:], candidate
    if words and " ".join(words) in communes:
        return [], " ".join(words)
    return words, ""

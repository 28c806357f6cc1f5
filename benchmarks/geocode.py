"""Geocoding benchmark: carroyage's BAN geocoder against addok, same synthetic department, same run.

Builds in-script (seeded) a BAN-format department: ``--addresses`` addresses (300,000 by
default) in about 600 communes with French-looking names (some with old communes, the
``nom_ancienne_commune`` of communes nouvelles), shared postcodes, real-looking street names
(types × saints, people, trees, places, dates), house numbers with bis/ter; and ``--queries``
noisy queries (100,000 by default): abbreviations, missing accents, typos, missing or wrong
postcode, commune first, a comma after the number, upper case, and non-existent addresses
(invented streets in real communes, numbers absent from their street, communes of another
department). Then runs, each timed as a whole process:

* carroyage: the index build (``BanGeocoder`` on the CSV, no cache) and ``carroyage locate-csv``
  on the queries (every core);
* addok (PyPI addok + addok-fr + addok-france + addok-csv, Debian ``redis-server`` started on a
  free port of 127.0.0.1 and stopped after): ``addok batch`` + ``addok ngrams``, then its
  ``/search/csv`` endpoint on the same queries. Skipped, with one line, if not installed.

and prints, for each engine: share of existing addresses found exactly (the number), at the
street, accepted answers on a wrong street, non-existent addresses given an address (invented),
missing numbers answered as another number, throughput, build time and peak memory::

    python benchmarks/geocode.py [--addresses 300000] [--queries 100000] [--work benchmarks/work]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import measure  # noqa: E402

TARGETS = {"exact": 0.99, "wrong_street": 0.01, "invented": 0.01, "speedup": 3.0, "build_s": 30.0, "memory_mb": 2048}
FIRST = [
    "Jean",
    "Pierre",
    "Louis",
    "Jacques",
    "Victor",
    "Jules",
    "Émile",
    "Henri",
    "Charles",
    "Paul",
    "Georges",
    "Albert",
    "Marcel",
    "Léon",
    "André",
    "François",
    "Marie",
    "Anne",
    "Jeanne",
    "Hélène",
    "Louise",
    "Camille",
    "Suzanne",
    "Madeleine",
    "Lucie",
    "Berthe",
    "Gustave",
    "Édouard",
    "Raymond",
    "Aristide",
]
LAST = [
    "Hugo",
    "Jaurès",
    "Zola",
    "Pasteur",
    "Curie",
    "Moulin",
    "Ferry",
    "Gambetta",
    "Clemenceau",
    "Verne",
    "Daudet",
    "Rousseau",
    "Voltaire",
    "Racine",
    "Molière",
    "Corneille",
    "Lamartine",
    "Musset",
    "Péguy",
    "Barbusse",
    "Blum",
    "Briand",
    "Carnot",
    "Foch",
    "Joffre",
    "Leclerc",
    "Lyautey",
    "Hoche",
    "Kléber",
    "Marceau",
    "Desmoulins",
    "Danton",
    "Condorcet",
    "Michelet",
    "Renan",
    "Proudhon",
    "Fourier",
    "Bizet",
    "Berlioz",
    "Debussy",
    "Ravel",
    "Rameau",
    "Lully",
    "Daguerre",
    "Niépce",
    "Lumière",
    "Ampère",
    "Arago",
    "Laplace",
    "Lavoisier",
    "Parmentier",
    "Vauban",
    "Colbert",
    "Sully",
]
TREES = [
    "Tilleuls",
    "Chênes",
    "Érables",
    "Peupliers",
    "Saules",
    "Bouleaux",
    "Platanes",
    "Marronniers",
    "Acacias",
    "Frênes",
    "Hêtres",
    "Ormes",
]
PLACES = [
    "la Gare",
    "l'Église",
    "la Mairie",
    "la Poste",
    "du Moulin",
    "du Château",
    "des Écoles",
    "du Stade",
    "la Fontaine",
    "la Croix",
    "des Prés",
    "des Champs",
    "la Vallée",
    "du Bois",
    "la Forêt",
    "des Vignes",
    "du Marais",
    "la Rivière",
    "du Pont",
    "du Calvaire",
    "des Jardins",
    "la Plaine",
    "du Four",
    "la Ferme",
    "des Lilas",
    "des Roses",
    "des Violettes",
    "des Coquelicots",
    "du Puits",
]
DATES = ["du 8 Mai 1945", "du 11 Novembre 1918", "du 14 Juillet", "du 19 Mars 1962", "du 4 Septembre"]
TYPES = [
    ("Rue", 50),
    ("Avenue", 6),
    ("Boulevard", 2),
    ("Place", 4),
    ("Impasse", 8),
    ("Allée", 5),
    ("Chemin", 10),
    ("Route", 6),
    ("Résidence", 3),
    ("Square", 1),
    ("Sentier", 2),
    ("Quai", 1),
    ("Passage", 2),
]
ABBREVIATE = {
    "Rue": ["r", "R."],
    "Avenue": ["av", "Av."],
    "Boulevard": ["bd", "Bd"],
    "Place": ["pl"],
    "Impasse": ["imp"],
    "Allée": ["all"],
    "Chemin": ["ch", "chem"],
    "Route": ["rte"],
    "Saint": ["St"],
    "Sainte": ["Ste"],
    "Général": ["Gal"],
    "Résidence": ["res"],
}
COMMUNE_ROOTS = [
    "Ailly",
    "Boves",
    "Camon",
    "Dury",
    "Longueau",
    "Salouël",
    "Pont",
    "Rivery",
    "Poulainville",
    "Querrieu",
    "Corbie",
    "Albert",
    "Doullens",
    "Péronne",
    "Ham",
    "Nesle",
    "Roye",
    "Montdidier",
    "Moreuil",
    "Ailly",
    "Conty",
    "Poix",
    "Hornoy",
    "Oisemont",
    "Gamaches",
    "Friville",
    "Ault",
    "Cayeux",
    "Rue",
    "Crécy",
    "Nouvion",
    "Hallencourt",
    "Airaines",
    "Picquigny",
    "Flixecourt",
    "Domart",
    "Bernaville",
    "Acheux",
    "Bray",
    "Chaulnes",
    "Rosières",
    "Villers",
    "Beaucourt",
    "Béthencourt",
    "Hangest",
    "Molliens",
    "Saint-Sauflieu",
    "Essertaux",
    "Fouencamps",
    "Cottenchy",
    "Thézy",
    "Hailles",
]
SUFFIXES = ["", "", "", "-sur-Somme", "-sur-Noye", "-en-Santerre", "-le-Grand", "-le-Petit", "-en-Vimeu", "-Bocage"]


INVENTED = ["des Farfadets", "du Zeppelin", "Xavier Quintal", "des Hirondelles Bleues", "Octave Zwingli"]


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def make_department(n_addresses: int, seed: int = 15) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Rows of a BAN-format department and its shape (communes, streets)."""
    rng = np.random.default_rng(seed)
    n_communes = max(5, min(600, n_addresses // 500))
    names: set[str] = set()
    communes = []
    while len(communes) < n_communes:
        root = str(rng.choice(COMMUNE_ROOTS))
        name = root + str(rng.choice(SUFFIXES))
        if rng.random() < 0.15:
            name = ("Saint-" if rng.random() < 0.7 else "Sainte-") + str(rng.choice(LAST))
            name += str(rng.choice(SUFFIXES))
        if name in names:
            name = f"{name}-{rng.choice(['lès-Amiens', 'au-Bois', 'en-Amiénois', 'la-Vallée', 'Vieux'])}"
        if name in names:
            continue
        names.add(name)
        insee = f"80{len(communes) + 1:03d}"
        communes.append({"name": name, "insee": insee})
    postcodes = [f"80{i:02d}0" for i in range(10, 10 + max(2, n_communes // 8))]
    for c in communes:
        c["postcode"] = str(rng.choice(postcodes))
        c["centre"] = (rng.uniform(1.5, 3.2), rng.uniform(49.6, 50.3))
        c["old"] = []
    # communes nouvelles: some communes absorbed one or two old communes (their own names)
    for c in rng.choice(communes, size=max(1, n_communes // 12), replace=False):
        for k in range(int(rng.integers(1, 3))):
            c["old"].append(
                (
                    f"{str(rng.choice(COMMUNE_ROOTS))}-{['Vieux', 'Hameau', 'Bas', 'Haut'][k]}",
                    f"8{k + 5}{c['insee'][2:]}",
                )
            )
    weights = np.array([w for _, w in TYPES], dtype=float)
    weights /= weights.sum()
    rows: list[dict[str, object]] = []
    street_count = 0
    per_commune = rng.dirichlet(np.ones(n_communes) * 2) * n_addresses
    for c, budget in zip(communes, per_commune, strict=True):
        used: set[str] = set()
        left = int(budget)
        while left > 0:
            kind = str(TYPES[int(rng.choice(len(TYPES), p=weights))][0])
            pick = rng.random()
            if pick < 0.35:
                name = f"{kind} {rng.choice(FIRST)} {rng.choice(LAST)}"
            elif pick < 0.5:
                name = f"{kind} {rng.choice(LAST)}"
            elif pick < 0.6:
                name = f"{kind} des {rng.choice(TREES)}"
            elif pick < 0.67:
                name = f"{kind} {rng.choice(DATES)}"
            elif pick < 0.75:
                name = f"{kind} du Général {rng.choice(['de Gaulle', 'Leclerc', 'Foch', 'Faidherbe'])}"
            elif pick < 0.8:
                name = f"{kind} Saint-{rng.choice(LAST)}"
            else:
                place = str(rng.choice(PLACES))
                name = f"{kind} {'de ' if not place.startswith(('du', 'des')) else ''}{place}"
            if rng.random() < 0.04:  # a lieu-dit, no street type
                name = f"{rng.choice(['Le', 'La', 'Les'])} {rng.choice(TREES + LAST)}"
            if name in used:
                continue
            used.add(name)
            street_count += 1
            size = int(min(left, max(1, rng.geometric(1 / 18))))
            left -= size
            old = c["old"][int(rng.integers(len(c["old"])))] if c["old"] and rng.random() < 0.5 else ("", "")
            x0, y0 = c["centre"]
            angle = rng.uniform(0, np.pi)
            sx, sy = x0 + rng.normal(0, 0.01), y0 + rng.normal(0, 0.007)
            numbers = np.sort(rng.choice(np.arange(1, 4 * size + 3), size=size, replace=False))
            fantoir = f"{street_count:04d}"
            for number in numbers:
                rep = "bis" if rng.random() < 0.03 else ("ter" if rng.random() < 0.005 else "")
                d = number * 0.00008
                rows.append(
                    {
                        "id": f"{c['insee']}_{fantoir}_{int(number):05d}{'_' + rep if rep else ''}",
                        "numero": int(number),
                        "rep": rep,
                        "nom_voie": name,
                        "code_postal": c["postcode"],
                        "code_insee": c["insee"],
                        "nom_commune": c["name"],
                        "code_insee_ancienne_commune": old[1],
                        "nom_ancienne_commune": old[0],
                        "lon": round(sx + d * np.cos(angle), 6),
                        "lat": round(sy + d * np.sin(angle) * 0.66, 6),
                    }
                )
    return rows, {"communes": n_communes, "streets": street_count, "postcodes": len(postcodes)}


def typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 5:
        return word
    i = int(rng.integers(1, len(word) - 1))
    action = rng.random()
    if action < 0.4:
        return word[:i] + word[i + 1 :]  # a letter missing
    if action < 0.7:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # two swapped
    return word[:i] + str(rng.choice(list("aeioursnt"))) + word[i + 1 :]  # one wrong


def make_queries(rows: list[dict[str, object]], n_queries: int, seed: int = 16) -> list[dict[str, str]]:
    """Noisy queries; ``truth`` is the id, ``street`` the street of the address meant, ``kind`` the case."""
    rng = np.random.default_rng(seed)
    postcodes = sorted({str(r["code_postal"]) for r in rows})
    numbers: dict[str, set[int]] = {}
    for r in rows:
        numbers.setdefault(str(r["id"]).rsplit("_", 2 if r["rep"] else 1)[0], set()).add(int(r["numero"]))  # type: ignore[call-overload]
    queries = []
    for q in range(n_queries):
        row = rows[int(rng.integers(len(rows)))]
        street_id = str(row["id"]).rsplit("_", 2 if row["rep"] else 1)[0]
        kind = "existing"
        number = f"{row['numero']}{' ' + str(row['rep']) if row['rep'] else ''}"
        street = str(row["nom_voie"])
        city = (
            str(row["nom_commune"])
            if not row["nom_ancienne_commune"] or rng.random() < 0.7
            else str(row["nom_ancienne_commune"])
        )
        postcode = str(row["code_postal"])
        draw = rng.random()
        if draw < 0.03:  # a street that does not exist in that commune
            kind, street = (
                "invented",
                "Rue " + str(rng.choice(INVENTED)),
            )
        elif draw < 0.05:  # a commune of another department
            kind, postcode, city = (
                "invented",
                str(rng.choice(["75011", "69003", "13008", "59000"])),
                str(rng.choice(["Paris", "Lyon", "Marseille", "Lille"])),
            )
        elif draw < 0.07:  # a number that is not on the street
            absent = [n for n in range(1, 400) if n not in numbers[street_id]]
            kind, number = "absent_number", str(int(rng.choice(absent)))
        words = street.split()
        if rng.random() < 0.4 and words[0] in ABBREVIATE:
            words[0] = str(rng.choice(ABBREVIATE[words[0]]))
        words = [
            str(rng.choice(ABBREVIATE[w])) if w in ("Saint", "Sainte", "Général") and rng.random() < 0.4 else w
            for w in words
        ]
        if rng.random() < 0.15:
            longest = max(range(len(words)), key=lambda i: len(words[i]))
            words[longest] = typo(words[longest], rng)
        street_text = " ".join(words)
        if rng.random() < 0.05 and len(words) > 2:  # swapped word order: "Hugo rue Victor"
            street_text = " ".join(words[1:] + words[:1])
        if rng.random() < 0.3:
            street_text = strip_accents(street_text)
        if rng.random() < 0.1:
            city = strip_accents(city).upper()
        pc_draw = rng.random()
        if kind != "invented" or postcode[:2] == "80":
            if pc_draw < 0.3:
                postcode = ""
            elif pc_draw < 0.35:
                postcode = str(rng.choice(postcodes))  # wrong postcode of the department
        house = number + ("," if rng.random() < 0.1 else "")
        layout = rng.random()
        if layout < 0.08:
            text = f"{city}, {house} {street_text} {postcode}".strip()
        elif layout < 0.6:
            text = f"{house} {street_text}, {postcode} {city}".replace(" ,", ",")
        else:
            text = f"{house} {street_text} {postcode} {city}"
        queries.append(
            {
                "qid": str(q),
                "adresse": " ".join(text.split()),
                "truth": str(row["id"]),
                "street": street_id,
                "kind": kind,
            }
        )
    return queries


def write_csv(path: Path, rows: list[dict[str, object]] | list[dict[str, str]], delimiter: str = ";") -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def score(queries: list[dict[str, str]], found_id: list[str], found_type: list[str]) -> dict[str, float]:
    """Shares: exact (number), at street, wrong street among accepted, invented, missing number → another."""
    existing = [i for i, q in enumerate(queries) if q["kind"] == "existing"]
    invented = [i for i, q in enumerate(queries) if q["kind"] == "invented"]
    absent = [i for i, q in enumerate(queries) if q["kind"] == "absent_number"]
    real = existing + absent

    def street_of(i: int) -> str:
        ident = found_id[i]
        if found_type[i] == "housenumber":
            parts = ident.split("_")
            return "_".join(parts[:2])
        return ident

    accepted = [i for i in real if found_id[i] and found_type[i] in ("housenumber", "street")]
    return {
        "exact": sum(found_id[i] == queries[i]["truth"] for i in existing) / max(len(existing), 1),
        "at_street": sum(street_of(i) == queries[i]["street"] for i in real) / max(len(real), 1),
        "wrong_street": sum(street_of(i) != queries[i]["street"] for i in accepted) / max(len(accepted), 1),
        "invented": sum(bool(found_id[i]) and found_type[i] != "municipality" for i in invented)
        / max(len(invented), 1),
        "other_number": sum(found_type[i] == "housenumber" for i in absent) / max(len(absent), 1),
    }


def run_carroyage(ban: Path, queries_csv: Path, work: Path) -> dict[str, float]:
    for stale in ban.parent.glob(ban.name + ".carroyage-index*"):
        stale.unlink()
    build = measure.run(
        [sys.executable, "-c", f"from carroyage.address.geocode import BanGeocoder; BanGeocoder({str(ban)!r})"]
    )
    out = work / "carroyage_geocoded.csv"
    command = [sys.executable, "-m", "carroyage", "locate-csv", str(queries_csv), "--out", str(out)]
    command += ["--ban", str(ban), "--address-cols", "adresse", "--quiet", "--workers", "0"]
    run = measure.run(command)
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    return {
        "build_s": build.wall,
        "build_peak_mb": build.peak_mb,
        "seconds": run.wall,
        "peak_mb": run.peak_mb,
        "ids": [r["geocode_id"] for r in rows],  # type: ignore[dict-item]
        "types": [r["geocode_type"] for r in rows],  # type: ignore[dict-item]
    }


ADDOK_CONFIG = """
REDIS = {{"host": "127.0.0.1", "port": {port}, "indexes": {{"db": 0}}, "documents": {{"db": 1}}}}
BATCH_WORKERS = {workers}
QUERY_PROCESSORS_PYPATHS = ["addok.helpers.text.check_query_length", "addok_france.extract_address",
    "addok_france.clean_query", "addok_france.remove_leading_zeros"]
SEARCH_RESULT_PROCESSORS_PYPATHS = ["addok.helpers.results.match_housenumber", "addok_france.make_labels",
    "addok.helpers.results.score_by_importance", "addok.helpers.results.score_by_autocomplete_distance",
    "addok.helpers.results.score_by_str_distance", "addok.helpers.results.score_by_geo_distance",
    "addok.helpers.results.adjust_scores"]
PROCESSORS_PYPATHS = ["addok.helpers.text.tokenize", "addok.helpers.text.normalize", "addok_france.glue_ordinal",
    "addok_france.fold_ordinal", "addok_france.flag_housenumber", "addok.helpers.text.synonymize",
    "addok_fr.phonemicize"]
FIELDS = [{{"key": "name", "boost": 4, "null": False}}, {{"key": "street"}}, {{"key": "postcode"}},
    {{"key": "city"}}, {{"key": "housenumbers"}}, {{"key": "context"}}, {{"key": "citycode"}}]
FILTERS = ["type", "postcode", "citycode"]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def addok_missing() -> str:
    import importlib.util

    for module in ("addok", "addok_fr", "addok_france", "addok_csv"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install addok addok-fr addok-france addok-csv)"
    if not shutil.which("redis-server"):
        return "redis-server is not installed (apt-get install redis-server)"
    return ""


def run_addok(ban: Path, queries: list[dict[str, str]], work: Path) -> dict[str, object]:
    import httpx

    from carroyage.address.geocode import ban_to_addok

    addok = str(Path(sys.executable).parent / "addok")
    folder = Path(tempfile.mkdtemp(prefix="addok-", dir=work))
    redis_port, addok_port = free_port(), free_port()
    config = folder / "addok_local.py"
    config.write_text(ADDOK_CONFIG.format(port=redis_port, workers=os.cpu_count() or 1))
    env = {**os.environ, "ADDOK_CONFIG_MODULE": str(config)}
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = None
    try:
        wait_for(redis_port)
        documents = ban_to_addok(ban, folder / "ban.jsonl")
        start = time.perf_counter()
        for step in (["batch", str(documents)], ["ngrams"]):
            subprocess.run([addok, *step], env=env, check=True, capture_output=True)
        build = time.perf_counter() - start
        server = subprocess.Popen(
            [addok, "serve", "--host", "127.0.0.1", "--port", str(addok_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(addok_port)
        ids: list[str] = []
        types: list[str] = []
        start = time.perf_counter()
        for first in range(0, len(queries), 5_000):  # the CSV endpoint, 5,000 rows a request
            part = queries[first : first + 5_000]
            body = "qid;adresse\n" + "".join(f"{q['qid']};{q['adresse'].replace(';', ' ')}\n" for q in part)
            reply = httpx.post(
                f"http://127.0.0.1:{addok_port}/search/csv/",
                files={"data": ("q.csv", body.encode())},
                data={"columns": "adresse"},
                timeout=3600,
            )
            reply.raise_for_status()
            for row in csv.DictReader(reply.text.splitlines(), delimiter=";"):
                ids.append(row.get("result_id") or "")
                types.append(row.get("result_type") or "")
        seconds = time.perf_counter() - start
        memory = _redis_memory_mb(redis_port)
        return {"build_s": build, "seconds": seconds, "ids": ids, "types": types, "redis_mb": memory}
    finally:
        for proc in (server, redis):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


def _redis_memory_mb(port: int) -> float:
    try:
        info = subprocess.run(
            ["redis-cli", "-p", str(port), "info", "memory"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return float("nan")
    for line in info.splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1]) / 2**20
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--addresses", type=int, default=300_000)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--no-addok", action="store_true", help="Run carroyage only.")
    args = parser.parse_args()
    work = args.work / f"geocode_{args.addresses}"
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows, shape = make_department(args.addresses)
    queries = make_queries(rows, args.queries)
    ban = write_csv(work / "adresses-80.csv", rows)
    queries_csv = write_csv(work / "queries.csv", [{"qid": q["qid"], "adresse": q["adresse"]} for q in queries])
    kinds = {k: sum(q["kind"] == k for q in queries) for k in ("existing", "absent_number", "invented")}
    print(
        f"synthetic department: {len(rows):,} addresses, {shape['streets']:,} streets, {shape['communes']} communes, "
        f"{shape['postcodes']} postcodes; {len(queries):,} queries ({kinds}) in {time.perf_counter() - start:.1f} s"
    )
    results: dict[str, dict[str, object]] = {}
    ours = run_carroyage(ban, queries_csv, work)
    results["carroyage"] = {**score(queries, ours["ids"], ours["types"]), **ours}  # type: ignore[arg-type]
    missing = "" if not args.no_addok else "--no-addok"
    missing = missing or addok_missing()
    if missing:
        print(f"addok: skipped ({missing})")
    else:
        theirs = run_addok(ban, queries, work)
        results["addok"] = {**score(queries, theirs["ids"], theirs["types"]), **theirs}  # type: ignore[arg-type]
    print(f"\n{'':34}" + "".join(f"{name:>14}" for name in results) + "   target")
    lines = [
        ("exact at the number", "exact", "{:.2%}", "≥ 99 %"),
        ("right street (number or street)", "at_street", "{:.2%}", ""),
        ("wrong street among accepted", "wrong_street", "{:.2%}", "≤ 1 %"),
        ("invented for non-existent", "invented", "{:.2%}", "≤ 1 %"),
        ("missing number → another number", "other_number", "{:.2%}", "0"),
        ("geocoding (s, whole command)", "seconds", "{:.1f}", ""),
        ("index build (s)", "build_s", "{:.1f}", "< 30 s"),
        ("peak memory (MB)", "peak_mb", "{:.0f}", "< 2048"),
    ]
    for title, key, fmt, target in lines:
        values = "".join(
            f"{fmt.format(r[key]) if isinstance(r.get(key), (int, float)) else '-':>14}" for r in results.values()
        )
        print(f"{title:34}{values}   {target}")
    rates = {name: args.queries / float(r["seconds"]) for name, r in results.items()}  # type: ignore[arg-type]
    print(f"{'throughput (queries/s)':34}" + "".join(f"{rate:>14.0f}" for rate in rates.values()))
    if "addok" in results:
        print(f"{'addok redis memory (MB)':34}{'':>14}{float(results['addok']['redis_mb']):>14.0f}")  # type: ignore[arg-type]
        speedup = rates["carroyage"] / rates["addok"]
        gap = float(results["addok"]["exact"]) - float(results["carroyage"]["exact"])  # type: ignore[arg-type]
        print(f"\nthroughput carroyage / addok CSV endpoint: {speedup:.2f}x (target ≥ 3)")
        print(f"exact: carroyage {'not ' if gap > 0.01 else ''}within one point of addok ({-gap:+.2%})")
    ours_r = results["carroyage"]
    met = {
        "exact": float(ours_r["exact"]) >= TARGETS["exact"],  # type: ignore[arg-type]
        "wrong street": float(ours_r["wrong_street"]) <= TARGETS["wrong_street"],  # type: ignore[arg-type]
        "invented": float(ours_r["invented"]) <= TARGETS["invented"],  # type: ignore[arg-type]
        "build": float(ours_r["build_s"]) < TARGETS["build_s"],  # type: ignore[arg-type]
        "memory": float(ours_r["peak_mb"]) < TARGETS["memory_mb"],  # type: ignore[arg-type]
    }
    print("targets (carroyage): " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))
    print(json.dumps({name: {k: v for k, v in r.items() if k not in ("ids", "types")} for name, r in results.items()}))


if __name__ == "__main__":
    main()

import csv
import io
import json
import sys
import threading

import pytest
from browser import browser_page
from servers import client, free_port, process, serving

from carroyage.data import BAN_FIXTURE

INSIDE = {"lon": 2.304608, "lat": 49.91027}  # Amiens Nord


@pytest.fixture(scope="module")
def base_url():
    """`carroyage serve` as a user starts it, in its own process on 127.0.0.1."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "carroyage",
        "serve",
        "--port",
        str(port),
        "--ban",
        str(BAN_FIXTURE),
        "--max-upload-mb",
        "0.2",
    ]
    with process(command, port, timeout=60, ready="/openapi.json"):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def http(base_url):
    """A client of that server, never through a proxy (trust_env=False)."""
    with client(base_url) as session:
        yield session


def test_locate_api_over_http(http):
    inside = http.get("/api/locate", params=INSIDE).json()
    assert inside["status"] == "in" and inside["quartiers"][0]["code"] == "QN08003M"
    address = http.get("/api/locate", params={"adresse": "8 bd du Port, Amiens"}).json()
    assert address["status"] == "out" and address["geocoding"]["label"] == "8 Boulevard du Port 80000 Amiens"
    assert http.get("/api/locate", params={"adresse": "zzzz qqqq"}).status_code == 404
    assert http.get("/api/locate", params={"lon": 400, "lat": 1}).status_code == 400
    assert http.get("/api/locate").status_code == 400
    spec = http.get("/openapi.json").json()
    assert {"/api/locate", "/api/locate-csv", "/api/zones"} <= set(spec["paths"])


def test_csv_upload_and_its_size_limit(http):
    content = "id;lon;lat\n1;2.304608;49.91027\n2;abc;49\n3;2.1;49.95\n"
    reply = http.post("/api/locate-csv", files={"file": ("benef.csv", content.encode())})
    assert reply.status_code == 200 and "benef_qpv.csv" in reply.headers["content-disposition"]
    rows = reply.text.splitlines()
    assert len(rows) == 4 and rows[1].startswith("1;2.304608;49.91027;in;qpv;QN08003M")
    assert json.loads(reply.headers["x-carroyage-summary"]) == {"in": 1, "invalid": 1, "out": 1}
    big = ("id;lon;lat\n" + "1;2.3;49.9\n" * 30_000).encode()
    assert http.post("/api/locate-csv", files={"file": ("big.csv", big)}).status_code == 413
    bad = http.post("/api/locate-csv", files={"file": ("x.csv", b"id;x\n1;2\n")})
    assert bad.status_code == 400 and "x.csv" in bad.json()["detail"]


def test_eight_concurrent_clients_all_answered(base_url):
    # latency is measured by benchmarks/bench_serve.py, not here: a shared machine's load is no test
    answers, errors = [], []

    def one_client(seed: int) -> None:
        with client(base_url) as session:
            for i in range(10):
                reply = session.get("/api/locate", params={"lon": 2.28 + 0.001 * ((seed * 7 + i) % 40), "lat": 49.90})
                (answers if reply.status_code == 200 else errors).append(reply.status_code)

    threads = [threading.Thread(target=one_client, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(answers) == 80


def test_page_answers_in_a_browser(base_url, tmp_path):
    with browser_page(offline=True) as page:
        page.goto(base_url)
        page.fill("#adresse", "1 rue des Tilleuls, Amiens")
        page.click("button[type=submit]")
        page.wait_for_selector("#resultat .statut")
        text = page.locator("#resultat").inner_text()
        assert "Dans la zone" in text and "QN08003M Amiens Nord" in text and "1 Rue des Tilleuls 80080 Amiens" in text
        page.wait_for_selector("path.leaflet-interactive")  # the quartier drawn around the answer
        page.screenshot(path=str(tmp_path / "page.png"))
        page.fill("#adresse", "8 bd du Port, Amiens")
        page.click("button[type=submit]")
        page.wait_for_function("() => document.querySelector('#resultat').innerText.includes('Hors zone')")
        assert page.errors == []


def test_addok_compatible_search_over_http(http):
    answer = http.get("/search", params={"q": "8 bd du Port 80000 Amiens", "limit": 2}).json()
    assert answer["type"] == "FeatureCollection" and answer["limit"] == 2 and answer["query"]
    feature = answer["features"][0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [2.290084, 49.897443]}
    props = feature["properties"]
    assert {"label", "score", "housenumber", "id", "type", "name", "postcode", "citycode", "x", "y"} <= set(props)
    assert {"city", "context", "importance", "street"} <= set(props)
    assert props["x"] == 648952.58 and props["housenumber"] == "8" and props["type"] == "housenumber"
    elsewhere = http.get("/search", params={"q": "8 boulevard du Port 75001 Paris"}).json()
    assert elsewhere["features"] == []
    near = http.get("/reverse", params={"lon": 2.29009, "lat": 49.89745}).json()
    assert near["features"][0]["properties"]["id"] == "80021_6590_00008"
    located = http.get("/api/locate", params={"adresse": "rue de la Limite, Amiens"}).json()
    assert located["street_partly_in"] is True and located["status"] == "uncertain"


def test_serve_over_two_worker_processes():
    port = free_port()
    command = [sys.executable, "-m", "carroyage", "serve", "--port", str(port), "--ban", str(BAN_FIXTURE)]
    with (
        process([*command, "--workers", "2"], port, timeout=90, ready="/openapi.json"),
        client(f"http://127.0.0.1:{port}") as session,
    ):
        for _ in range(40):  # up to both workers: each must have loaded the index
            reply = session.get("/search", params={"q": "1 rue des Tilleuls, Amiens"}, headers={"Connection": "close"})
            assert reply.status_code == 200
            assert reply.json()["features"][0]["properties"]["label"] == "1 Rue des Tilleuls 80080 Amiens"


def test_api_refusals_say_in_french_what_was_wrong(http):
    assert http.get("/search").json()["detail"] == "paramètre manquant : q"
    assert (
        http.get("/search", params={"q": "x", "limit": 0}).json()["detail"] == "limit 0 : attendu un nombre de 1 à 100"
    )
    assert http.get("/reverse", params={"lon": 2.3}).json()["detail"] == "paramètre manquant : lat"
    missing = http.get("/api/locate", params={"adresse": "zzzz qqqq"})
    assert missing.status_code == 404 and missing.json()["detail"] == "adresse introuvable : 'zzzz qqqq'"
    content = b"id;adresse\n1;8 bd du Port\n"
    column = http.post("/search/csv", files={"data": ("benef.csv", content)}, data={"columns": ["rue"]})
    assert column.json()["detail"] == "benef.csv : colonne 'rue' absente ; attendu l'une des colonnes id ou adresse"
    empty = http.post("/api/locate-csv", files={"file": ("vide.csv", b"")})
    assert empty.json()["detail"] == "vide.csv : fichier vide ; attendu une ligne d'en-tête"


def test_upload_can_neutralise_formulas_for_a_spreadsheet(tmp_path):
    # `locate-csv --excel-safe` on the web: a form field, off by default, and a checkbox on the page
    import geopandas as gpd
    from shapely.geometry import box

    from carroyage.address.check import Checker
    from carroyage.address.lookup import ZoneSet
    from carroyage.address.server import create_app

    layer = gpd.GeoDataFrame(
        {"code_qp": ["+Z1"], "lib_qp": ['=HYPERLINK("http://example.invalid","x")']},
        geometry=[box(2.29, 49.90, 2.32, 49.92)],
        crs=4326,
    )
    zones = ZoneSet.from_layers([("qpv", layer, "formules.geojson")])
    content = b"id;lon;lat;note\n1;2.3046;49.9103;=1+1\n"
    with serving(create_app(Checker(zones))) as url, client(url) as session:
        rows = {}
        for form in ({}, {"excel_safe": "false"}, {"excel_safe": "true"}):
            reply = session.post("/api/locate-csv", files={"file": ("a.csv", content)}, data=form)
            assert reply.status_code == 200, reply.text
            (row,) = csv.DictReader(io.StringIO(reply.text), delimiter=";")
            rows[form.get("excel_safe")] = row
        assert rows[None] == rows["false"] and rows[None]["zone_code"] == "+Z1"
        assert rows[None]["zone_name"] == '=HYPERLINK("http://example.invalid","x")'
        safe = rows["true"]
        assert (safe["zone_code"], safe["zone_name"]) == ("'+Z1", '\'=HYPERLINK("http://example.invalid","x")')
        assert (safe["note"], safe["status"], safe["lon"]) == ("=1+1", "in", "2.3046")  # the file's own cells stay
        spec = session.get("/openapi.json").json()
        body = spec["paths"]["/api/locate-csv"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
        schema = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]] if "$ref" in body else body
        field = schema["properties"]["excel_safe"]
        assert field["type"] == "boolean" and field["default"] is False and "--excel-safe" in field["description"]
        page = session.get("/").text
        assert '<input type="checkbox" id="excel" name="excel_safe">' in page  # unchecked
        assert '<label class="fr-label" for="excel">Protéger les cellules ajoutées pour un tableur' in page

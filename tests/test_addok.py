"""The addok backend against a real addok and Redis on 127.0.0.1, loaded with the BAN fixture;
and carroyage's addok-compatible endpoints checked against that real addok's response shape."""

import csv
import importlib.util
import io
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from servers import client, free_port, process, require

from carroyage.address.geocode import AddokGeocoder, ban_to_addok
from carroyage.data import BAN_FIXTURE
from carroyage.errors import GeocodingError

# the configuration of the national address API (addok-france + addok-fr), as their READMEs give it
ADDOK_FRANCE = """
QUERY_PROCESSORS_PYPATHS = [
    "addok.helpers.text.check_query_length",
    "addok_france.extract_address",
    "addok_france.clean_query",
    "addok_france.remove_leading_zeros",
]
SEARCH_RESULT_PROCESSORS_PYPATHS = [
    "addok.helpers.results.match_housenumber",
    "addok_france.make_labels",
    "addok.helpers.results.score_by_importance",
    "addok.helpers.results.score_by_autocomplete_distance",
    "addok.helpers.results.score_by_str_distance",
    "addok.helpers.results.score_by_geo_distance",
    "addok.helpers.results.adjust_scores",
]
PROCESSORS_PYPATHS = [
    "addok.helpers.text.tokenize",
    "addok.helpers.text.normalize",
    "addok_france.glue_ordinal",
    "addok_france.fold_ordinal",
    "addok_france.flag_housenumber",
    "addok.helpers.text.synonymize",
    "addok_fr.phonemicize",
]
FIELDS = [
    {"key": "name", "boost": 4, "null": False},
    {"key": "street"},
    {"key": "postcode", "boost": lambda doc: 1.2 if doc.get("type") == "municipality" else 1},
    {"key": "city"},
    {"key": "housenumbers"},
    {"key": "context"},
    {"key": "citycode"},
]
FILTERS = ["type", "postcode", "citycode"]
"""


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def addok_url(tmp_path_factory):
    redis = require("redis-server")
    addok = require("addok")
    folder = tmp_path_factory.mktemp("addok")
    redis_port, addok_port = free_port(), free_port()
    config = folder / "addok_local.py"
    config.write_text(
        f'REDIS = {{"host": "127.0.0.1", "port": {redis_port}, "indexes": {{"db": 0}}, "documents": {{"db": 1}}}}\n'
        "BATCH_WORKERS = 1\n" + (ADDOK_FRANCE if _has("addok_france") and _has("addok_fr") else "")
    )
    env = {"ADDOK_CONFIG_MODULE": str(config)}
    with process(
        [redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], redis_port
    ):
        documents = ban_to_addok(BAN_FIXTURE, folder / "ban.jsonl")
        for command in (["batch", str(documents)], ["ngrams"]):
            subprocess.run([addok, *command], env={**os.environ, **env}, check=True, capture_output=True, timeout=120)
        with process([addok, "serve", "--host", "127.0.0.1", "--port", str(addok_port)], addok_port, env):
            yield f"http://127.0.0.1:{addok_port}"


def test_addok_backend_geocodes_the_fixture(addok_url):
    match = AddokGeocoder(addok_url).geocode("8 Boulevard du Port 80000 Amiens")
    assert match.label == "8 Boulevard du Port 80000 Amiens" and (match.lon, match.lat) == (2.290084, 49.897443)
    assert match.kind == "housenumber" and 0.5 < match.score <= 1
    assert AddokGeocoder(addok_url).geocode("zzzz qqqq wwww") is None


@pytest.fixture
def dead_proxy(monkeypatch):
    """Every proxy variable pointing at a closed port of 127.0.0.1, and no NO_PROXY: a request that
    goes through the proxy fails (connection refused)."""
    proxy = f"http://127.0.0.1:{free_port()}"
    proxies_at(monkeypatch, proxy)
    return proxy


def proxies_at(monkeypatch, url: str) -> None:
    """Every proxy variable pointing at ``url``, and no NO_PROXY."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, url)
        monkeypatch.setenv(name.lower(), url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_locate_command_with_addok(addok_url, dead_proxy):
    # a loopback addok is reached directly, whatever HTTP_PROXY says (CI machines set it)
    result = subprocess.run(
        [sys.executable, "-m", "carroyage", "locate", "1 Rue des Tilleuls 80080 Amiens", "--addok", addok_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "1 Rue des Tilleuls 80080 Amiens" in result.stdout and "DANS la zone" in result.stdout


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_addok_is_never_reached_through_a_proxy(addok_url, dead_proxy, host):
    url = addok_url.replace("127.0.0.1", host)
    match = AddokGeocoder(url).geocode("8 Boulevard du Port 80000 Amiens")
    assert match is not None and match.label == "8 Boulevard du Port 80000 Amiens"


@pytest.fixture(scope="module")
def carroyage_url():
    """`carroyage serve` with the same BAN fixture."""
    port = free_port()
    command = [sys.executable, "-m", "carroyage", "serve", "--port", str(port), "--ban", str(BAN_FIXTURE)]
    with process(command, port, timeout=60):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def answering_proxy(monkeypatch):
    """A proxy on 127.0.0.1 that answers every request itself with one addok match labelled
    "par le proxy", set in every proxy variable (no NO_PROXY): what reached it is plain."""
    body = json.dumps(
        {"features": [{"geometry": {"coordinates": [2.3, 49.9]}, "properties": {"label": "par le proxy", "score": 1}}]}
    ).encode()

    class Proxy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    proxies_at(monkeypatch, url)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_loopback_addoks_bypass_the_proxy_the_others_use_it(carroyage_url, answering_proxy, monkeypatch):
    # carroyage serve answers addok's /search: no addok needed for this one
    assert AddokGeocoder(carroyage_url).geocode("8 bd du Port, Amiens").id == "80021_6590_00008"
    closed = free_port()  # nothing listens there: reached directly, it refuses; through the proxy, it would answer
    for url in (f"http://localhost:{closed}", f"http://127.0.0.2:{closed}", f"http://[::1]:{closed}"):
        with pytest.raises(GeocodingError, match=r" : pas de réponse \(.*\) ; le serveur est-il lancé \?$"):
            AddokGeocoder(url).geocode("8 bd du Port, Amiens")
    # any other server goes through the proxies of the environment, and NO_PROXY is honoured
    assert AddokGeocoder("http://addok.example.invalid:7878").geocode("x").label == "par le proxy"
    monkeypatch.setenv("NO_PROXY", "example.invalid")
    monkeypatch.setenv("no_proxy", "example.invalid")
    with pytest.raises(GeocodingError, match=r"^addok http://addok\.example\.invalid:7878 : pas de réponse"):
        AddokGeocoder("http://addok.example.invalid:7878", timeout=2).geocode("x")


@pytest.fixture(scope="module")
def addok_http(addok_url):
    """Clients of the two servers, never through a proxy (trust_env=False)."""
    with client(addok_url) as session:
        yield session


@pytest.fixture(scope="module")
def carroyage_http(carroyage_url):
    with client(carroyage_url) as session:
        yield session


def _need_addok_france():
    for module in ("addok_france", "addok_fr", "addok_csv"):
        if not _has(module):
            pytest.skip(f"{module} is not installed (pip install addok-fr addok-france addok-csv)")


def test_search_answers_in_addoks_own_shape(addok_http, carroyage_http):
    _need_addok_france()
    params = {"q": "8 Boulevard du Port 80000 Amiens", "limit": 3}
    theirs = addok_http.get("/search/", params=params).json()
    ours = carroyage_http.get("/search", params=params).json()
    assert set(ours) == set(theirs) and ours["type"] == "FeatureCollection" and ours["limit"] == 3
    assert ours["query"] == theirs["query"]
    mine, real = ours["features"][0], theirs["features"][0]
    assert set(mine) == set(real) and mine["geometry"] == real["geometry"]
    assert set(real["properties"]) <= set(mine["properties"])  # every property addok gives, we give
    for key in ("label", "id", "type", "housenumber", "name", "postcode", "citycode", "city", "street"):
        assert mine["properties"][key] == real["properties"][key], key
    assert isinstance(mine["properties"]["score"], float) and 0 < mine["properties"]["score"] <= 1


def test_search_filters_and_several_candidates(addok_http, carroyage_http):
    _need_addok_france()
    for params in ({"q": "rue des tilleuls", "postcode": "80080"}, {"q": "rue jean jaures", "citycode": "80164"}):
        theirs = addok_http.get("/search/", params=params).json()
        ours = carroyage_http.get("/search", params=params).json()
        assert ours["filters"] == theirs["filters"]
        assert ours["features"][0]["properties"]["label"] == theirs["features"][0]["properties"]["label"]
    none = carroyage_http.get("/search", params={"q": "rue des tilleuls", "postcode": "80450"}).json()
    assert none["features"] == []  # a filter is strict, as addok's
    many = carroyage_http.get("/search", params={"q": "rue de la", "limit": 10}).json()
    scores = [f["properties"]["score"] for f in many["features"]]
    assert scores == sorted(scores, reverse=True)
    assert carroyage_http.get("/search").status_code == 400  # q is required, as addok's
    assert carroyage_http.get("/search", params={"q": "x", "limit": 0}).status_code == 400


def test_reverse_answers_in_addoks_own_shape(addok_http, carroyage_http):
    _need_addok_france()
    params = {"lon": 2.29009, "lat": 49.89745}
    theirs = addok_http.get("/reverse/", params=params).json()
    ours = carroyage_http.get("/reverse", params=params).json()
    assert set(ours) == set(theirs)
    assert ours["features"][0]["properties"]["id"] == theirs["features"][0]["properties"]["id"] == "80021_6590_00008"
    assert set(theirs["features"][0]["properties"]) <= set(ours["features"][0]["properties"])
    assert carroyage_http.get("/reverse", params={"lon": 2.3}).status_code == 400


def test_search_csv_appends_addok_csvs_columns(addok_http, carroyage_http):
    _need_addok_france()
    content = "id;adresse;cp\n1;8 Boulevard du Port;80000\n2;1 rue des Tilleuls;80080\n3;zzzz qqqq;99999\n"
    form = {"columns": ["adresse"]}  # addok 1.3.2 + addok-csv 1.1.0 answer 500 to a filter column: ours alone below

    def post(session) -> list[dict[str, str]]:
        reply = session.post("/search/csv/", files={"data": ("benef.csv", content.encode())}, data=form)
        assert reply.status_code == 200, reply.text
        assert "benef.geocoded.csv" in reply.headers["content-disposition"]
        return list(csv.DictReader(io.StringIO(reply.text), delimiter=";"))

    theirs, ours = post(addok_http), post(carroyage_http)
    assert list(theirs[0])[:3] == list(ours[0])[:3] == ["id", "adresse", "cp"]
    assert set(theirs[0]) <= set(ours[0])  # every column addok-csv appends, we append
    for mine, real in zip(ours, theirs, strict=True):
        for key in ("result_label", "result_type", "result_id", "result_housenumber", "result_postcode"):
            assert mine[key] == real[key], (key, mine, real)
    assert ours[2]["result_label"] == "" and ours[2]["latitude"] == ""
    assert ours[0]["result_name"] == real_name(theirs[0]) == "Boulevard du Port"
    reply = carroyage_http.post(
        "/search/csv",
        files={"data": ("benef.csv", content.replace("80000", "80450").encode())},
        data={"columns": ["adresse"], "postcode": "cp"},
    )
    filtered = list(csv.DictReader(io.StringIO(reply.text), delimiter=";"))
    assert filtered[0]["result_label"] == "" and filtered[1]["result_label"] == "1 Rue des Tilleuls 80080 Amiens"


def real_name(row: dict[str, str]) -> str:
    return row["result_name"]

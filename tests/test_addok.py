"""The addok backend against a real addok and Redis on 127.0.0.1, loaded with the BAN fixture."""

import subprocess
import sys

import pytest
from servers import free_port, process, require

from carroyage.address.geocode import AddokGeocoder, ban_to_addok
from carroyage.data import BAN_FIXTURE


@pytest.fixture(scope="module")
def addok_url(tmp_path_factory):
    redis = require("redis-server")
    addok = require("addok")
    folder = tmp_path_factory.mktemp("addok")
    redis_port, addok_port = free_port(), free_port()
    config = folder / "addok_local.py"
    config.write_text(
        f'REDIS = {{"host": "127.0.0.1", "port": {redis_port}, "indexes": {{"db": 0}}, "documents": {{"db": 1}}}}\n'
        "BATCH_WORKERS = 1\n"
    )
    env = {"ADDOK_CONFIG_MODULE": str(config)}
    with process(
        [redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], redis_port
    ):
        documents = ban_to_addok(BAN_FIXTURE, folder / "ban.jsonl")
        for command in (["batch", str(documents)], ["ngrams"]):
            subprocess.run(
                [addok, *command], env={**__import__("os").environ, **env}, check=True, capture_output=True, timeout=120
            )
        with process([addok, "serve", "--host", "127.0.0.1", "--port", str(addok_port)], addok_port, env):
            yield f"http://127.0.0.1:{addok_port}"


def test_addok_backend_geocodes_the_fixture(addok_url):
    match = AddokGeocoder(addok_url).geocode("8 Boulevard du Port 80000 Amiens")
    assert match.label == "8 Boulevard du Port 80000 Amiens" and (match.lon, match.lat) == (2.290084, 49.897443)
    assert match.kind == "housenumber" and 0.5 < match.score <= 1
    assert AddokGeocoder(addok_url).geocode("zzzz qqqq wwww") is None


def test_locate_command_with_addok(addok_url):
    result = subprocess.run(
        [sys.executable, "-m", "carroyage", "locate", "1 Rue des Tilleuls 80080 Amiens", "--addok", addok_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "1 Rue des Tilleuls 80080 Amiens" in result.stdout and "DANS la zone" in result.stdout

import gzip
import json
import shutil

import numpy as np
import pyproj
import pytest
import shapely
from conftest import carroyage

from carroyage.address.geocode import BanGeocoder
from carroyage.address.lookup import load_zones
from carroyage.address.normalise import normalise, parse
from carroyage.data import BAN_FIXTURE, QPV_2024
from carroyage.errors import InputError
from carroyage.layers import read_official

TO_WGS = pyproj.Transformer.from_crs(2154, 4326, always_xy=True)


@pytest.fixture(scope="module")
def zones():
    return load_zones([QPV_2024])


@pytest.fixture(scope="module")
def amiens_nord():
    official = read_official(QPV_2024).to_crs(2154)
    return official.set_index("code_qp").geometry["QN08003M"]


def run(*args, real=False):
    return carroyage(*args, real=real)


def test_inside_amiens_nord_outside_in_a_field_and_near_a_boundary(zones, amiens_nord):
    inside = TO_WGS.transform(*amiens_nord.representative_point().coords[0])
    field = (2.10, 49.95)  # farmland west of Amiens
    ring = shapely.get_exterior_ring(
        amiens_nord.buffer(15).geoms[0] if hasattr(amiens_nord.buffer(15), "geoms") else amiens_nord.buffer(15)
    )
    near = TO_WGS.transform(*ring.coords[0])  # every point of that ring is 15 m from the quartier
    lon, lat = np.array([inside[0], field[0], near[0]]), np.array([inside[1], field[1], near[1]])
    located = zones.locate(lon, lat, tolerance=30)
    assert located.status().tolist() == ["in", "out", "uncertain"]
    assert located.quartiers(0)[0]["code"] == "QN08003M" and located.quartiers(0)[0]["distance_m"] < -30
    assert located.quartiers(2)[0]["distance_m"] == pytest.approx(15, abs=0.5)
    assert zones.locate(lon[2:], lat[2:], tolerance=5).status().tolist() == ["out"]


def test_overseas_quartiers_are_measured_in_their_own_projection(zones):
    official = read_official(QPV_2024)
    reunion = official[official["insee_dep"] == "974"].iloc[0]
    point = reunion.geometry.representative_point()
    located = zones.locate(np.array([point.x]), np.array([point.y]), tolerance=0)
    assert located.status()[0] == "in" and located.quartiers(0)[0]["code"] == reunion["code_qp"]


def test_zones_without_area_are_reported(zones):
    assert zones.dropped == ["qpv QN09105I", "qpv QN09113I", "qpv QN09503I"]


def test_normalise_and_parse():
    assert normalise(["Bd St-Éloi", "Av. du Gal Leclerc"]).to_pylist() == [
        "boulevard saint eloi",
        "avenue du general leclerc",
    ]
    parsed = parse("12 ter r. des Tilleuls 80080 AMIENS", {"amiens"})
    assert (parsed.number, parsed.repetition, parsed.street, parsed.postcode, parsed.city) == (
        12,
        "ter",
        "rue des tilleuls",
        "80080",
        "amiens",
    )


@pytest.fixture(scope="module")
def ban(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ban")
    copy = folder / "adresses-80.csv"
    shutil.copy(BAN_FIXTURE, copy)
    return BanGeocoder(copy)


def test_geocoding_the_real_address(ban):
    match = ban.geocode("8 bd du Port, Amiens")
    assert match.label == "8 Boulevard du Port 80000 Amiens" and match.id == "80021_6590_00008"
    assert (match.lon, match.lat) == (2.290084, 49.897443) and match.score == 1.0


@pytest.mark.parametrize(
    "query,label,score",
    [
        ("12 bis rue des Tilleuls, Amiens", "12 bis Rue des Tilleuls 80080 Amiens", 1.0),
        ("12 rue des tilleuls 80080", "12 Rue des Tilleuls 80080 Amiens", 1.0),
        ("9 rue des Tilleuls Amiens", "7 Rue des Tilleuls 80080 Amiens", 0.8),  # no 9: the nearest number
        ("rue des tilleuls amiens", "Rue des Tilleuls 80080 Amiens", 0.6),  # no number: the street
        ("10 r jean jaures camon", "10 Rue Jean Jaurès 80450 Camon", 1.0),
        ("5 rue st eloi 80000 amiens", "5 Rue Saint-Éloi 80000 Amiens", 1.0),
    ],
)
def test_geocoding_variants(ban, query, label, score):
    match = ban.geocode(query)
    assert match.label == label and match.score == pytest.approx(score)


def test_geocoding_nothing_and_the_index_cache(ban, tmp_path):
    assert ban.geocode("zzzz qqqq") is None
    index = ban.path.with_name(ban.path.name + ".carroyage-index.parquet")
    assert index.is_file()
    again = BanGeocoder(ban.path)  # from the cached index
    assert again.geocode("8 bd du Port, Amiens").id == "80021_6590_00008"


def test_gzipped_ban_and_bad_ban(tmp_path):
    packed = tmp_path / "adresses-80.csv.gz"
    packed.write_bytes(gzip.compress(BAN_FIXTURE.read_bytes()))
    assert BanGeocoder(packed).geocode("8 bd du Port, Amiens").id == "80021_6590_00008"
    bad = tmp_path / "adresses-99.csv"
    bad.write_text("a;b\n1;2\n")
    with pytest.raises(InputError, match="not a BAN addresses file"):
        BanGeocoder(bad)


def test_locate_command_in_french_and_json():
    human = run("locate", "8 bd du Port, Amiens", "--ban", BAN_FIXTURE, real=True)
    assert human.returncode == 0, human.stderr
    assert "Adresse trouvée : 8 Boulevard du Port 80000 Amiens" in human.stdout and "HORS zone" in human.stdout
    answer = json.loads(run("locate", "--lon", "2.304608", "--lat", "49.91027", "--json").stdout)
    assert (
        answer["status"] == "in"
        and answer["quartiers"][0]["code"] == "QN08003M"
        and answer["quartiers"][0]["type"] == "qpv"
    )


def test_locate_command_errors():
    for args, expected in (
        (("locate", "8 bd du Port, Amiens"), "needs a BAN file (--ban) or an addok server (--addok)"),
        (("locate",), "expected an address, or both --lon and --lat"),
        (("locate", "--lon", "500", "--lat", "49"), "expected longitude and latitude in decimal degrees"),
        (("locate", "zzzz qqqq", "--ban", BAN_FIXTURE), "address not found"),
        (("locate", "x", "--addok", "http://127.0.0.1:9"), "addok at http://127.0.0.1:9: no answer"),
    ):
        result = run(*args)
        lines = [line for line in result.stderr.splitlines() if not line.startswith("note:")]
        assert result.returncode == 2 and len(lines) == 1 and expected in lines[0], result.stderr

import gzip
import json
import shutil

import numpy as np
import pyarrow.parquet as pq
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


def test_geos_calls_on_shared_zones_hold_the_territorys_lock(monkeypatch, zones, amiens_nord):
    # GEOS builds a prepared geometry's indexes on first use without a lock: two service threads
    # doing so at once corrupted the heap (the server aborted: "malloc(): unaligned tcache chunk")
    held = []

    def checked(function):
        def call(*args, **kwargs):
            held.append(all(t.geos.locked() for t in zones.territories if t.epsg == 2154))
            return function(*args, **kwargs)

        return call

    for name in ("contains_xy", "distance"):
        monkeypatch.setattr(shapely, name, checked(getattr(shapely, name)))
    lon, lat = TO_WGS.transform(*shapely.get_coordinates(amiens_nord.representative_point())[0])
    zones.locate(np.array([lon]), np.array([lat]), tolerance=5.0)
    assert zones.nearest(lon, lat) is not None
    assert len(held) == 3 and all(held)


def test_concurrent_first_lookups_on_fresh_zones():
    import threading

    fresh = load_zones([QPV_2024])
    boxes = np.concatenate([t.lonlat_boxes for t in fresh.territories])
    rng = np.random.default_rng(3)
    pick = boxes[rng.integers(0, len(boxes), 2000)]
    lon = pick[:, 0] + rng.random(2000) * (pick[:, 2] - pick[:, 0])
    lat = pick[:, 1] + rng.random(2000) * (pick[:, 3] - pick[:, 1])
    expected = fresh.locate(lon, lat, tolerance=5.0).status().tolist()
    fresh = load_zones([QPV_2024])  # unprepared again: every thread's first use at once
    start, found = threading.Barrier(4), []

    def work():
        start.wait()
        found.append(fresh.locate(lon, lat, tolerance=5.0).status().tolist())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [expected] * 4


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
    "query,label,score,kind",
    [
        ("12 bis rue des Tilleuls, Amiens", "12 bis Rue des Tilleuls 80080 Amiens", 1.0, "housenumber"),
        ("12 rue des tilleuls 80080", "12 Rue des Tilleuls 80080 Amiens", 1.0, "housenumber"),
        ("9 rue des Tilleuls Amiens", "Rue des Tilleuls 80080 Amiens", 0.9, "street"),  # no 9: the street
        ("rue des tilleuls amiens", "Rue des Tilleuls 80080 Amiens", 0.9, "street"),  # no number: the street
        ("10 r jean jaures camon", "10 Rue Jean Jaurès 80450 Camon", 1.0, "housenumber"),
        ("5 rue st eloi 80000 amiens", "5 Rue Saint-Éloi 80000 Amiens", 1.0, "housenumber"),
        ("5 Rue St-Éloi - 80000 AMIENS CEDEX 1", "5 Rue Saint-Éloi 80000 Amiens", 1.0, "housenumber"),
        ("7 ter rue Saint-Eloi, Amiens", "7 Rue Saint-Éloi 80000 Amiens", 0.9, "housenumber"),  # no 7 ter: 7, said
        ("Amiens, 8 bd du Port", "8 Boulevard du Port 80000 Amiens", 1.0, "housenumber"),  # commune first
        ("8 boulevard du port 80021", "8 Boulevard du Port 80000 Amiens", 1.0, "housenumber"),  # INSEE code
        ("2 rue de l'eglise, Salouël-Ancienne", "2 Rue de l'Église 80480 Saleux", 1.0, "housenumber"),  # old commune
        ("4 rue de l eglise 80725", "4 Rue de l'Église 80480 Saleux", 1.0, "housenumber"),  # its INSEE code
        ("1 lieu-dit Le Bois Robert, Camon", "1 Chemin Rural 80450 Camon", 1.0, "housenumber"),  # a lieu-dit
        ("8 boulevard du Port 80450 Camon", None, None, None),  # Camon has no such street
    ],
)
def test_geocoding_variants(ban, query, label, score, kind):
    match = ban.geocode(query)
    if label is None:
        assert match is None
        return
    assert (match.label, match.kind) == (label, kind) and match.score == pytest.approx(score)


# -- issue 15: the five examples of its "Why" ------------------------------------------------------
def test_postcode_and_commune_elsewhere_are_not_found(ban):
    # was: 8 Boulevard du Port 80000 Amiens (score 0.67), HORS zone
    assert ban.geocode("8 boulevard du Port 75001 Paris") is None
    result = run("locate", "8 boulevard du Port 75001 Paris", "--ban", BAN_FIXTURE)
    assert result.returncode == 2 and "adresse introuvable : '8 boulevard du Port 75001 Paris'" in result.stderr


def test_a_missing_number_is_the_street_never_another_number(ban):
    # was: 12 Rue Jean Jaurès (score 0.8, out) as if it were the address
    match = ban.geocode("14 rue Jean Jaurès")
    assert match.kind == "street" and match.housenumber == "" and match.label == "Rue Jean Jaurès 80450 Camon"
    assert match.position == "street_centre" and match.note == "number_not_found"
    assert ban.geocode("5 avenue de la Paix, Amiens").position == "street_centre"  # no odd number at all
    parsed = json.loads(run("locate", "14 rue Jean Jaurès", "--ban", BAN_FIXTURE, "--json").stdout)
    assert parsed["geocoding"]["type"] == "street" and parsed["geocoding"]["housenumber"] == ""
    assert parsed["status"] != "in" and "numéro absent de la voie" in parsed["reason"]


def test_a_missing_number_between_two_others_is_interpolated(ban):
    fourteen, eighteen, sixteen = (ban.geocode(f"{n} bd du Port, Amiens") for n in (14, 18, 16))
    assert sixteen.kind == "street" and sixteen.position == "interpolated"
    assert sixteen.lon == pytest.approx((fourteen.lon + eighteen.lon) / 2, abs=1e-9)
    assert sixteen.lat == pytest.approx((fourteen.lat + eighteen.lat) / 2, abs=1e-9)


def test_comma_after_the_number_and_commune_only(ban):
    # was: both "not found"
    paix = ban.geocode("2, avenue de la Paix")
    assert paix.label == "2 Avenue de la Paix 80080 Amiens" and paix.kind == "housenumber"
    commune = ban.geocode("Amiens")
    assert commune.kind == "municipality" and commune.label == "Amiens" and commune.citycode == "80021"
    answer = json.loads(run("locate", "Amiens", "--ban", BAN_FIXTURE, "--json").stdout)
    assert answer["status"] == "uncertain" and answer["geocoding"]["type"] == "municipality"


def test_a_street_level_answer_is_at_most_uncertain(zones):
    from carroyage.address.check import Checker

    checker = Checker(zones, BanGeocoder(BAN_FIXTURE))
    whole = checker.check("9 rue des Tilleuls, Amiens")  # every address of the street is in Amiens Nord
    assert whole["status"] == "uncertain" and "toute la voie est dans la zone QN08003M" in whole["reason"]
    crossing = checker.check("rue de la Limite, Amiens")
    assert crossing["status"] == "uncertain" and crossing["street_partly_in"] is True
    assert checker.check("1 rue de la Limite, Amiens")["street_partly_in"] is True
    assert checker.check("8 bd du Port, Amiens")["street_partly_in"] is False


def test_candidates_from_the_command_line():
    many = json.loads(
        run("locate", "1 rue de la lim, Amiens", "--ban", BAN_FIXTURE, "--candidates", "3", "--json").stdout
    )
    assert [c["label"] for c in many["candidates"]][:1] == ["1 Rue de la Limite 80080 Amiens"]
    assert all(0 < c["score"] <= 1 for c in many["candidates"]) and len(many["candidates"]) <= 3
    human = run("locate", "1 rue des Tilleuls, Amiens", "--ban", BAN_FIXTURE, "--candidates", "3")
    assert human.returncode == 0 and "Candidats" not in human.stdout or "1. 1 Rue des Tilleuls" in human.stdout


def test_normalisation_is_linear_and_fields_are_bounded():
    import time

    from carroyage.address.normalise import too_long

    start = time.perf_counter()
    normalise(["a, " * 70_000, "8 bd du Port " * 15_000, "é" * 200_000])
    assert time.perf_counter() - start < 2  # 600 KB of text
    assert too_long("x" * 501) and not too_long("x" * 500)
    result = run("locate", "8 bd du Port " * 50, "--ban", BAN_FIXTURE)
    assert result.returncode == 2 and "adresse de 650 caractères ; attendu 500 au plus" in result.stderr


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
    with pytest.raises(InputError, match="pas un fichier d'adresses BAN"):
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
        (
            ("locate", "8 bd du Port, Amiens"),
            "aucun géocodeur ; attendu un fichier BAN (--ban) ou un serveur addok (--addok)",
        ),
        (("locate",), "ni adresse ni position ; attendu une adresse, ou --lon et --lat"),
        (
            ("locate", "--lon", "500", "--lat", "49"),
            "invalide ; attendu une longitude et une latitude en degrés décimaux",
        ),
        (("locate", "zzzz qqqq", "--ban", BAN_FIXTURE), "adresse introuvable : 'zzzz qqqq'"),
        (("locate", "x", "--addok", "http://127.0.0.1:9"), "addok http://127.0.0.1:9 : pas de réponse ("),
    ):
        result = run(*args)
        lines = [line for line in result.stderr.splitlines() if not line.startswith("carroyage : note :")]
        assert result.returncode == 2 and len(lines) == 1 and expected in lines[0], result.stderr


def test_prepared_zones_are_cached_next_to_their_file(tmp_path):
    from carroyage.address.lookup import SUFFIXES

    copy = tmp_path / "qpv.geojson"
    shutil.copy(QPV_2024, copy)
    first = load_zones([copy])
    assert all((tmp_path / f"qpv.geojson{suffix}").is_file() for suffix in SUFFIXES)
    again = load_zones([copy])  # from the cache
    lon, lat = np.array([2.304608, 2.10, 55.45]), np.array([49.91027, 49.95, -20.9])
    assert again.locate(lon, lat, 20).status().tolist() == first.locate(lon, lat, 20).status().tolist()
    assert again.dropped == first.dropped and again.table.equals(first.table)
    assert again.nearest(2.10, 49.95) == pytest.approx(first.nearest(2.10, 49.95))
    copy.write_bytes(QPV_2024.read_bytes().replace(b'"QN08003M"', b'"QN0800XM"'))  # the file changes
    assert "QN0800XM" in set(load_zones([copy]).table["code"])


def test_a_damaged_zone_cache_is_rebuilt_not_trusted(tmp_path):
    from carroyage.address.lookup import SUFFIXES

    square = [[[2.29, 49.89], [2.31, 49.89], [2.31, 49.91], [2.29, 49.91], [2.29, 49.89]]]
    layer = tmp_path / "zone.geojson"
    layer.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"code": "Z1"},
                        "geometry": {"type": "Polygon", "coordinates": square},
                    }
                ],
            }
        )
    )
    inside, outside = (np.array([2.30, 2.40]), np.array([49.90, 49.90]))
    assert load_zones([layer]).locate(inside, outside).status().tolist() == ["in", "out"]
    parts = tmp_path / f"zone.geojson{SUFFIXES[1]}"
    parts.write_bytes(parts.read_bytes()[:200])  # cut short, as by a full disk
    assert load_zones([layer]).locate(inside, outside).status().tolist() == ["in", "out"]  # rebuilt
    assert pq.ParquetFile(parts).metadata.num_rows == 1


def test_nearest_zone_of_a_batch_reaches_its_full_distance(zones, amiens_nord):
    # a point 4.9 km east of Amiens Nord's extent: within reach, found through the lon/lat prefilter
    west, south, east, north = amiens_nord.bounds
    to_wgs = [TO_WGS.transform(east + metres, (south + north) / 2) for metres in (4_900, 20, 6_000)]
    lon, lat = np.array([p[0] for p in to_wgs]), np.array([p[1] for p in to_wgs])
    located = zones.locate(lon, lat, tolerance=0)
    zone, metres = located.nearest(np.arange(3))
    again = zones.nearest_many(lon, lat)
    assert zone.tolist() == again[0].tolist() and np.allclose(metres[:2], again[1][:2])
    assert zone[0] >= 0 and 4_890 < metres[0] < 5_000 and zone[2] == -1
    exact = zones.nearest(lon[1], lat[1])  # the exact search, for one point
    assert zones.fields["code"][zone[1]] == "QN08003M" and zone[1] == exact[0]
    assert metres[1] == pytest.approx(exact[1], abs=1) and metres[1] >= 20


def test_nearest_distance_is_exact_around_a_rings_closing_vertex():
    # the ring starts (and closes) at the south-west corner: points west, south and south-west of
    # it are nearest that one vertex, stored twice; each side's segment must be measured
    import geopandas as gpd

    from carroyage.address.lookup import ZoneSet

    west, south = 648_000.0, 6_977_000.0
    ring = [(west, south), (west + 1000, south), (west + 1000, south + 1000), (west, south + 1000), (west, south)]
    layer = gpd.GeoDataFrame({"code_qp": ["Z"], "lib_qp": ["carré"]}, geometry=[shapely.Polygon(ring)], crs=2154)
    zones = ZoneSet.from_layers([("qpv", layer.to_crs(4326), "carre.geojson")])
    points = [(west - 30, south + 8), (west + 8, south - 30), (west - 20, south - 20), (west - 30, south + 20)]
    lon, lat = TO_WGS.transform(*np.array(points).T)
    _, metres = zones.nearest_many(np.asarray(lon), np.asarray(lat))
    exact = [zones.nearest(x, y)[1] for x, y in zip(lon, lat, strict=True)]
    assert metres == pytest.approx(exact, abs=0.05)

import csv
import json

import numpy as np
import pytest
from conftest import carroyage

from carroyage.address.batch import locate_csv
from carroyage.address.check import Checker
from carroyage.address.geocode import BanGeocoder
from carroyage.address.lookup import load_zones
from carroyage.data import BAN_FIXTURE, QPV_2024
from carroyage.errors import InputError

GARBAGE = ["abc", "", "2,30;49,91", "999", "NaN", "1e400"]


@pytest.fixture(scope="module")
def zones():
    return load_zones([QPV_2024])


def messy_file(path, rows=10_000, delimiter=";"):
    """Coordinates in and around Amiens, with garbage rows of every kind mixed in."""
    rng = np.random.default_rng(7)
    lines = [delimiter.join(["id", "nom", "longitude", "latitude", "commentaire"])]
    kinds = []
    for i in range(rows):
        lon, lat = rng.normal(2.30, 0.02), rng.normal(49.90, 0.015)
        kind = i % 10
        if kind == 3:
            lines.append(delimiter.join([str(i), f"Nom {i}", GARBAGE[i % len(GARBAGE)], "49.9", "coordonnée cassée"]))
        elif kind == 5:
            lines.append(delimiter.join([str(i), f"Nom {i}", f"{lon:.6f}", f"{lat:.6f}", "trop", "de", "champs"]))
        elif kind == 7:
            lines.append(delimiter.join([str(i), f"Nom {i}"]))  # too few fields
        elif kind == 9:
            lines.append(
                delimiter.join(
                    [
                        str(i),
                        f'"Nom {delimiter} avec délimiteur"',
                        f"{lon:.6f}".replace(".", ","),
                        f"{lat:.6f}".replace(".", ","),
                        '"dit ""cité"""',
                    ]
                )
            )
        else:
            lines.append(delimiter.join([str(i), f"Nom {i} é", f"{lon:.6f}", f"{lat:.6f}", ""]))
        kinds.append(kind)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return kinds


def read(path, delimiter=";"):
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter=delimiter))


def test_ten_thousand_rows_with_garbage_come_back_whole_in_order(tmp_path, zones):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    kinds = messy_file(source)
    counts = locate_csv(source, target, zones, tolerance=20)
    rows_in, rows_out = read(source), read(target)
    assert len(rows_out) == len(rows_in) == 10_001
    header = rows_out[0]
    assert header[:5] == rows_in[0] and header[5:] == [
        "status",
        "zone_type",
        "zone_code",
        "zone_name",
        "distance_m",
        "geocode_label",
        "geocode_score",
        "geocode_type",
        "geocode_id",
        "street_partly_in",
        "reason",
    ]
    for original, annotated in zip(rows_in[1:], rows_out[1:], strict=True):
        assert annotated[: len(original)] == original  # untouched, in order
    status = [row[-11] for row in rows_out[1:]]
    for kind, row, value in zip(kinds, rows_out[1:], status, strict=True):
        if kind in (5, 7):
            assert value == "invalid" and "ligne mal formée" in row[-1]
    assert sum(counts.values()) == 10_000 and counts["invalid"] >= 2_000
    assert counts["in"] > 0 and counts["out"] > 0
    import json

    manifest = json.loads((tmp_path / "out.csv.manifest.json").read_text())
    assert manifest["stage"] == "locate-csv" and manifest["tolerance"] == 20 and manifest["counts"] == dict(counts)
    assert len(manifest["inputs"]["file"]["sha256"]) == 64
    decimal_comma = [row for kind, row in zip(kinds, rows_out[1:], strict=True) if kind == 9]
    assert all(row[-11] in ("in", "out", "uncertain") for row in decimal_comma)  # "2,30" is read as 2.30


def test_well_formed_file_keeps_its_look(tmp_path, zones):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("id,lon,lat\n1,2.304608,49.91027\n2,2.2905,49.8974\n3,abc,49\n4,2.10,49.95\n", encoding="utf-8")
    locate_csv(source, target, zones)
    nearest = Checker(zones).check(lon=2.2905, lat=49.8974)["nearest"]  # what `locate` says of that place
    assert target.read_text(encoding="utf-8").splitlines() == [
        "id,lon,lat,status,zone_type,zone_code,zone_name,distance_m,geocode_label,geocode_score,geocode_type,"
        "geocode_id,street_partly_in,reason",
        "1,2.304608,49.91027,in,qpv,QN08003M,Amiens Nord,-121.3,,,,,,",
        f"2,2.2905,49.8974,out,qpv,{nearest['code']},{nearest['name']},{nearest['distance_m']:.1f},,,,,,",
        "3,abc,49,invalid,,,,,,,,,,lon/lat invalides : degrés décimaux WGS84 attendus",
        "4,2.10,49.95,out,,,,,,,,,,",  # 11 km from any zone: beyond settings.NEAREST_WITHIN_M
    ]


def test_addresses_from_several_columns(tmp_path, zones):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text(
        "num;voie;ville;status\n8;bd du Port;Amiens;x\n1;rue des Tilleuls;Amiens;y\n;;;z\n5;rue inconnue;Lille;w\n",
        encoding="utf-8",
    )
    counts = locate_csv(source, target, zones, BanGeocoder(BAN_FIXTURE), address_cols=["num", "voie", "ville"])
    rows = read(target)
    assert rows[0][4] == "status_carroyage"  # the input already had a status column
    assert [r[4] for r in rows[1:]] == ["out", "in", "invalid", "invalid"]
    assert rows[1][9] == "8 Boulevard du Port 80000 Amiens" and rows[3][-1] == "adresse vide"
    assert rows[4][-1] == "adresse introuvable"  # Lille is not in the Somme's BAN: no street of Amiens
    assert counts == {"out": 1, "in": 1, "invalid": 2}


def test_weak_geocoding_is_uncertain(tmp_path, zones):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text('adresse\n"1 rue des Tilleuls, Amiens"\n', encoding="utf-8")
    locate_csv(source, target, zones, BanGeocoder(BAN_FIXTURE), min_score=1.01)
    row = read(target, ",")[1]
    assert row[1] == "uncertain" and row[-1].startswith("géocodage incertain") and float(row[-5]) == 1.0


def answers(tmp_path, zones, lines, **options):
    """``locate-csv`` on one ``adresse`` column: each row's answer as a dict."""
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("adresse\n" + "\n".join(f'"{line}"' for line in lines) + "\n", encoding="utf-8")
    locate_csv(source, target, zones, BanGeocoder(BAN_FIXTURE), **options)
    csv.field_size_limit(1 << 24)
    with target.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_non_existent_address_is_never_given_a_qpv(tmp_path, zones):
    # issue 15: "15 rue inconnue, 99999, Nulle-part" was "uncertain", QPV QN08003M, 3 Rue de la Frontière
    row = answers(tmp_path, zones, ["15 rue inconnue, 99999, Nulle-part"])[0]
    assert row["status"] == "invalid" and row["reason"] == "adresse introuvable"
    assert row["geocode_label"] == "" and row["street_partly_in"] == ""
    assert row["zone_code"] == "" and row["distance_m"] == ""


def test_out_rows_get_the_nearest_zone_and_its_distance(tmp_path, zones):
    # issue 15: for out rows locate-csv left the distance and nearest zone empty, while locate gives them
    row = answers(tmp_path, zones, ["8 bd du Port, Amiens"])[0]
    single = Checker(zones, BanGeocoder(BAN_FIXTURE)).check("8 bd du Port, Amiens")
    assert row["status"] == "out" and row["zone_code"] == single["nearest"]["code"]
    assert float(row["distance_m"]) == pytest.approx(single["nearest"]["distance_m"], abs=0.1)
    assert float(row["distance_m"]) > 0


def test_street_partly_in_and_street_level_answers(tmp_path, zones):
    rows = answers(
        tmp_path,
        zones,
        ["1 rue de la Limite, Amiens", "4 rue de la Limite, Amiens", "9 rue des Tilleuls, Amiens", "Amiens"],
    )
    assert [r["street_partly_in"] for r in rows] == ["true", "true", "false", ""]
    assert [r["geocode_type"] for r in rows] == ["housenumber", "street", "street", "municipality"]
    assert [r["status"] for r in rows] == ["in", "uncertain", "uncertain", "uncertain"]  # never "in" unless the number
    assert "traverse une limite" in rows[1]["reason"] and "toute la voie est dans la zone QN08003M" in rows[2]["reason"]


def test_an_overlong_field_is_an_invalid_row_and_fast(tmp_path, zones):
    import time

    start = time.perf_counter()
    rows = answers(tmp_path, zones, ["8 bd du Port, Amiens", "8 bd du Port " * 16_000, "a," * 100_000])
    assert time.perf_counter() - start < 10
    assert [r["status"] for r in rows] == ["out", "invalid", "invalid"]
    assert rows[1]["reason"] == "adresse trop longue : 500 caractères au plus"


def test_geocoding_over_worker_processes_gives_the_same_answers(tmp_path, zones):
    lines = [f"{n} rue des Tilleuls, Amiens" for n in (1, 3, 5, 7, 9, 12)] * 400 + [
        f"{n} bd du Port {i}" for i, n in enumerate((8, 10, 12, 14) * 300)
    ]
    one = answers(tmp_path, zones, lines, workers=1)
    two = answers(tmp_path, zones, lines, workers=2)
    assert one == two and len(one) == len(lines)


@pytest.mark.parametrize(
    "content,expected",
    [
        ("id;x;y\n1;2;3\n", "ni coordonnées ni adresse"),
        ("id;lon\n1;2\n", "une seule des colonnes de longitude et de latitude ; attendu les deux"),
        ("", "in.csv : fichier vide ; attendu une ligne d'en-tête"),
        ("id;adresse\n1;8 bd du Port\n", "des adresses à géocoder et aucun géocodeur ; attendu un fichier BAN"),
    ],
)
def test_bad_files_get_one_clear_error(tmp_path, zones, content, expected):
    source = tmp_path / "in.csv"
    source.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=expected):
        locate_csv(source, tmp_path / "out.csv", zones)
    assert not (tmp_path / "out.csv").exists()


def test_non_utf8_file_leaves_no_output(tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(b"id;lon;lat\n1;2.3;49.9\n" + "2;2.3;49.9;é\n".encode("latin-1") * 3)
    result = carroyage("locate-csv", source, "--out", tmp_path / "out.csv")
    lines = [line for line in result.stderr.splitlines() if not line.startswith(("carroyage : note :", "  ["))]
    assert result.returncode == 2 and len(lines) == 1 and "non UTF-8" in lines[0], result.stderr
    assert not (tmp_path / "out.csv").exists() and list(tmp_path.iterdir()) == [source]


def test_locate_csv_command_prints_a_summary(tmp_path):
    source = tmp_path / "in.csv"
    messy_file(source, rows=2_000, delimiter=",")
    result = carroyage("locate-csv", source, "--out", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    assert "2\u202f000 lignes : dans la zone " in result.stdout and "invalide" in result.stdout
    assert "lignes…" in result.stderr  # the progress lines


def square(lon, lat, half=0.004):
    return [
        [
            [lon - half, lat - half],
            [lon + half, lat - half],
            [lon + half, lat + half],
            [lon - half, lat + half],
            [lon - half, lat - half],
        ]
    ]


def formula_zones(path):
    """Two square zones near Amiens whose code and name a spreadsheet would run as formulas."""
    features = [
        {
            "type": "Feature",
            "properties": {"code": code, "name": name},
            "geometry": {"type": "Polygon", "coordinates": square(lon, 49.90)},
        }
        for code, name, lon in (("+Z1", '=HYPERLINK("http://example.invalid","x")', 2.30), ("Z2", "@SUM(A1)", 2.33))
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def test_excel_safe_neutralises_the_appended_formulas_and_leaves_the_input_alone(tmp_path):
    # issue 13: appended cells (a zone name, a BAN street) could start with "=" and run in Excel
    zones = formula_zones(tmp_path / "zones.geojson")
    source = tmp_path / "in.csv"
    source.write_text("id;lon;lat;note\n1;2.30;49.90;=1+1\n2;2.33;49.90;-12\n3;2.318;49.90;@x\n", encoding="utf-8")
    for flag, expected in (
        ([], ("+Z1", '=HYPERLINK("http://example.invalid","x")', "@SUM(A1)")),
        (["--excel-safe"], ("'+Z1", '\'=HYPERLINK("http://example.invalid","x")', "'@SUM(A1)")),
    ):
        result = carroyage("locate-csv", source, "--out", tmp_path / "out.csv", "--zones", zones, "-q", *flag)
        assert result.returncode == 0, result.stderr
        rows = read(tmp_path / "out.csv")
        assert [r[:4] for r in rows[1:]] == [r.split(";") for r in source.read_text().splitlines()[1:]]  # untouched
        first, second, third = (dict(zip(rows[0], r, strict=True)) for r in rows[1:])
        assert (first["status"], first["zone_code"], first["zone_name"]) == ("in", expected[0], expected[1])
        assert second["zone_name"] == expected[2] and float(second["distance_m"]) < 0  # a number stays a number
        assert (third["status"], third["zone_code"]) == ("out", "Z2")  # the nearest zone, 580 m away
        assert 500 < float(third["distance_m"]) < 650


def test_excel_safe_neutralises_a_ban_street_too(tmp_path, zones):
    ban = tmp_path / "adresses-80.csv"  # a street whose BAN name starts like a formula
    ban.write_bytes(BAN_FIXTURE.read_bytes().replace(b";Boulevard du Port;", b";=Boulevard du Port;"))
    geocoder = BanGeocoder(ban)
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("adresse\n8 bd du Port Amiens\nbd du Port Amiens\n", encoding="utf-8")
    for excel_safe, street in ((False, "=Boulevard du Port"), (True, "'=Boulevard du Port")):
        locate_csv(source, target, zones, geocoder, excel_safe=excel_safe)
        header, number, street_only = read(target, ",")
        assert number[header.index("geocode_label")] == "8 =Boulevard du Port 80000 Amiens"  # starts with a digit
        assert street_only[header.index("geocode_label")] == f"{street} 80000 Amiens"


def test_empty_ban_fields_never_print_nan(tmp_path, zones):
    # issue 13: an empty `numero` gave the label "nan Boulevard du Port"
    ban = tmp_path / "adresses-80.csv"
    lines = BAN_FIXTURE.read_text(encoding="utf-8").splitlines()
    lines = [line.replace("80021_6590_00008;80021_6590;8;;", "80021_6590_00008;80021_6590;;;") for line in lines]
    ban.write_text("\n".join(lines) + "\n", encoding="utf-8")
    geocoder = BanGeocoder(ban)
    assert geocoder.geocode("8 bd du Port, Amiens").label == "Boulevard du Port 80000 Amiens"  # the street, said so
    assert geocoder.geocode("10 bd du Port, Amiens").label == "10 Boulevard du Port 80000 Amiens"
    unnumbered = geocoder.reverse(2.290084, 49.897443)[0]
    assert (unnumbered.label, unnumbered.housenumber, unnumbered.id) == (
        "Boulevard du Port 80000 Amiens",
        "",
        "80021_6590_00008",
    )
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("adresse\nBoulevard du Port Amiens\n8 boulevard du Port Amiens\n", encoding="utf-8")
    locate_csv(source, target, zones, geocoder)
    text = target.read_text(encoding="utf-8")
    assert "nan" not in text.lower() and "  " not in text
    header, *rows = read(target, ",")
    assert [row[header.index("geocode_label")] for row in rows] == ["Boulevard du Port 80000 Amiens"] * 2


def test_a_file_of_coordinates_loads_neither_pandas_nor_the_geocoder(tmp_path, zones):
    # the whole command's speed (benchmarks/bench_locate.py): zones from their cache (the fixture made
    # it), no pandas (0.3 s), geopandas, GDAL or rapidfuzz imported for a file of coordinates
    import subprocess
    import sys

    source = tmp_path / "in.csv"
    source.write_text("id;lon;lat\n1;2.304608;49.91027\n2;2.2905;49.8974\n", encoding="utf-8")
    script = (
        "import sys\nfrom carroyage.cli import main\n"
        f"sys.argv = ['carroyage', 'locate-csv', {str(source)!r}, '--out', {str(tmp_path / 'out.csv')!r}, '-q']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('pandas', 'geopandas', 'pyogrio', 'rapidfuzz') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "[]", done.stdout + done.stderr
    assert read(tmp_path / "out.csv")[1][3] == "in"

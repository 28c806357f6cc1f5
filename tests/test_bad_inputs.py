"""The audit's examples (issue #13): each gives a clear line or a correct result."""

from __future__ import annotations

import pytest
from conftest import carroyage
from test_cli import corrupt, good_frame

from carroyage.labels import ERROR, NOTE, WARNING


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if not line.startswith((NOTE, WARNING, "  ["))]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(ERROR), result.stderr
    return lines[0]


GARBAGE = {
    "inf residents": (
        lambda f: corrupt(f, "ind", 3, "inf"),
        "ligne 5 (carreau CRS3035RES200mN2999000E3763800) : colonne 'ind' vaut inf",
    ),
    "1e308 residents": (lambda f: corrupt(f, "ind", 3, "1e308"), "colonne 'ind' vaut 1e+308 ; attendu au plus"),
    "inf households": (lambda f: corrupt(f, "men", 3, "inf"), "colonne 'men' vaut inf"),
    "ids in another CRS": (
        lambda f: f.assign(idcar_200m=f["idcar_200m"].str.replace("CRS3035", "CRS4326")),
        "identifiants de carreaux en EPSG:4326, système non projeté en mètres ; attendu EPSG:3035",
    ),
    "zero resolution": (
        lambda f: f.assign(idcar_200m=f["idcar_200m"].str.replace("RES200m", "RES0m")),
        "identifiants de carreaux en RES0m ; attendu",
    ),
    "latin-1 byte in a number": (
        None,
        "ligne 3 (carreau CRS3035RES200mN2999000E3763400) : colonne 'ind' : texte non UTF-8 ; attendu un nombre",
    ),
    "duplicated column": (lambda f: f.rename(columns={"men": "ind"}), "colonne 'ind' en double dans l'en-tête"),
    "spaces in the header": (lambda f: f.rename(columns={c: f" {c} " for c in f.columns}), None),
    "zero standard of living": (lambda f: corrupt(f, "ind_snv", 3, 0), None),
}


@pytest.mark.parametrize("case", GARBAGE)
def test_garbage_in_a_grid_is_refused_or_read_right(tmp_path, case):
    make, expected = GARBAGE[case]
    path = tmp_path / "grid.csv"
    if make is None:
        text = good_frame().to_csv(index=False).splitlines()
        text[2] = text[2].replace(".0", "\xe9", 1)
        path.write_bytes("\n".join(text).encode("utf-8").replace("\xe9".encode(), b"\xe9") + b"\n")
    else:
        make(good_frame()).to_csv(path, index=False)
    result = carroyage("delimit", path, "--national-median", "22040", "--out", tmp_path / "x.gpkg", "-q")
    if expected is None:  # legal input: it must work
        assert result.returncode == 0, result.stderr
    else:
        line = one_line(result)
        assert str(path) in line and expected in line, line


@pytest.mark.parametrize(
    "option,value,expected",
    [
        ("--national-median", "0", "--national-median 0 : attendu un nombre positif"),
        ("--national-median", "-22040", "attendu un nombre positif"),
        ("--gap-fill", "1000000", "--gap-fill"),
        ("--min-population", "-1", "min_population"),
    ],
)
def test_meaningless_options_are_refused_before_reading(tmp_path, option, value, expected):
    path = tmp_path / "grid.csv"
    good_frame().to_csv(path, index=False)
    args = ["--national-median", "22040"] if option != "--national-median" else []
    result = carroyage("delimit", path, *args, option, value, "--out", tmp_path / "x.gpkg")
    assert expected in one_line(result)
    assert "lecture de" not in result.stderr


@pytest.mark.parametrize(
    "command,out,expected",
    [
        ("delimit", "x.shp", "format de sortie inconnu ; attendu un nom en .gpkg ou .parquet"),
        ("grid", "x.shp", "format de sortie inconnu ; attendu un nom en .csv ou .parquet"),
    ],
)
def test_an_output_format_nobody_writes_is_refused_before_reading(tmp_path, command, out, expected):
    path = tmp_path / "input.csv"
    good_frame().to_csv(path, index=False)
    options = ["--national-median", "22040"] if command == "delimit" else ["--crs", "EPSG:3035"]
    result = carroyage(command, path, *options, "--out", tmp_path / out)
    assert f"{tmp_path / out} : {expected}" in one_line(result)
    assert "lecture de" not in result.stderr and not (tmp_path / out).exists()


def test_a_typo_in_the_median_gets_a_warning(tmp_path):
    path = tmp_path / "grid.csv"
    good_frame().to_csv(path, index=False)
    result = carroyage("delimit", path, "--national-median", "2204", "--out", tmp_path / "x.gpkg", "-q")
    assert result.returncode == 0
    assert "carroyage : avertissement : --national-median 2204 : hors de la plage plausible" in result.stderr
    assert "une faute de frappe ?" in result.stderr


def test_a_cr_only_grid_is_read(tmp_path):
    path = tmp_path / "grid.csv"
    path.write_bytes(good_frame().to_csv(index=False).replace("\n", "\r").encode())
    result = carroyage("delimit", path, "--national-median", "22040", "--out", tmp_path / "x.gpkg", "-q")
    assert result.returncode == 0 or "ligne" in one_line(result)


def test_zones_on_a_geopackage_without_manifest_inputs(tmp_path):
    import geopandas as gpd
    import shapely

    layer = gpd.GeoDataFrame({"code": ["A"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=3035)
    path = tmp_path / "other.gpkg"
    layer.to_file(path, layer="qpv")
    line = one_line(carroyage("zones", path))
    assert "other.gpkg : couches absentes cells, manifest ; attendu une géographie écrite par carroyage delimit" in line


def test_compare_given_a_grid_csv(tmp_path):
    path = tmp_path / "grid.csv"
    good_frame().to_csv(path, index=False)
    one_line(carroyage("compare", path, path, "--out", tmp_path / "c.gpkg"))


def test_zones_clip_given_a_csv(tmp_path):
    path = tmp_path / "grid.csv"
    good_frame().to_csv(path, index=False)
    geo = tmp_path / "g.gpkg"
    assert carroyage("delimit", path, "--national-median", "22040", "--out", geo, "-q").returncode == 0
    one_line(carroyage("zones", geo, "--clip", path))


def test_an_unclosed_quote_loses_no_row(tmp_path):
    source = tmp_path / "in.csv"
    rows = [f"{i};2.3048;49.9104;ligne {i}" for i in range(120)]
    rows[9] = '9;2.3048;49.9104;"ligne 9 sans fin'
    source.write_text("id;lon;lat;nom\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = carroyage("locate-csv", source, "--out", tmp_path / "out.csv", "-q")
    assert result.returncode == 0, result.stderr
    out = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert len(out) == 121
    assert out[10].startswith('9;2.3048;49.9104;"ligne 9 sans fin') or "ligne 9 sans fin" in out[10]
    assert "invalid" in out[10] and "guillemet non fermé" in out[10]
    assert out[11].startswith("10;") and ";in;" in out[11]


def test_a_cr_only_beneficiaries_file_is_read(tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(b"id;lon;lat\r1;2.3048;49.9104\r2;2.3048;49.9104\r")
    result = carroyage("locate-csv", source, "--out", tmp_path / "out.csv", "-q")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").count(";in;") == 2


def test_the_ban_index_follows_the_files_content_not_its_size_and_date(tmp_path):
    import os

    from carroyage.address.geocode import BanGeocoder
    from carroyage.data import BAN_FIXTURE

    copy = tmp_path / "adresses-80.csv"
    copy.write_bytes(BAN_FIXTURE.read_bytes())
    before = BanGeocoder(copy).geocode("8 bd du Port, Amiens")
    stat = copy.stat()
    changed = BAN_FIXTURE.read_bytes().replace(b"Boulevard du Port", b"Boulevard du Pont")
    assert len(changed) == stat.st_size
    copy.write_bytes(changed)
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same date
    after = BanGeocoder(copy).geocode("8 bd du Pont, Amiens")
    assert before is not None and after is not None and "Pont" in after.label

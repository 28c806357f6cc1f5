"""The command as a user runs it: exit codes, one-line errors, files written or not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
from conftest import Ran, carroyage, filosofi_frame

from carroyage.data import AMIENS_2019

POOR = {(c, r) for c in range(2, 6) for r in range(2, 5)}


def run(*args: str | Path, real: bool = False) -> Ran:
    return carroyage(*args, real=real)


def test_delimit_amiens_writes_layers_manifest_and_summary(tmp_path):
    out = tmp_path / "amiens.gpkg"
    result = run(
        "delimit",
        AMIENS_2019,
        "--rule",
        "decree-2014",
        "--national-median",
        "22040",
        "--out",
        out,
        "--geojson",
        tmp_path / "q.geojson",
        real=True,
    )
    assert result.returncode == 0, result.stderr
    assert "quartiers" in result.stdout and "ESTIMÉS" in result.stdout and "QC001" in result.stdout
    assert "médianes de référence" in result.stderr  # stage messages
    assert re.search(r"^  \[ *\d+,\d\d s\] \S.*…$", result.stderr, re.MULTILINE), result.stderr  # French seconds
    assert f"écrit : {out}, " in result.stdout
    layers = dict(pyogrio.list_layers(out))
    assert {"qpv", "cells", "manifest"} <= set(layers)
    qpv = pyogrio.read_dataframe(out, layer="qpv")
    assert list(qpv.columns) == [
        "code",
        "population",
        "median_income",
        "low_income_share",
        "cells",
        "area_ha",
        "estimated",
        "geometry",
    ]
    assert qpv.crs.to_epsg() == 2154 and len(qpv) >= 3  # Lambert-93 for a metropolitan grid
    cells = pyogrio.read_dataframe(out, layer="cells")
    assert {"idcar_200m", "population", "low_income_share", "flagged", "cluster"} <= set(cells.columns)
    assert len(cells) == 1273
    manifest = (
        pyogrio.read_dataframe(out, layer="manifest", read_geometry=False).set_index("key")["value"].map(json.loads)
    )
    assert manifest["rule"]["name"] == "decree-2014" and manifest["rule"]["min_population"] == 1000
    assert len(manifest["inputs"]["grid"]["sha256"]) == 64 and manifest["versions"]["numpy"]
    assert manifest["threshold"]["value"] % 100 == 0
    geojson = json.loads((tmp_path / "q.geojson").read_text())
    lon, lat = np.array(geojson["features"][0]["geometry"]["coordinates"][0][0][0])
    assert 2.2 < lon < 2.4 and 49.8 < lat < 50.0 and geojson["carroyage"]["stage"] == "delimit"


def test_two_runs_give_identical_files(tmp_path):
    out = tmp_path / "a.gpkg"
    runs = []
    for _ in range(2):
        assert run("delimit", AMIENS_2019, "--national-median", "22040", "--out", out, "-q").returncode == 0
        runs.append(out.read_bytes())
    assert runs[0] == runs[1]


def test_parquet_output_writes_one_file_per_layer(tmp_path):
    result = run("delimit", AMIENS_2019, "--national-median", "22040", "--out", tmp_path / "x.parquet", "-q")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in tmp_path.iterdir()} == {"x.qpv.parquet", "x.cells.parquet", "x.manifest.json"}


def test_validate_prints_coverage_and_precision(tmp_path):
    out = tmp_path / "a.gpkg"
    run("delimit", AMIENS_2019, "--national-median", "22040", "--out", out, "-q")
    result = run("validate", out)
    assert result.returncode == 0, result.stderr
    assert "couverture" in result.stdout and "QN08003M Amiens Nord" in result.stdout
    assert "rappel (couverture" in result.stdout and "précision (" in result.stdout


def good_frame():
    return filosofi_frame(POOR)


def corrupt(frame, column, row, value):
    frame = frame.astype({column: object})
    frame.loc[row, column] = value
    return frame


BAD_CSV = {
    "malformed id": (
        lambda f: corrupt(f, "idcar_200m", 4, "CRS3035RES200mN29990"),
        "ligne 6 : identifiant de carreau 'CRS3035RES200mN29990' mal formé ; attendu CRS3035RES200mN{y}E{x}",
    ),
    "off-grid corner": (
        lambda f: corrupt(f, "idcar_200m", 4, "CRS3035RES200mN2999010E3763200"),
        "ligne 6 : carreau 'CRS3035RES200mN2999010E3763200' hors de la grille de 200 m",
    ),
    "negative count": (
        lambda f: corrupt(f, "ind", 7, -3),
        "ligne 9 (carreau CRS3035RES200mN2999000E3764600) : colonne 'ind' vaut -3 ; attendu un nombre ≥ 0",
    ),
    "missing count": (
        lambda f: corrupt(f, "men_pauv", 7, None),
        "ligne 9 (carreau CRS3035RES200mN2999000E3764600) : colonne 'men_pauv' est vide ; attendu un nombre ≥ 0",
    ),
    "text in a count": (
        lambda f: corrupt(f, "ind_snv", 2, "12 000"),
        "ligne 4 (carreau CRS3035RES200mN2999000E3763600) : colonne 'ind_snv' contient '12 000' ; attendu un nombre",
    ),
    "missing column": (lambda f: f.drop(columns="ind_snv"), "pas de colonne de revenu ; attendu ind_snv"),
    "missing id column": (
        lambda f: f.drop(columns="idcar_200m"),
        "pas de colonne d'identifiant de carreau ; attendu l'une des colonnes idcar_200m",
    ),
    "duplicate cell": (
        lambda f: corrupt(f, "idcar_200m", 10, f.loc[3, "idcar_200m"]),
        "ligne 12 : carreau CRS3035RES200mN2999000E3763800 en double (première occurrence : ligne 5)",
    ),
    "more poor than households": (
        lambda f: corrupt(f, "men_pauv", 0, 999),
        "ligne 2 (carreau CRS3035RES200mN2999000E3763200) : 'men_pauv' (999) dépasse 'men' (50) ; "
        "attendu 'men_pauv' au plus égal à 'men'",
    ),
}


@pytest.mark.parametrize("case", BAD_CSV)
def test_bad_csv_gets_one_line_naming_file_and_row(tmp_path, write_csv, case):
    make, expected = BAD_CSV[case]
    path = write_csv(make(good_frame()))
    out = tmp_path / "out" / "x.gpkg"
    result = run("delimit", path, "--national-median", "22040", "--out", out)
    assert_one_line_error(result, str(path), expected)
    assert not out.parent.exists() or not any(out.parent.iterdir())


@pytest.mark.parametrize(
    "case,content,expected",
    [
        ("empty", b"", "fichier vide ; attendu un carroyage de revenus"),
        ("header only", b"idcar_200m,ind,ind_snv\n", "aucun carreau ; attendu au moins une ligne de données"),
        ("binary", bytes(range(256)) * 8, "contenu binaire ; attendu un fichier CSV en texte"),
    ],
)
def test_empty_or_binary_file(tmp_path, case, content, expected):
    path = tmp_path / "grid.csv"
    path.write_bytes(content)
    assert_one_line_error(run("delimit", path, "--out", tmp_path / "x.gpkg"), str(path), expected)
    assert not (tmp_path / "x.gpkg").exists()


def test_missing_file_and_unknown_format(tmp_path):
    assert_one_line_error(
        run("delimit", tmp_path / "nope.csv", "--out", tmp_path / "x.gpkg"), "nope.csv", "fichier introuvable"
    )
    other = tmp_path / "grid.xlsx"
    other.write_text("x")
    assert_one_line_error(
        run("delimit", other, "--out", tmp_path / "x.gpkg"),
        "grid.xlsx : ",
        "format '.xlsx' inconnu pour un carroyage de revenus ; attendu",
    )


def test_decree_without_national_median_and_bad_parameter(write_csv, tmp_path):
    path = write_csv(good_frame())
    assert_one_line_error(
        run("delimit", path, "--out", tmp_path / "x.gpkg"),
        "règle decree-2014 : ",
        "médiane nationale manquante ; attendu --national-median",
    )
    assert_one_line_error(
        run("delimit", path, "--national-median", "22040", "--contiguity", "diagonal", "--out", tmp_path / "x.gpkg"),
        "règle decree-2014 : ",
        "contiguity diagonal ; attendu rook ou queen",
    )
    assert not (tmp_path / "x.gpkg").exists()


def test_gpkg_and_shapefile_grids_read_like_the_csv(tmp_path):
    import geopandas as gpd
    import shapely

    frame = good_frame()
    for name, columns in (
        ("grid.gpkg", {}),
        (
            "grid.shp",
            {"idcar_200m": "IdINSPIRE", "ind": "Ind", "men": "Men", "men_pauv": "Men_pauv", "ind_snv": "Ind_snv"},
        ),
    ):
        layer = gpd.GeoDataFrame(frame.rename(columns=columns), geometry=[shapely.Point(0, 0)] * len(frame), crs=2154)
        layer.to_file(tmp_path / name)
        result = run("delimit", tmp_path / name, "--national-median", "22040", "--out", tmp_path / f"{name}.gpkg", "-q")
        assert result.returncode == 0, result.stderr
        assert "QC001" in result.stdout


def assert_one_line_error(result: Ran, where: str, expected: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if not line.startswith("  [")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("carroyage : erreur : ") and where in lines[0] and expected in lines[0], lines[0]


@pytest.fixture
def amiens_geography(tmp_path):
    out = tmp_path / "amiens.gpkg"
    assert run("delimit", AMIENS_2019, "--national-median", "22040", "--out", out, "-q").returncode == 0
    return out


def test_zones_adds_layers_and_updates_the_manifest(amiens_geography):
    from carroyage.data import AMIENS_COMMUNES, QPV_2024

    result = run("zones", amiens_geography, "--clip", AMIENS_COMMUNES, "--previous", QPV_2024)
    assert result.returncode == 0, result.stderr
    assert "ancien périmètre" in result.stdout and "population insuffisante" in result.stdout
    assert {"quartier_vecu", "veille_active", "qpv", "cells", "manifest"} <= {
        n for n, _ in pyogrio.list_layers(amiens_geography)
    }
    manifest = (
        pyogrio.read_dataframe(amiens_geography, layer="manifest", read_geometry=False)
        .set_index("key")["value"]
        .map(json.loads)
    )
    assert manifest["zones"]["vecu_distance_m"] == 300 and len(manifest["zones"]["inputs"]["previous"]["sha256"]) == 64
    assert manifest["rule"]["name"] == "decree-2014"  # the delimitation record is kept


def test_zones_with_a_missing_layer_leaves_the_geography_untouched(amiens_geography, tmp_path):
    before = amiens_geography.read_bytes()
    result = run("zones", amiens_geography, "--previous", tmp_path / "old.geojson")
    assert_one_line_error(result, "old.geojson", "fichier introuvable (--previous)")
    assert amiens_geography.read_bytes() == before


def test_compare_official_layer_with_computed_prints_four_classes(amiens_geography, tmp_path):
    from carroyage.data import QPV_2024

    result = run("compare", QPV_2024, amiens_geography, "--out", tmp_path / "diff.gpkg")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    from carroyage.labels import COMPARE_LAYERS

    shown = [f"{label} ({name})" for name, label in COMPARE_LAYERS.items()]
    assert [line[: len(text)] for line, text in zip(lines[1:5], shown, strict=True)] == shown
    assert {n for n, _ in pyogrio.list_layers(tmp_path / "diff.gpkg")} == {
        "new",
        "modified",
        "unchanged",
        "left",
        "manifest",
        "layer_styles",
    }


def test_sensitivity_over_eleven_thresholds_and_both_contiguities_takes_seconds(tmp_path):
    import time

    start = time.perf_counter()
    result = run(
        "sensitivity",
        AMIENS_2019,
        "--national-median",
        "22040",
        "--threshold",
        "0.55:0.65:0.01",
        "--contiguity",
        "rook,queen",
        "--out",
        tmp_path / "s.gpkg",
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    assert len([line for line in result.stdout.splitlines() if line.strip().startswith("0.")]) == 22
    assert elapsed < 30  # includes interpreter start; the runs themselves take well under a second
    stability = pyogrio.read_dataframe(tmp_path / "s.gpkg", layer="stability")
    assert stability["stability"].between(0, 1).all() and (stability["stability"] == 1).any()


def test_sensitivity_rejects_a_bad_range(tmp_path):
    result = run("sensitivity", AMIENS_2019, "--national-median", "22040", "--threshold", "0.65:0.55:0.01")
    assert_one_line_error(result, "--threshold 0.65:0.55:0.01 : ", "attendu début:fin:pas")


def test_geotiff_grid_with_exact_counts(tmp_path):
    import numpy as np
    import rasterio
    from affine import Affine

    population = np.zeros((12, 12), dtype="float32")
    population[1:11, 1:11] = 120  # 100 inhabited cells, 12,000 residents
    low = np.where(np.arange(12)[None, :] < 5, 80, 10).astype("float32") * (population > 0)
    path = tmp_path / "grid.tif"
    profile = {
        "driver": "GTiff",
        "width": 12,
        "height": 12,
        "count": 2,
        "dtype": "float32",
        "crs": "EPSG:3035",
        "transform": Affine(200, 0, 3_763_000, 0, -200, 3_001_400),
    }
    with rasterio.open(path, "w", **profile) as raster:
        raster.write(np.stack([population, low]))
        raster.descriptions = ("population", "population_low")
    result = run("delimit", path, "--out", tmp_path / "x.gpkg", "-q")
    assert result.returncode == 0, result.stderr
    qpv = pyogrio.read_dataframe(tmp_path / "x.gpkg", layer="qpv")
    assert len(qpv) == 1 and qpv["population"][0] == 40 * 120 and not qpv["estimated"][0]
    cells = pyogrio.read_dataframe(tmp_path / "x.gpkg", layer="cells")
    assert len(cells) == 100 and cells["idcar_200m"].str.match(r"CRS3035RES200mN\d+E\d+").all()
    with rasterio.open(path, "w", **profile) as raster:  # Filosofi's name, second band: same cells
        raster.write(np.stack([low, population]))
        raster.descriptions = ("population_low", "ind")
    assert run("delimit", path, "--out", tmp_path / "ind.gpkg", "-q").returncode == 0
    assert len(pyogrio.read_dataframe(tmp_path / "ind.gpkg", layer="cells")) == 100
    with rasterio.open(path, "r+") as raster:
        raster.descriptions = ("population_low", "men")
    assert_one_line_error(
        run("delimit", path, "--out", tmp_path / "y.gpkg"),
        "grid.tif",
        "pas de bande de population ; attendu une bande décrite comme population, ind ou ind_c",
    )
    with rasterio.open(path, "r+") as raster:
        raster.descriptions = ("population", "")
    assert_one_line_error(
        run("delimit", path, "--out", tmp_path / "y.gpkg"),
        "grid.tif",
        "bande 2 sans description ; attendu une description distincte par bande",
    )


def test_parquet_cells_read_back_as_the_same_squares(tmp_path):
    assert (
        run("delimit", AMIENS_2019, "--national-median", "22040", "--out", tmp_path / "x.parquet", "-q").returncode == 0
    )
    assert run("delimit", AMIENS_2019, "--national-median", "22040", "--out", tmp_path / "x.gpkg", "-q").returncode == 0
    from_parquet = gpd.read_parquet(tmp_path / "x.cells.parquet")
    from_gpkg = gpd.read_file(tmp_path / "x.gpkg", layer="cells")
    assert from_parquet.crs.to_epsg() == 2154
    assert from_parquet.geometry.geom_equals(from_gpkg.geometry).all()
    assert (from_parquet["idcar_200m"] == from_gpkg["idcar_200m"]).all()
    assert list(from_parquet.total_bounds) == list(from_gpkg.total_bounds)


def test_manifest_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    from carroyage.manifest import file_record

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "grid.csv").write_text("x\n")
    monkeypatch.chdir(tmp_path)
    assert file_record(tmp_path / "data" / "grid.csv")["path"] == "data/grid.csv"  # the same in any clone
    assert file_record(AMIENS_2019)["path"] == str(AMIENS_2019)  # outside: kept as given


def test_locate_checks_its_arguments_before_loading_the_zones(monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("zones loaded before the arguments were checked")

    monkeypatch.setattr("carroyage.address.check.load_zones", no_loading)
    for args in (
        ("locate",),
        ("locate", "--lon", "2.3"),
        ("locate", "8 bd du Port"),
        ("locate", "--lon", "500", "--lat", "1"),
    ):
        result = run(*args)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (args, result.stderr)
        assert result.stderr.startswith("carroyage : erreur : "), result.stderr


def test_help_is_french_without_type_placeholders():
    for args in (("--help",), ("delimit", "--help"), ("locate", "--help"), ()):
        result = run(*args)
        assert result.returncode == 0 and result.stdout.startswith("Utilisation : carroyage"), (args, result)
        text = result.stdout
        assert "Options :" in text and "Afficher cette aide et quitter." in text
        for english in ("Usage:", "Options:", "Commands", "Show this message", "[default:", "[required]"):
            assert english not in text, (args, english)
        for english in ("<path>", "<str>", "<float>", "<int", "<list[", "<bool>"):
            assert english not in text, (args, english)
        assert not [line for line in text.splitlines() if line.strip().startswith((":", ";"))], text
    assert "Commandes :" in run("--help").stdout and "COMMANDE [ARGUMENTS]..." in run("--help").stdout
    delimit = run("delimit", "--help").stdout
    assert (
        "Utilisation : carroyage delimit [OPTIONS] CARROYAGE" in delimit
        and "  CARROYAGE  " in delimit
        and "--rule TEXTE" in delimit
        and "[par défaut : decree-2014]" in delimit
    )
    assert "--min-population ENTIER" in delimit and "[obligatoire]" in delimit
    assert "[par défaut : 1 ; de 1 à 100]" in " ".join(run("locate", "--help").stdout.split())


@pytest.mark.parametrize(
    "args,expected",
    [
        (("map",), "argument manquant : GEOPACKAGE"),
        (("delimit", "g.csv"), "option obligatoire manquante : --out"),
        (("delimit", "g.csv", "--out"), "--out : valeur manquante"),
        (("delimit", "g.csv", "--nope"), "option inconnue : --nope"),
        (("delimitt",), "commande inconnue : delimitt ; vouliez-vous dire delimit ?"),
        (("locate", "x", "--candidates", "0"), "--candidates 0 : attendu un nombre supérieur ou égal à 1"),
        (("locate", "--lon", "2,3", "--lat", "49"), "--lon 2,3 : attendu un nombre (avec un point décimal"),
        (("locate", "x", "--candidates", "1.5"), "--candidates 1.5 : attendu un nombre entier"),
        (("locate", "--json=oui", "x"), "--json : cette option ne prend pas de valeur"),
        (("delimit", "g.csv", "--out", "x.gpkg", "de", "trop"), "en trop sur la ligne de commande : de trop"),
    ],
)
def test_usage_errors_are_one_french_line(args, expected):
    result = run(*args)
    assert_one_line_error(result, "", expected)
    assert "Usage" not in result.stderr and "Error" not in result.stderr

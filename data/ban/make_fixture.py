"""Regenerate ``adresses-80-extrait.csv``, the small BAN-format fixture shipped with carroyage.

One row is real (``80021_6590_00008``, 8 Boulevard du Port, Amiens: data/PROVENANCE.md); every
other row is SYNTHETIC: invented street names and house numbers placed, on purpose, inside or
near the official 2024 QPVs of Amiens (read from ``data/qpv2024_france.geojson``) or away from
them, so that tests have known answers. Run from the repository root:
``python data/ban/make_fixture.py``.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely
import shapely.ops

from carroyage.layers import read_official

HERE = Path(__file__).resolve().parent
COLUMNS = [
    "id",
    "id_fantoir",
    "numero",
    "rep",
    "nom_voie",
    "code_postal",
    "code_insee",
    "nom_commune",
    "code_insee_ancienne_commune",
    "nom_ancienne_commune",
    "x",
    "y",
    "lon",
    "lat",
    "type_position",
    "alias",
    "nom_ld",
    "libelle_acheminement",
    "nom_afnor",
    "source_position",
    "source_nom_voie",
    "certification_commune",
    "cad_parcelles",
]
TO_L93 = pyproj.Transformer.from_crs(4326, 2154, always_xy=True)
TO_WGS = pyproj.Transformer.from_crs(2154, 4326, always_xy=True)


def row(street, numero, rep, postcode, insee, commune, x, y, fantoir, old=("", ""), ld=""):
    lon, lat = TO_WGS.transform(x, y)
    return {
        "id": f"{insee}_{fantoir}_{numero:05d}{('_' + rep) if rep else ''}",
        "id_fantoir": f"{insee}_{fantoir}",
        "numero": numero,
        "rep": rep,
        "nom_voie": street,
        "code_postal": postcode,
        "code_insee": insee,
        "nom_commune": commune,
        "code_insee_ancienne_commune": old[0],
        "nom_ancienne_commune": old[1],
        "x": round(x, 2),
        "y": round(y, 2),
        "lon": round(lon, 6),
        "lat": round(lat, 6),
        "type_position": "entrée",
        "alias": "",
        "nom_ld": ld,
        "libelle_acheminement": commune.upper(),
        "nom_afnor": street.upper(),
        "source_position": "synthetic",
        "source_nom_voie": "synthetic",
        "certification_commune": 0,
        "cad_parcelles": "",
    }


def street(name, postcode, insee, commune, fantoir, start, step, numbers, **extra):
    """Rows for house numbers (``12`` or ``(12, "bis")``) spaced by ``step`` metres from ``start``."""
    x, y = start
    numbers = [n if isinstance(n, tuple) else (n, "") for n in numbers]
    return [
        row(name, n, rep, postcode, insee, commune, x + i * step[0], y + i * step[1], fantoir, **extra)
        for i, (n, rep) in enumerate(numbers)
    ]


def main() -> None:
    official = read_official(HERE.parent / "qpv2024_france.geojson")
    amiens = official[official["insee_dep"] == "80"].to_crs(2154).set_index("code_qp")
    centre = {code: shape.representative_point() for code, shape in amiens.geometry.items()}
    nord = amiens.geometry["QN08003M"]
    # a point 15 m outside Amiens Nord's boundary, perpendicular to the nearest edge from its centre
    edge_point = shapely.ops.nearest_points(nord.boundary, centre["QN08003M"])[0]
    outward = np.array([edge_point.x - centre["QN08003M"].x, edge_point.y - centre["QN08003M"].y])
    outward /= np.linalg.norm(outward)
    near = (edge_point.x + 15 * outward[0], edge_point.y + 15 * outward[1])
    port_x, port_y = TO_L93.transform(2.290084, 49.897443)
    rows = [
        {
            **row("Boulevard du Port", 8, "", "80000", "80021", "Amiens", port_x, port_y, "6590"),
            "id": "80021_6590_00008",
            "source_position": "commune",
            "source_nom_voie": "commune",
            "certification_commune": 1,
            "x": 648952.58,
            "y": 6977867.25,
            "lon": 2.290084,
            "lat": 49.897443,
        },
        *street(
            "Boulevard du Port",
            "80000",
            "80021",
            "Amiens",
            "6590",
            (port_x + 30, port_y + 5),
            (30, 5),
            [10, 12, 14, 18],
        ),
        *street(
            "Rue des Tilleuls",
            "80080",
            "80021",
            "Amiens",
            "X001",
            (centre["QN08003M"].x, centre["QN08003M"].y),
            (15, 0),
            [1, 3, 5, 7, 12, (12, "bis")],
        ),
        *street(
            "Avenue de la Paix",
            "80080",
            "80021",
            "Amiens",
            "X002",
            (centre["QN08001M"].x, centre["QN08001M"].y),
            (0, 12),
            [2, 4, 6],
        ),
        *street(
            "Place du Marché",
            "80090",
            "80021",
            "Amiens",
            "X003",
            (centre["QN08002M"].x, centre["QN08002M"].y),
            (10, 10),
            [1, 2],
        ),
        *street(
            "Rue Saint-Éloi",
            "80000",
            "80021",
            "Amiens",
            "X004",
            (centre["QN08006M"].x, centre["QN08006M"].y),
            (8, -8),
            [5, 7],
        ),
        *street("Rue de la Frontière", "80080", "80021", "Amiens", "X005", near, (0, 0), [3]),
        *street("Chemin des Vignes", "80090", "80021", "Amiens", "X006", (649200.0, 6973900.0), (20, 0), [1, 3, 5]),
        *street("Rue Jean Jaurès", "80450", "80164", "Camon", "X007", (653900.0, 6979300.0), (15, 0), [10, 12]),
        # issue 15: a street crossing Amiens Nord's boundary (1, 3, 5 inside; 7, 9 outside; 5 and 7 within 15 m) ...
        *street(
            "Rue de la Limite",
            "80080",
            "80021",
            "Amiens",
            "X008",
            (edge_point.x - 75 * outward[0], edge_point.y - 75 * outward[1]),
            (30 * outward[0], 30 * outward[1]),
            [1, 3, 5, 7, 9],
        ),
        # ... an address of an old commune (nom_ancienne_commune), away from any QPV ...
        *street(
            "Rue de l'Église",
            "80480",
            "80724",
            "Saleux",
            "X009",
            (643500.0, 6973200.0),
            (12, 0),
            [2, 4],
            old=("80725", "Salouël-Ancienne"),
        ),
        # ... and a lieu-dit (nom_ld) on a commune road
        *street(
            "Chemin Rural", "80450", "80164", "Camon", "X010", (655200.0, 6980100.0), (0, 20), [1], ld="Le Bois Robert"
        ),
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame.to_csv(HERE / "adresses-80-extrait.csv", sep=";", index=False)
    print(f"wrote {len(frame)} rows")


if __name__ == "__main__":
    main()

"""Commands around a geography: ``validate``, ``zones`` and ``compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data import QPV_2024
from ..settings import FACILITY_REACH_M, MIN_OVERLAP, NEAR_MARGIN, UNCHANGED_IOU, VECU_DISTANCE_M, WATCH_MIN_POPULATION
from .engine import OutCrs
from .options import app, written

Geography = Annotated[Path, typer.Argument(help="A GeoPackage written by `carroyage delimit`.")]


@app.command()
def validate(
    geography: Geography,
    official: Annotated[Path, typer.Option(help="Official QPV layer (default: the shipped 2024 layer).")] = QPV_2024,
) -> None:
    """Score a computed geography against an official QPV layer, on cell centres.

    The same definitions as ``benchmarks/fidelity.py``: recall (residents of cells whose centre is
    in an official QPV that lie in a computed quartier), precision (computed residents within
    300 m of an official QPV), QPVs detected (at least 30 % of their area under computed cells).
    """
    from ..around.validate import DETECTED_SHARE, NEAR_M
    from ..jobs import validate_file

    result = validate_file(geography, official)
    typer.echo(f"official QPV residents on the grid (cell centres): {result.official_residents:,.0f}")
    typer.echo(f"computed quartier residents:                      {result.computed_residents:,.0f}")
    typer.echo(f"recall    (coverage: official residents inside a computed quartier): {result.recall:.1%}")
    typer.echo(f"precision (computed residents within {NEAR_M:g} m of an official QPV): {result.precision:.1%}")
    typer.echo(
        f"QPVs detected (≥ {DETECTED_SHARE:.0%} of the area covered): {result.detected} of {result.official}; "
        f"quartiers computed: {result.quartiers}"
    )
    table = result.per_official
    for code, name, residents, coverage, area, detected in zip(
        table["code_qp"],
        table["lib_qp"],
        table["residents"],
        table["coverage"],
        table["area_covered"],
        table["detected"],
        strict=True,
    ):
        covered = f"{coverage:6.1%} covered" if residents > 0 else "no cell centre inside"
        typer.echo(
            f"  {code} {str(name)[:34]:34} {residents:8,.0f} residents, {covered}, area {area:4.0%}"
            + ("" if detected else "  (missed)")
        )


@app.command()
def zones(
    geography: Annotated[
        Path, typer.Argument(help="A GeoPackage written by `carroyage delimit` (layers are added to it).")
    ],
    vecu_distance: Annotated[
        float, typer.Option(help="Quartier vécu: metres around each QPV (300, the tax-code distance; 500 for NPNRU).")
    ] = VECU_DISTANCE_M,
    clip: Annotated[
        Path | None,
        typer.Option(
            help="Communes or EPCI polygons the vécu must stay in (e.g. data/communes_amiens_metropole.geojson)."
        ),
    ] = None,
    facilities: Annotated[
        Path | None, typer.Option(help="Points residents use; those within --facility-reach join the vécu.")
    ] = None,
    facility_reach: Annotated[
        float, typer.Option(help="Metres from a QPV within which a facility joins its vécu.")
    ] = FACILITY_REACH_M,
    previous: Annotated[
        Path | None,
        typer.Option(help="A previous geography (polygons): its parts outside the new QPVs go to veille active."),
    ] = None,
    local: Annotated[
        Path | None, typer.Option(help="Areas the contract designates for veille active, passed through.")
    ] = None,
    near_margin: Annotated[
        float, typer.Option(help="Veille active for clusters whose median is within this share above the threshold.")
    ] = NEAR_MARGIN,
    watch_min_population: Annotated[
        float, typer.Option(help="Smallest grid cluster worth watching (residents).")
    ] = WATCH_MIN_POPULATION,
    out_crs: Annotated[
        str | None,
        typer.Option(
            "--out-crs",
            help="CRS of the file: 2154 or EPSG:2154 (default: the file's own; another CRS rewrites every layer "
            "in it).",
            metavar="EPSG",
        ),
    ] = None,
) -> None:
    """Add the quartier_vecu and veille_active layers to a geography."""
    from ..around.zones import WatchSettings
    from ..jobs import zones_file

    watch = WatchSettings(near_margin=near_margin, min_population=watch_min_population)
    result = zones_file(geography, vecu_distance, clip, facilities, facility_reach, previous, local, watch, out_crs)
    vecu, watched = result.vecu, result.watch
    typer.echo(
        f"quartier_vecu: {len(vecu)} zones, {vecu_distance:g} m"
        + (", clipped" if clip else "")
        + (f", {int(vecu['facilities'].sum())} facilities joined" if facilities else "")
    )
    counts = watched["reason"].value_counts()
    typer.echo(
        f"veille_active: {len(watched)} zones" + "".join(f"\n  {reason}: {count}" for reason, count in counts.items())
    )
    written(geography)


@app.command()
def compare(
    old: Annotated[Path, typer.Argument(help="Former geography: a carroyage GeoPackage or any polygon layer.")],
    new: Annotated[Path, typer.Argument(help="New geography: a carroyage GeoPackage or any polygon layer.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="GeoPackage with one layer per class.")],
    min_overlap: Annotated[
        float, typer.Option(help="Quartiers match when they overlap by this share of the smaller.")
    ] = MIN_OVERLAP,
    unchanged_iou: Annotated[
        float, typer.Option(help="Intersection over union from which a one-to-one match is unchanged.")
    ] = UNCHANGED_IOU,
    out_crs: OutCrs = None,
) -> None:
    """Classify quartiers as new, modified, unchanged or left, with residents gained and lost."""
    from ..jobs import compare_files

    result, counted = compare_files(old, new, out, min_overlap, unchanged_iou, out_crs)
    typer.echo(f"{'class':10} {'quartiers':>9} {'gained':>9} {'lost':>9} {'area Δ ha':>10}")
    for row in result.summary().itertuples():
        typer.echo(
            f"{row[1]:10} {row.quartiers:9d} {row.residents_gained:9,.0f} {row.residents_lost:9,.0f} "
            f"{row.area_change_ha:10,.1f}"
        )
    if not counted:
        typer.echo("(no grid on either side: residents not counted)")
    written(out)

"""Publish a geography: an interactive folium map (French labels) and a static map for reports.

Self-contained maps inline the Leaflet copy the package ships (``carroyage/assets``), so they draw
their shapes with no network at all; the OpenStreetMap basemap appears when the network is there.
Popups are built in the browser with ``textContent``, never from HTML strings, so a quartier name
such as ``<script>alert(1)</script>`` is shown, not run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import branca
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .. import labels
from ..assets import LEAFLET_CDN, inline_leaflet
from ..errors import OutputError
from ..files import atomic_path
from ..geography import Geography
from ..labels import LAYERS, POPUPS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

STYLE: dict[str, dict[str, Any]] = {
    "qpv": {"color": "#b2182b", "fillColor": "#d6604d", "weight": 2, "fillOpacity": 0.45},
    "quartier_vecu": {
        "color": "#2166ac",
        "fillColor": "#92c5de",
        "weight": 1.5,
        "fillOpacity": 0.15,
        "dashArray": "6 4",
    },
    "veille_active": {"color": "#e08214", "fillColor": "#fdb863", "weight": 1.5, "fillOpacity": 0.35},
    "official": {"color": "#1b7837", "fillColor": "#1b7837", "weight": 2.5, "fillOpacity": 0.0, "dashArray": "2 6"},
}
STATIC_FORMATS = ("png", "pdf")

POPUP_JS = """
function (feature, layer) {
    var fields = %s;
    var table = document.createElement("table");
    fields.forEach(function (field) {
        var value = feature.properties[field[0]];
        if (value === null || value === undefined || value === "") { return; }
        var row = table.insertRow();
        var name = document.createElement("th");
        name.textContent = field[1];
        name.style.textAlign = "left";
        name.style.paddingRight = "8px";
        row.appendChild(name);
        row.insertCell().textContent = value;
    });
    layer.bindPopup(table);
}
"""


def interactive_map(
    geography: Geography, official: gpd.GeoDataFrame | None = None, title: str = labels.MAP_TITLE
) -> folium.Map:
    """A folium map of the geography, with French labels, legend, layer control and scale."""
    qpv = geography.qpv.to_crs(4326)
    west, south, east, north = qpv.total_bounds if len(qpv) else geography.cells.to_crs(4326).total_bounds
    fmap = folium.Map(tiles=None, control_scale=False, zoom_control=True, prefer_canvas=False)
    fmap.default_js = [("leaflet", f"{LEAFLET_CDN}/leaflet.js")]
    fmap.default_css = [("leaflet_css", f"{LEAFLET_CDN}/leaflet.css")]
    folium.TileLayer(
        "OpenStreetMap", name="Fond OpenStreetMap", attr="© contributeurs OpenStreetMap", control=True
    ).add_to(fmap)
    _cells_layer(geography).add_to(fmap)
    for name in ("quartier_vecu", "veille_active"):
        if name in geography.layers and len(geography.layers[name]):
            _layer(geography.layers[name].to_crs(4326), name).add_to(fmap)
    reference = _official(official, geography) if official is not None else None
    _layer(_with_display_values(qpv, reference), "qpv").add_to(fmap)
    if reference is not None:
        _layer(reference, "official").add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    MetricScale().add_to(fmap)  # type: ignore[no-untyped-call]  # branca's MacroElement.__init__ is unannotated
    root = cast(branca.element.Figure, fmap.get_root())  # a map's root is its page
    root.header.add_child(branca.element.Element(f"<title>{_escape(title)}</title>"))
    root.header.add_child(branca.element.Element(_manifest_tag(geography.manifest)))
    root.html.add_child(_legend(geography, official is not None, title))
    fmap.fit_bounds([[south, west], [north, east]])
    return fmap


def _manifest_tag(manifest: dict[str, object]) -> str:
    """How the map was made, readable in the page source (``</`` escaped so it cannot close the tag)."""
    text = json.dumps(manifest, ensure_ascii=False, sort_keys=True, default=str).replace("</", "<\\/")
    return f'<script type="application/json" id="carroyage-manifest">{text}</script>'


def _with_display_values(qpv: gpd.GeoDataFrame, official: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    shown = qpv.copy()
    if "name" not in shown:
        shown["name"] = ""
    if official is not None:
        shown["official"] = _most_overlapped(shown, official)
    shown["population"] = shown["population"].round(0).astype(int)
    shown["low_income_share"] = (shown["low_income_share"] * 100).round(1).astype(str) + " %"
    shown["median_income"] = shown["median_income"].round(0)
    shown["estimated"] = np.where(shown["estimated"], labels.FIGURES[True], labels.FIGURES[False])
    return shown


def _most_overlapped(qpv: gpd.GeoDataFrame, official: gpd.GeoDataFrame) -> np.ndarray:
    """For each quartier, the official QPV it overlaps most ("" when none)."""
    ours, theirs = qpv.to_crs(3035).geometry.to_numpy(), official.to_crs(3035).geometry.to_numpy()
    mine, other = shapely.STRtree(theirs).query(ours, predicate="intersects")
    overlap = pd.DataFrame(
        {"mine": mine, "other": other, "area": shapely.area(shapely.intersection(ours[mine], theirs[other]))}
    )
    best = overlap.loc[overlap.groupby("mine")["area"].idxmax()] if len(overlap) else overlap
    labels = np.full(len(qpv), "", dtype=object)
    labels[best["mine"].to_numpy()] = (
        official["code"].to_numpy()[best["other"]] + " " + official["name"].to_numpy()[best["other"]]
    )
    return labels


def _official(official: gpd.GeoDataFrame, geography: Geography) -> gpd.GeoDataFrame:
    from ..layers import codes_and_names

    near = official.to_crs(geography.cells.crs)
    near = near[near.intersects(geography.cells.union_all().envelope)]
    codes, names = codes_and_names(near, "O")
    return gpd.GeoDataFrame({"code": codes, "name": names}, geometry=near.geometry.to_numpy(), crs=near.crs).to_crs(
        4326
    )


def _layer(frame: gpd.GeoDataFrame, kind: str, show: bool = True) -> folium.GeoJson:
    fields = [(key, label) for key, label in POPUPS[kind] if key in frame.columns]
    keep = [key for key, _ in fields]
    style = STYLE[kind]
    return folium.GeoJson(
        frame[[*keep, "geometry"]],
        name=LAYERS[kind],
        show=show,
        style_function=lambda _feature, style=style: style,
        on_each_feature=folium.JsCode(POPUP_JS % json.dumps(fields, ensure_ascii=False)),
    )


def _cells_layer(geography: Geography) -> folium.GeoJson:
    cells = geography.cells[geography.cells["population"] > 0].to_crs(4326)
    colormap = branca.colormap.LinearColormap(["#ffffcc", "#fd8d3c", "#800026"], vmin=0, vmax=1)
    palette = np.array([colormap(step / 100) for step in range(101)], dtype=object)  # 101 shades, then indexing
    shade = np.rint(np.clip(cells["low_income_share"].to_numpy(dtype=float), 0, 1) * 100).astype(int)
    cells = cells.assign(
        low_income_share=(cells["low_income_share"] * 100).round(1).astype(str) + " %",
        fill=palette[shade],
        population=cells["population"].round(0),
    )
    fields = POPUPS["cells"]
    return folium.GeoJson(
        cells[["idcar_200m", "population", "low_income_share", "fill", "geometry"]],
        name=LAYERS["cells"],
        show=False,
        style_function=lambda feature: {
            "fillColor": feature["properties"]["fill"],
            "color": "#999",
            "weight": 0.3,
            "fillOpacity": 0.6,
        },
        on_each_feature=folium.JsCode(POPUP_JS % json.dumps(fields, ensure_ascii=False)),
    )


def _legend(geography: Geography, with_official: bool, title: str) -> branca.element.Element:
    estimated = bool(len(geography.qpv) and geography.qpv["estimated"].any())
    rows = [
        (STYLE["qpv"], LAYERS["qpv"]),
        *((STYLE[k], LAYERS[k]) for k in ("quartier_vecu", "veille_active") if k in geography.layers),
        *([(STYLE["official"], LAYERS["official"])] if with_official else []),
    ]
    items = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;margin-right:6px;vertical-align:middle;'
        f"background:{s['fillColor'] if s['fillOpacity'] else 'transparent'};opacity:0.9;"
        f'border:2px {"dashed" if "dashArray" in s else "solid"} {s["color"]}"></span>{_escape(label)}</div>'
        for s, label in rows
    )
    threshold = (cast(dict[str, Any] | None, geography.manifest.get("threshold")) or {}).get("value")
    note = labels.THRESHOLD_NOTE.format(value=f"{threshold:,.0f}".replace(",", " ")) if threshold else ""
    note += f"<br>{labels.ESTIMATED_NOTE}" if estimated else ""
    return branca.element.Element(
        '<div id="carroyage-legende" style="position:fixed;bottom:28px;right:10px;z-index:1000;background:white;'
        'padding:8px 10px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3);font:13px sans-serif;max-width:280px">'
        f"<b>{_escape(title)}</b>{items}<div style='margin-top:4px;color:#555'>{note}</div></div>"
    )


class MetricScale(branca.element.MacroElement):
    """A metric-only scale bar (folium's shows feet too)."""

    _template = branca.element.Template(  # type: ignore[attr-defined]  # jinja2's, re-exported without __all__
        """{% macro script(this, kwargs) %}
        L.control.scale({imperial: false, metric: true}).addTo({{ this._parent.get_name() }});
        {% endmacro %}"""
    )


def _escape(text: str) -> str:
    import html

    return html.escape(str(text), quote=True)


def save_map(fmap: folium.Map, path: str | Path, self_contained: bool = False) -> Path:
    """Write the map as one HTML file; ``self_contained`` inlines Leaflet (no CDN at all)."""
    page = fmap.get_root().render().replace("<html>", '<html lang="fr">', 1)
    page = _stable_ids(page)
    if self_contained:
        page = inline_leaflet(page)
    path = Path(path)
    with atomic_path(path) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return path


def _stable_ids(page: str) -> str:
    """Replace folium's random element ids by ids numbered in order of appearance.

    Two runs on the same geography then give byte-identical pages.
    """
    numbers: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        return numbers.setdefault(match.group(0), f"{len(numbers) + 1:032x}")

    return re.sub(r"(?<=_)[0-9a-f]{32}(?![0-9a-f])", number, page)


def static_map(
    geography: Geography, path: str | Path, official: gpd.GeoDataFrame | None = None, title: str = labels.MAP_TITLE
) -> Path:
    """A static map for reports (PNG or PDF, from the file name), with French labels.

    Cells shaded by their low-income share, quartiers vécus, veille active, quartiers with their
    codes, the official layer when given; legend, 1 km scale bar, north arrow and sources.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    path = Path(path)
    kind = static_format(path)
    cells = geography.cells[geography.cells["population"] > 0]
    west, south, east, north = cells.total_bounds
    # a figure shaped like the area, so the saved image has no empty band beside or below the map
    figure, axes = plt.subplots(figsize=(10, float(np.clip(9 * (north - south) / max(east - west, 1), 4, 14))))
    cells.plot(
        ax=axes,
        column="low_income_share",
        cmap="YlOrRd",
        vmin=0,
        vmax=1,
        alpha=0.35,
        linewidth=0,
        legend=True,
        legend_kwds={"label": "Part des habitants sous le seuil", "shrink": 0.6},
    )
    handles: list[Patch | Line2D] = []
    for name in ("quartier_vecu", "veille_active"):
        layer = geography.layers.get(name)
        if layer is not None and len(layer):
            style = STYLE[name]
            layer.plot(
                ax=axes,
                facecolor=style["fillColor"],
                edgecolor=style["color"],
                alpha=0.5,
                linewidth=1,
                linestyle="--" if "dashArray" in style else "-",
            )
            handles.append(Patch(facecolor=style["fillColor"], edgecolor=style["color"], alpha=0.5, label=LAYERS[name]))
    style = STYLE["qpv"]
    geography.qpv.plot(ax=axes, facecolor=style["fillColor"], edgecolor=style["color"], alpha=0.8, linewidth=1.5)
    handles.insert(0, Patch(facecolor=style["fillColor"], edgecolor=style["color"], alpha=0.8, label=LAYERS["qpv"]))
    for code, point in zip(geography.qpv["code"], geography.qpv.geometry.representative_point(), strict=True):
        axes.annotate(code, (point.x, point.y), ha="center", fontsize=9, weight="bold")
    if official is not None:
        near = _official(official, geography).to_crs(geography.cells.crs)
        near.boundary.plot(ax=axes, color=STYLE["official"]["color"], linewidth=1.5, linestyle=":")
        handles.append(Line2D([], [], color=STYLE["official"]["color"], linestyle=":", label=LAYERS["official"]))
    _scale_and_north(axes)
    axes.legend(handles=handles, loc="upper left", fontsize=9, framealpha=0.9)
    axes.set_title(title, fontsize=13)
    axes.set_axis_off()
    sources = labels.SOURCES
    sources += labels.ESTIMATED_SHORT if len(geography.qpv) and geography.qpv["estimated"].any() else ""
    axes.annotate(
        sources,
        (0, 0),
        xycoords="axes fraction",
        xytext=(0, -4),
        textcoords="offset points",
        va="top",
        fontsize=8,
        color="#444",
    )
    made = json.dumps(geography.manifest, ensure_ascii=False, sort_keys=True, default=str)
    try:
        with atomic_path(path) as temporary:
            figure.savefig(
                temporary,
                dpi=150,
                bbox_inches="tight",
                format=kind,
                metadata={"Description" if kind == "png" else "Subject": made},
            )
    finally:
        plt.close(figure)
    return path


def static_format(path: Path) -> str:
    """The static map's format, from its name: ``png`` or ``pdf``."""
    kind = path.suffix.lstrip(".").lower()
    if kind not in STATIC_FORMATS:
        raise OutputError(f"{path}: unknown static map format; expected a .png or .pdf name")
    return kind


def _scale_and_north(axes: Axes) -> None:
    west, east = axes.get_xlim()
    south, north = axes.get_ylim()
    x, y = west + 0.05 * (east - west), south + 0.05 * (north - south)
    axes.plot([x, x + 1000], [y, y], color="black", linewidth=3)
    axes.annotate("1 km", (x + 500, y), xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8)
    nx, ny = east - 0.05 * (east - west), north - 0.1 * (north - south)
    axes.annotate(
        "N",
        xy=(nx, ny + 0.05 * (north - south)),
        xytext=(nx, ny),
        ha="center",
        fontsize=11,
        weight="bold",
        arrowprops={"arrowstyle": "-|>", "color": "black"},
    )

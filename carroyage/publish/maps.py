"""Publish a geography: an interactive folium map (French labels) and a static map for reports.

Self-contained maps inline the Leaflet copy the package ships (``carroyage/assets``), so they draw
their shapes with no network at all; the OpenStreetMap basemap appears when the network is there,
and an offline vector context (commune limits and names from the shipped communes files, or
``--context FILE``) keeps the map readable without it. Popups are built in the browser with
``textContent``, never from HTML strings, so a quartier name such as
``<script>alert(1)</script>`` is shown, not run; every JSON embedded in a ``<script>`` (the
manifest, the fiches' fields, folium's data) has ``<``, ``>`` and ``&`` escaped as ``\\u003c``...,
so no text (a grid named ``grid<!--<script>.csv``, a zone name with ``</script>``) can close or
comment out a script. Every number a reader sees is formatted by
:mod:`carroyage.labels` (``11 274``, ``63,1 %``, ``14 500 €``).

Layers live in Leaflet panes stacked in a fixed order, so the computed quartiers stay on top and
clickable whatever layers are ticked again in the layer control; the official outlines and the
communes are drawn with ``interactive: false`` and never capture a click.
"""

from __future__ import annotations

import datetime as dt
import html
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
from .output import most_overlapped
from .styles import CELL_COLOURS, STYLE, cell_colour
from .tableau import section_id

if TYPE_CHECKING:
    from matplotlib.axes import Axes

STATIC_FORMATS = ("png", "pdf")
PAGE_FORMATS = ("html", "htm")
PANES = {"contexte": 350, "quartiers": 460, "officiels": 470, "noms": 480}
"""Leaflet panes over the default overlay pane (400: cells, quartiers vécus, veille active)."""

FICHE_JS = """
function carroyageFiche(fields, feature, layer) {
    var props = feature.properties;
    var box = document.createElement("div");
    box.className = "carroyage-fiche";
    if (props._titre) {
        var heading = document.createElement("p");
        heading.className = "carroyage-fiche-titre";
        heading.textContent = props._titre;
        box.appendChild(heading);
    }
    if (props._nom) {
        var name = document.createElement("p");
        name.className = "carroyage-fiche-nom";
        name.textContent = props._nom;
        box.appendChild(name);
    }
    var table = document.createElement("table");
    fields.forEach(function (field) {
        var value = props[field[0]];
        if (value === null || value === undefined || value === "") { return; }
        var row = table.insertRow();
        var label = document.createElement("th");
        label.scope = "row";
        label.textContent = field[1];
        row.appendChild(label);
        row.insertCell().textContent = value;
    });
    box.appendChild(table);
    if (props._tableau) {
        var link = document.createElement("a");
        link.href = props._tableau;
        link.className = "carroyage-fiche-tableau";
        link.textContent = props._tableau_texte;
        box.appendChild(link);
    }
    layer.bindPopup(box, {maxWidth: 320, minWidth: 180});
}
"""
"""A feature's fiche (popup), built as text nodes: defined once in the page, called by every layer."""

MAP_CSS = """
body, .leaflet-container { font: 13px/1.4 system-ui, "Segoe UI", Roboto, Arial, sans-serif; }
.leaflet-container { background: #f4f3ee !important; }
.carroyage-fiche { min-width: 0; }
.carroyage-fiche-titre { font-weight: 700; font-size: 14px; margin: 0 0 2px; }
.carroyage-fiche-nom { margin: 0 0 6px; color: #333; overflow-wrap: anywhere; }
.carroyage-fiche table { border-collapse: collapse; }
.carroyage-fiche th { text-align: left; font-weight: 600; padding: 1px 8px 1px 0; vertical-align: top; }
.carroyage-fiche td { overflow-wrap: anywhere; word-break: break-word; padding: 1px 0; }
.carroyage-commune { color: #3a3a3a; font-size: 11px; font-weight: 600; white-space: nowrap;
  text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff; transform: translate(-50%, -50%); width: auto !important;
  height: auto !important; background: none; border: none; }
#carroyage-titre { position: fixed; top: 10px; left: 54px; right: 60px; z-index: 1000; pointer-events: none; }
#carroyage-titre div { display: inline-block; background: rgba(255,255,255,.94); padding: 6px 10px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,.3); pointer-events: auto; max-width: 100%; box-sizing: border-box; }
#carroyage-titre h1 { font-size: 16px; margin: 0; line-height: 1.25; }
#carroyage-titre p { font-size: 12px; margin: 2px 0 0; color: #333; }
#carroyage-legende { position: fixed; bottom: 24px; right: 10px; z-index: 1000; background: #fff; padding: 6px 10px;
  border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,.3); max-width: 270px; max-height: calc(100vh - 140px);
  overflow: auto; box-sizing: border-box; }
#carroyage-legende summary { font-weight: 700; cursor: pointer; }
#carroyage-legende .entree { display: flex; align-items: center; gap: 6px; margin-top: 4px; }
#carroyage-legende .symbole { flex: none; width: 16px; height: 12px; box-sizing: border-box; }
#carroyage-legende .barre { height: 10px; margin-top: 4px; border: 1px solid #999;
  background: linear-gradient(to right, %(colours)s); }
#carroyage-legende .graduations { display: flex; justify-content: space-between; font-size: 11px; }
#carroyage-legende .note { margin-top: 6px; color: #333; font-size: 12px; }
@media (max-width: 600px) {
  #carroyage-titre { left: 50px; right: 50px; } #carroyage-titre h1 { font-size: 14px; }
  #carroyage-legende { max-width: calc(100vw - 20px); bottom: 42px; }
}
@media print {
  @page { size: A4 landscape; margin: 10mm; }
  .leaflet-control-layers, .leaflet-control-zoom { display: none !important; }
  #carroyage-titre div, #carroyage-legende { box-shadow: none; border: 1px solid #000; }
  #carroyage-legende details > * { display: block; }
  .leaflet-popup { display: none; }
}
"""

FIT_JS = """{%% macro script(this, kwargs) %%}
(function (map) {
    var bounds = %(bounds)s;
    function fit() {
        var title = document.getElementById("carroyage-titre");
        var legend = document.getElementById("carroyage-legende");
        var wide = map.getSize().x > 700;
        var top = title ? title.getBoundingClientRect().bottom + 8 : 10;
        var right = wide && legend ? legend.getBoundingClientRect().width + 20 : 10;
        map.fitBounds(bounds, {paddingTopLeft: [10, top], paddingBottomRight: [right, 10]});
    }
    var legend = document.querySelector("#carroyage-legende details");
    if (legend && window.innerWidth < 600) { legend.removeAttribute("open"); }
    fit();
})({{ this._parent.get_name() }});
{%% endmacro %%}"""


def interactive_map(
    geography: Geography,
    official: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    context: str | Path | None = None,
    tableau: str | None = None,
) -> folium.Map:
    """A folium map of the geography: French labels, legends, collapsed layer control, scale.

    Parameters
    ----------
    geography : Geography
        What ``carroyage delimit`` (and ``zones``) made.
    official : geopandas.GeoDataFrame, optional
        Official QPV, drawn as outlines that never capture clicks; each computed quartier's fiche
        names the official QPV it overlaps most.
    title : str, optional
        The map's title; by default "Géographie prioritaire — <commune>" from the context.
    context : str or Path, optional
        A communes file (limits and names); by default any shipped communes file that meets the
        geography.
    tableau : str, optional
        Address of the tableau de bord of the official QPVs (``carroyage indicators --html``),
        relative to the map: each fiche links to the row of the official QPV it overlaps.

    Returns
    -------
    folium.Map
    """
    communes = context_communes(geography, context)
    title = title or default_title(geography, communes)
    fmap = folium.Map(tiles=None, control_scale=False, zoom_control=True, prefer_canvas=False)
    fmap.default_js = [("leaflet", f"{LEAFLET_CDN}/leaflet.js")]
    fmap.default_css = [("leaflet_css", f"{LEAFLET_CDN}/leaflet.css")]
    for pane, z_index in PANES.items():
        folium.map.CustomPane(pane, z_index=z_index, pointer_events=False).add_to(fmap)
    folium.TileLayer(
        "OpenStreetMap", name="Fond OpenStreetMap (en ligne)", attr="© contributeurs OpenStreetMap", control=True
    ).add_to(fmap)
    if communes is not None:
        _communes_layer(communes).add_to(fmap)
    _cells_layer(geography).add_to(fmap)
    shown: list[gpd.GeoDataFrame] = []
    for name in ("quartier_vecu", "veille_active"):
        if name in geography.layers and len(geography.layers[name]):
            layer = _display(geography.layers[name]).to_crs(4326)
            shown.append(layer)
            _layer(layer, name).add_to(fmap)
    reference = official_near(official, geography) if official is not None else None
    quartiers = quartier_fiches(geography.qpv, reference, tableau).to_crs(4326)
    shown.append(quartiers)
    _layer(quartiers, "qpv", pane="quartiers").add_to(fmap)
    if reference is not None:
        shown.append(reference)
        _layer(reference, "official", pane="officiels", interactive=False).add_to(fmap)
    folium.LayerControl(collapsed=True).add_to(fmap)
    MetricScale().add_to(fmap)  # type: ignore[no-untyped-call]  # branca's MacroElement.__init__ is unannotated
    root = cast(branca.element.Figure, fmap.get_root())  # a map's root is its page
    root.header.add_child(branca.element.Element(f"<title>{_escape(title)}</title>"))
    root.header.add_child(branca.element.Element(_manifest_tag(geography.manifest)))
    root.header.add_child(branca.element.Element(f"<script>{FICHE_JS}</script>"))
    root.header.add_child(
        branca.element.Element(f"<style>{MAP_CSS.replace('%(colours)s', ', '.join(CELL_COLOURS))}</style>")
    )
    root.html.add_child(branca.element.Element(_title_box(title, subtitle(geography.manifest))))
    root.html.add_child(_legend(geography, reference is not None, communes is not None))
    FitBounds(_bounds(shown or [geography.cells.to_crs(4326)])).add_to(fmap)
    return fmap


def _bounds(frames: list[gpd.GeoDataFrame]) -> list[list[float]]:
    """``[[south, west], [north, east]]`` over every layer shown (so no quartier is cropped)."""
    boxes = np.array([frame.total_bounds for frame in frames if len(frame)])
    if not len(boxes):
        return [[41.3, -5.2], [51.1, 9.6]]  # metropolitan France
    west, south = boxes[:, 0].min(), boxes[:, 1].min()
    east, north = boxes[:, 2].max(), boxes[:, 3].max()
    return [[round(float(south), 6), round(float(west), 6)], [round(float(north), 6), round(float(east), 6)]]


class FitBounds(branca.element.MacroElement):
    """Fit the map to the layers, keeping them clear of the title and (on wide screens) the legend."""

    def __init__(self, bounds: list[list[float]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # branca's MacroElement.__init__ is unannotated
        self._name = "FitBounds"
        self._template = branca.element.Template(FIT_JS % {"bounds": script_json(bounds)})  # type: ignore[attr-defined]


SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
"""Characters escaped in JSON embedded in a ``<script>``: the same JSON, and nothing in it can end
the script (``</script>``), open an HTML comment (``<!--``) or break a JavaScript string."""


def script_json(value: object) -> str:
    """JSON safe to embed in an HTML ``<script>``, whatever text it holds.

    >>> script_json({"path": "grid<!--<script>.csv"})
    '{"path": "grid\\\\u003c!--\\\\u003cscript\\\\u003e.csv"}'
    """
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return re.sub("[<>&\u2028\u2029]", lambda match: SCRIPT_UNSAFE[match.group(0)], text)


def _manifest_tag(manifest: dict[str, object]) -> str:
    """How the map was made, readable in the page source and by ``JSON.parse``."""
    return f'<script type="application/json" id="carroyage-manifest">{script_json(manifest)}</script>'


def subtitle(manifest: dict[str, object]) -> str:
    """Grid vintage, rule and date of the run, from the manifest (``carroyage Filosofi 2019 · …``)."""
    inputs = cast(dict[str, Any], manifest.get("inputs") or {})
    grid_path = str((inputs.get("grid") or {}).get("path", ""))
    vintage = re.search(r"(?<!\d)(20\d\d)(?!\d)", Path(grid_path).name)
    grid = labels.GRID_VINTAGE.format(vintage=vintage.group(1)) if vintage else labels.GRID_UNKNOWN
    rule = cast(dict[str, Any], manifest.get("rule") or {}).get("name", "?")
    date = labels.french_date(str(manifest["date"])) if manifest.get("date") else "?"
    return labels.MAP_SUBTITLE.format(grid=grid, rule=rule, date=date)


def default_title(geography: Geography, communes: gpd.GeoDataFrame | None) -> str:
    """``Géographie prioritaire — <commune>``: the context commune holding most of the quartiers."""
    if communes is None or not len(communes):
        return labels.MAP_TITLE
    where = geography.qpv.geometry if len(geography.qpv) else geography.cells.geometry
    union = shapely.union_all(where.to_crs(communes.crs).to_numpy())
    overlap = shapely.area(shapely.intersection(communes.geometry.to_numpy(), union))
    if not np.any(overlap > 0):
        return labels.MAP_TITLE
    return f"{labels.MAP_TITLE} — {communes['name'].to_numpy()[int(np.argmax(overlap))]}"


def context_communes(geography: Geography, path: str | Path | None = None) -> gpd.GeoDataFrame | None:
    """Commune limits and names around the geography (in its CRS), or ``None`` when none meet it.

    ``path`` is a communes file; without one, every ``communes_*.geojson`` shipped in
    :data:`carroyage.data.DATA_DIR` is tried, and those that meet the grid's extent are kept.
    """
    from ..data import DATA_DIR
    from ..layers import codes_and_names, read_layer

    candidates = [Path(path)] if path else sorted(DATA_DIR.glob("communes_*.geojson"))
    table = geography.cell_table
    if not len(table):
        return None
    extent = shapely.box(
        table["x"].min(),
        table["y"].min(),
        table["x"].max() + geography.resolution,
        table["y"].max() + geography.resolution,
    )
    found = []
    for candidate in candidates:
        layer = read_layer(candidate, "communes").to_crs(f"EPSG:{geography.epsg}")
        near = layer[layer.intersects(extent)]
        if len(near):
            codes, names = codes_and_names(near, "C")
            found.append(
                gpd.GeoDataFrame({"code": codes, "name": names}, geometry=near.geometry.to_numpy(), crs=near.crs)
            )
    if not found:
        return None
    return gpd.GeoDataFrame(pd.concat(found, ignore_index=True), crs=found[0].crs)


def quartier_fiches(
    qpv: gpd.GeoDataFrame, official: gpd.GeoDataFrame | None = None, tableau: str | None = None
) -> gpd.GeoDataFrame:
    """The computed quartiers with their fiche's values as French text (``11 274``, ``63,1 %``)."""
    shown = qpv.copy()
    shown["_titre"] = [labels.CANDIDATE.format(code=code) for code in shown["code"]]
    shown["_nom"] = shown["name"].fillna("") if "name" in shown else ""
    if official is not None:
        shown["official"] = [match or labels.NO_OFFICIAL for match in _most_overlapped(shown, official)]
        if tableau:
            codes, _ = most_overlapped(shown, official)
            shown["_tableau"] = [f"{tableau}#{section_id('qpv', code, set())}" if code else None for code in codes]
            shown["_tableau_texte"] = [labels.TABLEAU_LINK.format(code=code) if code else None for code in codes]
    shown["population"] = [labels.integer(v) for v in shown["population"]]
    shown["median_income"] = [labels.euros(v) for v in shown["median_income"]]
    shown["low_income_share"] = [labels.percent(v) for v in shown["low_income_share"]]
    shown["estimated"] = [labels.FIGURES[bool(v)] for v in shown["estimated"]]
    return shown


def _display(layer: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A quartier vécu or veille-active layer with its figures as French text."""
    shown = layer.copy()
    if "population" in shown:
        shown["population"] = [labels.integer(v) for v in shown["population"]]
    if "distance_m" in shown:
        shown["distance_m"] = [labels.metres(v) for v in shown["distance_m"]]
    if "facilities" in shown:
        shown["facilities"] = [labels.integer(v) for v in shown["facilities"]]
    return shown


def _most_overlapped(qpv: gpd.GeoDataFrame, official: gpd.GeoDataFrame) -> np.ndarray:
    """For each quartier, the official QPV it overlaps most (``""`` when none)."""
    codes, names = most_overlapped(qpv, official)
    return np.array([f"{c} {n}".strip() if c else "" for c, n in zip(codes, names, strict=True)], dtype=object)


def official_near(official: gpd.GeoDataFrame, geography: Geography) -> gpd.GeoDataFrame:
    """The official QPV that meet the grid, with ``code`` and ``name``, in EPSG:4326."""
    from ..layers import codes_and_names

    near = official.to_crs(geography.cells.crs)
    near = near[near.intersects(geography.cells.union_all().envelope)]
    codes, names = codes_and_names(near, "O")
    return gpd.GeoDataFrame({"code": codes, "name": names}, geometry=near.geometry.to_numpy(), crs=near.crs).to_crs(
        4326
    )


def _layer(frame: gpd.GeoDataFrame, kind: str, pane: str | None = None, interactive: bool = True) -> folium.GeoJson:
    fields = [(key, label) for key, label in POPUPS[kind] if key in frame.columns]
    extras = ("_titre", "_nom", "_tableau", "_tableau_texte")
    keep = [key for key, _ in fields] + [key for key in extras if key in frame.columns]
    style = STYLE[kind]
    options: dict[str, Any] = {"pane": pane} if pane else {}
    if not interactive:
        options.update(interactive=False, bubblingMouseEvents=True)
    return folium.GeoJson(
        _json_safe(frame[[*keep, "geometry"]]),
        name=LAYERS[kind],
        show=True,
        style_function=lambda _feature, style=style: style,
        on_each_feature=folium.JsCode(_fiche(fields)) if interactive else None,
        **options,
    )


def _fiche(fields: object) -> str:
    """A layer's popups: the page's one :data:`FICHE_JS` function, given this layer's fields."""
    return f"function (feature, layer) {{ carroyageFiche({script_json(fields)}, feature, layer); }}"


def _json_safe(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Missing values as JSON ``null`` (the popup then leaves the row out)."""
    frame = frame.copy()
    for column in frame.columns:
        if column != frame.geometry.name:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def _communes_layer(communes: gpd.GeoDataFrame) -> folium.FeatureGroup:
    """Commune limits and names, never interactive: readable with no tiles at all."""
    group = folium.FeatureGroup(name=LAYERS["communes"], show=True)
    limits = communes.to_crs(4326)
    style = STYLE["communes"]
    folium.GeoJson(
        limits[["geometry"]],
        style_function=lambda _feature, style=style: style,
        pane="contexte",
        interactive=False,
        control=False,
    ).add_to(group)
    points = limits.geometry.representative_point()
    for name, point in zip(limits["name"], points, strict=True):
        if name:
            folium.Marker(
                [round(point.y, 6), round(point.x, 6)],
                icon=folium.DivIcon(html=_escape(name), class_name="carroyage-commune"),
                interactive=False,
                keyboard=False,
                pane="noms",
            ).add_to(group)
    return group


def _cells_layer(geography: Geography) -> folium.GeoJson:
    cells = geography.cells[geography.cells["population"] > 0].to_crs(4326)
    palette = np.array([cell_colour(step / 100) for step in range(101)], dtype=object)  # 101 shades, then indexing
    share = cells["low_income_share"].to_numpy(dtype=float)
    shade = np.rint(np.clip(np.nan_to_num(share), 0, 1) * 100).astype(int)
    cells = cells.assign(
        low_income_share=[labels.percent(v) for v in share],
        median_income=[labels.euros(v) for v in cells["median_income"]] if "median_income" in cells else None,
        fill=palette[shade],
        population=[labels.integer(v) for v in cells["population"]],
    )
    fields = [(key, label) for key, label in POPUPS["cells"] if key in cells.columns]
    return folium.GeoJson(
        _json_safe(cells[[*(key for key, _ in fields), "fill", "geometry"]]),
        name=LAYERS["cells"],
        show=False,
        style_function=lambda feature: {
            "fillColor": feature["properties"]["fill"],
            "color": "#999",
            "weight": 0.3,
            "fillOpacity": 0.6,
        },
        on_each_feature=folium.JsCode(_fiche(fields)),
    )


def _title_box(title: str, sub: str) -> str:
    return f'<header id="carroyage-titre"><div><h1>{_escape(title)}</h1><p>{_escape(sub)}</p></div></header>'


def _symbol(style: dict[str, Any]) -> str:
    fill = style["fillColor"] if style["fillOpacity"] else "transparent"
    border = "dashed" if "dashArray" in style else "solid"
    return (
        f'<span class="symbole" aria-hidden="true" style="background:{fill};opacity:.9;'
        f'border:2px {border} {style["color"]}"></span>'
    )


def _legend(geography: Geography, with_official: bool, with_communes: bool) -> branca.element.Element:
    """Every layer's symbol, the cells' colour bar in French percentages, the threshold."""
    estimated = bool(len(geography.qpv) and geography.qpv["estimated"].any())
    rows = [
        ("qpv", True),
        ("official", with_official),
        ("quartier_vecu", "quartier_vecu" in geography.layers),
        ("veille_active", "veille_active" in geography.layers),
        ("communes", with_communes),
    ]
    items = "".join(
        f'<div class="entree">{_symbol(STYLE[kind])}<span>{_escape(LAYERS[kind])}</span></div>'
        for kind, present in rows
        if present
    )
    ticks = "".join(f"<span>{_escape(labels.percent(step / 4, 0))}</span>" for step in range(5))
    scale = (
        f'<div class="note">{_escape(labels.CELLS_SCALE)}</div><div class="barre" aria-hidden="true"></div>'
        f'<div class="graduations">{ticks}</div>'
    )
    threshold = (cast(dict[str, Any] | None, geography.manifest.get("threshold")) or {}).get("value")
    notes = [labels.THRESHOLD_NOTE.format(value=labels.euros(float(threshold)))] if threshold else []
    notes += [labels.ESTIMATED_NOTE] if estimated else []
    notes += [labels.CONTEXT_NOTE] if with_communes else []
    note = "".join(f'<div class="note">{_escape(text)}</div>' for text in notes)
    return branca.element.Element(
        f'<aside id="carroyage-legende" aria-label="{labels.LEGEND}"><details open>'
        f"<summary>{labels.LEGEND}</summary>{items}{scale}{note}</details></aside>"
    )


class MetricScale(branca.element.MacroElement):
    """A metric-only scale bar (folium's shows feet too)."""

    _template = branca.element.Template(  # type: ignore[attr-defined]  # jinja2's, re-exported without __all__
        """{% macro script(this, kwargs) %}
        L.control.scale({imperial: false, metric: true}).addTo({{ this._parent.get_name() }});
        {% endmacro %}"""
    )


def _escape(text: object) -> str:
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
    geography: Geography,
    path: str | Path,
    official: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    context: str | Path | None = None,
) -> Path:
    """A static map for reports (PNG or PDF, from the file name), with French labels.

    Cells shaded by their low-income share (colour bar in French percentages), commune limits
    and names, quartiers vécus, veille active, quartiers with their codes, the official layer when
    given; legend, 1 km scale bar, north arrow, sources. The bytes are reproducible: the PDF's
    creation date is the manifest's date (itself ``SOURCE_DATE_EPOCH`` when set).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    path = Path(path)
    kind = static_format(path)
    communes = context_communes(geography, context)
    title = title or default_title(geography, communes)
    cells = geography.cells[geography.cells["population"] > 0]
    west, south, east, north = cells.total_bounds
    # a figure shaped like the area, so the saved image has no empty band beside or below the map
    figure, axes = plt.subplots(figsize=(10, float(np.clip(9 * (north - south) / max(east - west, 1), 4, 14))))
    cells.plot(
        ax=axes,
        column="low_income_share",
        cmap=LinearSegmentedColormap.from_list("carroyage", list(CELL_COLOURS)),
        vmin=0,
        vmax=1,
        alpha=0.45,
        linewidth=0,
        legend=True,
        legend_kwds={
            "label": labels.CELLS_SCALE,
            "shrink": 0.6,
            "format": FuncFormatter(lambda value, _: labels.percent(value, 0)),
        },
    )
    if communes is not None:
        communes.boundary.plot(ax=axes, color=STYLE["communes"]["color"], linewidth=0.6)
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
        axes.annotate(
            code, (point.x, point.y), ha="center", fontsize=9, weight="bold", color="#2d1542", parse_math=False
        )
    if official is not None:
        near = official_near(official, geography).to_crs(geography.cells.crs)
        near.boundary.plot(ax=axes, color=STYLE["official"]["color"], linewidth=1.5, linestyle="--")
        handles.append(Line2D([], [], color=STYLE["official"]["color"], linestyle="--", label=LAYERS["official"]))
    axes.set_xlim(west, east)
    axes.set_ylim(south, north)
    if communes is not None:
        handles.append(Line2D([], [], color=STYLE["communes"]["color"], linewidth=0.8, label=LAYERS["communes"]))
        inside = shapely.box(west, south, east, north)
        for name, point in zip(communes["name"], communes.geometry.representative_point(), strict=True):
            if name and inside.contains(point):
                axes.annotate(
                    name, (point.x, point.y), ha="center", va="center", fontsize=6.5, color="#444", parse_math=False
                )
    _scale_and_north(axes)
    axes.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.92)
    axes.set_title(f"{title}\n{subtitle(geography.manifest)}", fontsize=12, parse_math=False)  # "$" is text
    axes.set_axis_off()
    sources = labels.SOURCES
    sources += labels.ESTIMATED_SHORT if len(geography.qpv) and geography.qpv["estimated"].any() else ""
    threshold = (cast(dict[str, Any] | None, geography.manifest.get("threshold")) or {}).get("value")
    if threshold:
        sources += " " + labels.THRESHOLD_NOTE.format(value=labels.euros(float(threshold))) + "."
    axes.annotate(
        sources,
        (0, 0),
        xycoords="axes fraction",
        xytext=(0, -4),
        textcoords="offset points",
        va="top",
        fontsize=8,
        color="#444",
        parse_math=False,
    )
    try:
        with atomic_path(path) as temporary:
            figure.savefig(
                temporary,
                dpi=150,
                bbox_inches="tight",
                format=kind,
                metadata=_static_metadata(geography.manifest, kind, title),
            )
    finally:
        plt.close(figure)
    return path


def _static_metadata(manifest: dict[str, object], kind: str, title: str) -> dict[str, Any]:
    """Metadata that depend only on the run: the manifest, and its date as the PDF's creation date."""
    made = json.dumps(manifest, ensure_ascii=False, sort_keys=True, default=str)
    if kind == "png":
        return {"Title": title, "Description": made}
    date = str(manifest.get("date") or "1970-01-01")[:10]
    created = dt.datetime.fromisoformat(date).replace(tzinfo=dt.timezone.utc)
    return {"Title": title, "Subject": made, "CreationDate": created, "ModDate": created}


def static_format(path: Path) -> str:
    """The static map's format, from its name: ``png`` or ``pdf``."""
    kind = path.suffix.lstrip(".").lower()
    if kind not in STATIC_FORMATS:
        raise OutputError(labels.STATIC_FORMAT.format(path=path))
    return kind


def map_format(path: Path) -> str:
    """What a map file's name asks for: ``html``, ``png`` or ``pdf``."""
    kind = path.suffix.lstrip(".").lower()
    if kind in PAGE_FORMATS:
        return "html"
    if kind in STATIC_FORMATS:
        return kind
    raise OutputError(labels.MAP_OUT_FORMAT.format(path=path))


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

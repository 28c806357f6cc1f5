"""QGIS styles for the GeoPackage layers, in QGIS's own ``layer_styles`` table.

QGIS opens a GeoPackage layer with the style of its ``layer_styles`` row whose ``useAsDefault``
is true, so a planner who drags the file into QGIS sees the quartiers, zones and cells coloured as
on the web map (:data:`carroyage.publish.maps.STYLE`), with their codes as labels. Each row also
carries an SLD version of the same symbol (``styleSLD``) for other GIS software.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from .. import labels

STYLE: dict[str, dict[str, Any]] = {
    # a computed candidate is violet: red is kept for the official QPV, here, on the page and in QGIS
    "qpv": {"color": "#5b2c83", "fillColor": "#9e7cc1", "weight": 2.5, "fillOpacity": 0.45},
    "quartier_vecu": {
        "color": "#2166ac",
        "fillColor": "#92c5de",
        "weight": 1.5,
        "fillOpacity": 0.15,
        "dashArray": "6 4",
    },
    "veille_active": {"color": "#b35806", "fillColor": "#fdb863", "weight": 1.5, "fillOpacity": 0.35},
    "official": {"color": "#c9191e", "fillColor": "#c9191e", "weight": 2.5, "fillOpacity": 0.0, "dashArray": "4 4"},
    "communes": {"color": "#5a5a5a", "fillColor": "#ffffff", "weight": 1.0, "fillOpacity": 0.0},
}
CELL_COLOURS = ("#ffffcc", "#fd8d3c", "#800026")
"""The cell choropleth, from 0 % to 100 % of residents below the threshold."""


def cell_colour(share: float) -> str:
    """The choropleth's colour for a share in [0, 1] (hex), linear between :data:`CELL_COLOURS`."""
    share = min(max(float(share), 0.0), 1.0) * (len(CELL_COLOURS) - 1)
    low = min(int(share), len(CELL_COLOURS) - 2)
    start, end = (tuple(int(c.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)) for c in CELL_COLOURS[low : low + 2])
    mix = share - low
    return "#" + "".join(f"{round(a + (b - a) * mix):02x}" for a, b in zip(start, end, strict=True))


LAYER_STYLES = "layer_styles"
STYLE_COLUMNS = (
    "f_table_catalog",
    "f_table_schema",
    "f_table_name",
    "f_geometry_column",
    "styleName",
    "styleQML",
    "styleSLD",
    "useAsDefault",
    "description",
    "owner",
    "ui",
    "update_time",
)
"""The columns QGIS creates and reads (``QgsOgrProviderUtils`` / "Save style in database")."""

CELL_CLASSES = ((0.0, 0.2), (0.2, 0.4), (0.4, 0.5), (0.5, 0.6), (0.6, 1.0))
"""Classes of the cells' share below the threshold (0.5: a candidate cell under the decree)."""


def _rgba(colour: str, opacity: float) -> str:
    colour = colour.lstrip("#")
    red, green, blue = (int(colour[i : i + 2], 16) for i in (0, 2, 4))
    return f"{red},{green},{blue},{round(255 * opacity)}"


def _fill_symbol(name: str, style: dict[str, object], fill_opacity: float | None = None) -> str:
    opacity = float(style["fillOpacity"]) if fill_opacity is None else fill_opacity  # type: ignore[arg-type]
    outline = "dash" if "dashArray" in style else "solid"
    fill = "solid" if opacity > 0 else "no"
    width = 0.26 * float(style["weight"])  # type: ignore[arg-type]  # Leaflet px → QGIS mm, about
    return (
        f'<symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0"><layer class="SimpleFill" '
        f'enabled="1" locked="0" pass="0"><Option type="Map">'
        f'<Option name="color" type="QString" value="{_rgba(str(style["fillColor"]), opacity)}"/>'
        f'<Option name="style" type="QString" value="{fill}"/>'
        f'<Option name="outline_color" type="QString" value="{_rgba(str(style["color"]), 1.0)}"/>'
        f'<Option name="outline_style" type="QString" value="{outline}"/>'
        f'<Option name="outline_width" type="QString" value="{width:.2f}"/>'
        f'<Option name="outline_width_unit" type="QString" value="MM"/>'
        f'<Option name="joinstyle" type="QString" value="miter"/>'
        "</Option></layer></symbol>"
    )


def _labels(field: str) -> str:
    return (
        '<labeling type="simple"><settings calloutType="simple">'
        f'<text-style fieldName="{field}" fontSize="9" fontWeight="75" textColor="45,21,66,255" isExpression="0">'
        '<text-buffer bufferDraw="1" bufferSize="0.8" bufferColor="255,255,255,255"/></text-style>'
        '<placement placement="1"/></settings></labeling>'
    )


def qml(kind: str, style: dict[str, object], title: str, label_field: str | None = None) -> str:
    """A QGIS style (QML) for a polygon layer: one symbol, or graduated colours for the cells."""
    if kind == "cells":
        ranges, symbols = [], []
        for index, (low, high) in enumerate(CELL_CLASSES):
            name = str(index)
            text = f"{labels.percent(low, 0)} – {labels.percent(high, 0)}"
            ranges.append(
                f'<range lower="{low}" upper="{high}" symbol="{name}" label="{html.escape(text)}" render="true"/>'
            )
            colour = cell_colour((low + high) / 2)
            symbols.append(_fill_symbol(name, {"fillColor": colour, "color": "#999999", "weight": 0.5}, 0.7))
        renderer = (
            '<renderer-v2 type="graduatedSymbol" attr="low_income_share" graduatedMethod="GraduatedColor" '
            f'symbollevels="0" enableorderby="0" forceraster="0"><ranges>{"".join(ranges)}</ranges>'
            f"<symbols>{''.join(symbols)}</symbols></renderer-v2>"
        )
    else:
        renderer = (
            '<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0">'
            f"<symbols>{_fill_symbol('0', style)}</symbols></renderer-v2>"
        )
    labelling = _labels(label_field) if label_field else ""
    enabled = ' labelsEnabled="1"' if label_field else ""
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
        f'<qgis version="3.28.0" styleCategories="Symbology|Labeling"{enabled}>'
        f"{renderer}{labelling}<layerGeometryType>2</layerGeometryType>"
        f"<!-- {html.escape(title)} --></qgis>"
    )


def sld(name: str, style: dict[str, object]) -> str:
    """The same symbol as an OGC SLD 1.1 document (one rule)."""
    opacity = float(style["fillOpacity"])  # type: ignore[arg-type]
    dash = '<se:SvgParameter name="stroke-dasharray">6 4</se:SvgParameter>' if "dashArray" in style else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><StyledLayerDescriptor version="1.1.0" '
        'xmlns="http://www.opengis.net/sld" xmlns:se="http://www.opengis.net/se">'
        f"<NamedLayer><se:Name>{html.escape(name)}</se:Name><UserStyle><se:FeatureTypeStyle><se:Rule>"
        "<se:PolygonSymbolizer><se:Fill>"
        f'<se:SvgParameter name="fill">{style["fillColor"]}</se:SvgParameter>'
        f'<se:SvgParameter name="fill-opacity">{opacity}</se:SvgParameter></se:Fill><se:Stroke>'
        f'<se:SvgParameter name="stroke">{style["color"]}</se:SvgParameter>'
        f'<se:SvgParameter name="stroke-width">{style["weight"]}</se:SvgParameter>{dash}'
        "</se:Stroke></se:PolygonSymbolizer></se:Rule></se:FeatureTypeStyle></UserStyle></NamedLayer>"
        "</StyledLayerDescriptor>"
    )


COMPARE_STYLE: dict[str, dict[str, Any]] = {
    # the classes of `carroyage compare`: entering green, redrawn orange, unchanged grey, leaving dashed
    "new": {"color": "#1a7837", "fillColor": "#7fbf7b", "weight": 2.0, "fillOpacity": 0.45},
    "modified": {"color": "#b35806", "fillColor": "#fdb863", "weight": 2.0, "fillOpacity": 0.45},
    "unchanged": {"color": "#4d4d4d", "fillColor": "#bababa", "weight": 1.5, "fillOpacity": 0.35},
    "left": {"color": "#4d4d4d", "fillColor": "#ffffff", "weight": 2.0, "fillOpacity": 0.0, "dashArray": "4 4"},
}

STYLED = {"qpv": ("qpv", "code"), "quartier_vecu": ("quartier_vecu", None), "veille_active": ("veille_active", "code")}
STYLED |= {"cells": ("cells", None), "official": ("official", "code_qp")}
STYLED |= {name: (name, "code") for name in COMPARE_STYLE}
"""GeoPackage layer → (style of :data:`STYLE` or :data:`COMPARE_STYLE`, label field)."""


def layer_styles(layers: dict[str, str], date: str) -> pd.DataFrame:
    """The ``layer_styles`` rows for the styled layers among ``layers`` (one default style each).

    ``layers`` maps each layer of the file to its geometry column: QGIS finds a layer's default
    style by table name *and* geometry column, so the row must name the column the file has.
    """
    rows = []
    for name, geometry_column in layers.items():
        if name not in STYLED:
            continue
        kind, label_field = STYLED[name]
        title = labels.LAYERS.get(kind) or labels.COMPARE_LAYERS.get(kind, name)
        style = STYLE.get(kind) or COMPARE_STYLE.get(kind, STYLE["qpv"])
        rows.append(
            {
                "f_table_catalog": "",
                "f_table_schema": "",
                "f_table_name": name,
                "f_geometry_column": geometry_column,
                "styleName": title,
                "styleQML": qml(kind, style, title, label_field),
                "styleSLD": sld(name, style),
                "useAsDefault": True,
                "description": f"carroyage : {title}",
                "owner": "",
                "ui": None,
                "update_time": f"{date}T00:00:00Z",
            }
        )
    table: pd.DataFrame = pd.DataFrame(rows, columns=list(STYLE_COLUMNS))
    return table

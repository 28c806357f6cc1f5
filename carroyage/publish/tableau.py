"""Write the tableau de bord: CSV (with its manifest beside it), HTML in French, XLSX.

The CSV keeps the English column names and ``.`` decimals of :func:`carroyage.around.indicators.tableau`;
the HTML page (one section per zone, its reference territories beside it) and the workbook are in
French. Every file is written under a temporary name and moved into place when complete, and two
runs on the same inputs give the same bytes (the manifest's date is the day or ``SOURCE_DATE_EPOCH``).
"""

from __future__ import annotations

import html
import importlib.util
import io
import json
import re
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import labels
from ..errors import OutputError
from ..files import atomic_path

Manifest = dict[str, object]
SHOWN = (
    "residents",
    "households",
    "one_person_share",
    "large_household_share",
    "single_parent_share",
    "owner_share",
    "collective_share",
    "mean_living_standard",
    "household_poverty_rate",
    "low_income_share",
    *(
        f"age_{group}_share"
        for group in ("0_3", "4_5", "6_10", "11_17", "18_24", "25_39", "40_54", "55_64", "65_79", "80p")
    ),
    "age_unknown_share",
    "imputed_share",
    "grid_coverage",
)
INSEE_ROWS = ("insee_population", "population_ratio", "insee_poverty_rate", "poverty_ratio")
UNIT_OF = {
    "residents": "count",
    "households": "count",
    "mean_living_standard": "euros",
    "insee_population": "count",
    "insee_households": "count",
    "population_ratio": "ratio",
    "poverty_ratio": "ratio",
}
XLSX_FORMATS = {"count": "#,##0", "share": "0.0%", "euros": '#,##0" €"', "ratio": "0.00"}


def unit(name: str) -> str:
    """How an indicator reads: ``count``, ``share``, ``euros`` or ``ratio``."""
    return UNIT_OF.get(name, "share")


def french(value: object, kind: str) -> str:
    """A figure in French (``11 274``, ``47,3 %``, ``19 234 €``, ``0,77``; ``n.d.`` if missing).

    >>> french(11274.4, "count"), french(0.473, "share"), french(float("nan"), "ratio")
    ('11\u202f274', '47,3\u202f%', 'n.d.')
    """
    number = float(value) if isinstance(value, (int, float, np.number)) else float("nan")
    formats: dict[str, Callable[[float], str]] = {
        "count": labels.integer,
        "share": labels.percent,
        "euros": labels.euros,
        "ratio": labels.decimal,
    }
    return formats[kind](number)


def manifest_json(manifest: Manifest) -> str:
    """The manifest as JSON, keys sorted, non-JSON values as text."""
    return json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True, default=str)


# -- CSV ---------------------------------------------------------------------------------------


def write_csv(table: pd.DataFrame, path: Path, manifest: Manifest) -> list[Path]:
    """One row per territory, English column names, ``.`` decimals, UTF-8; ``PATH.manifest.json`` beside it."""
    beside = path.with_name(path.name + ".manifest.json")
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False, encoding="utf-8", lineterminator="\n", na_rep="")
    with atomic_path(beside) as temporary:
        temporary.write_text(manifest_json(manifest) + "\n", encoding="utf-8")
    return [path, beside]


# -- HTML --------------------------------------------------------------------------------------

STYLE = """
:root { --ink: #1d2733; --muted: #5b6773; --rule: #d5dbe1; --band: #f3f5f7; --warn: #9a4a00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1180px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0 0 6px; }
.meta, .note { color: var(--muted); }
.note { border-left: 3px solid var(--rule); padding: 4px 12px; margin: 12px 0 20px; }
nav ul { columns: 3; padding-left: 18px; margin: 4px 0 20px; }
section { margin: 0 0 28px; padding-top: 8px; border-top: 2px solid var(--ink); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; table-layout: fixed; }
thead tr:first-child th:first-child { width: 28%; }
th.method { width: 15%; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--rule); vertical-align: top; }
thead th { text-align: right; background: var(--band); font-weight: 600; }
thead tr:first-child th:first-child, tbody th { text-align: left; font-weight: normal; }
td { text-align: right; }
td.method { text-align: left; color: var(--muted); font-size: 0.85em; }
thead th[colspan] { text-align: center; }
tr.insee th, tr.insee td { background: #fbfaf4; }
col.zone, td.zone { font-weight: 600; }
.badge { display: inline-block; color: #fff; background: var(--warn); border-radius: 3px;
         padding: 1px 8px; font-size: 12px; margin-left: 8px; vertical-align: middle; }
section.fragile td.zone { color: var(--warn); font-style: italic; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  nav { display: none; }
  section { break-inside: avoid; page-break-inside: avoid; }
  thead th, tr.insee td, tr.insee th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def section_id(zone_type: str, code: str, taken: set[str]) -> str:
    """A safe, unique anchor for a zone's section (``qpv-QN08003M``): what a map's popup links to."""
    base = re.sub(r"[^A-Za-z0-9_-]", "_", f"{zone_type}-{code}") or "zone"
    anchor, n = base, 2
    while anchor in taken:
        anchor, n = f"{base}-{n}", n + 1
    taken.add(anchor)
    return anchor


def write_html(table: pd.DataFrame, path: Path, manifest: Manifest, vintages: Sequence[str]) -> Path:
    """The tableau as one self-contained, printable French page (no external asset)."""
    with atomic_path(path) as temporary:
        temporary.write_text(render_html(table, manifest, vintages), encoding="utf-8")
    return path


def render_html(table: pd.DataFrame, manifest: Manifest, vintages: Sequence[str]) -> str:
    """The page's text: a summary, one section per zone, the reference territories, the manifest."""
    rows = table.reset_index(drop=True)
    zones = rows[rows["kind"] == "zone"]
    references = rows[rows["kind"] != "zone"]
    taken: set[str] = set()
    anchors = [section_id(str(z.zone_type), str(z.code), taken) for z in zones.itertuples()]
    sections = [_zone_section(rows, i, anchor, vintages) for i, anchor in zip(zones.index, anchors, strict=True)]
    contents = "".join(
        f'<li><a href="#{a}">{_e(str(z.code))} {_e(str(z.name))}</a></li>'
        for a, z in zip(anchors, zones.itertuples(), strict=True)
    )
    body = [
        f"<header><h1>{_e(labels.TABLEAU_TITLE)}</h1>{_meta(manifest)}</header>",
        f'<p class="note">{_e(labels.TABLEAU_NOTE)}</p>',
        f"<nav><strong>{_e(labels.CONTENTS)}</strong><ul>{contents}</ul></nav>",
        *sections,
        _reference_section(rows, list(references.index), vintages),
        '<script type="application/json" id="manifest">'
        + manifest_json(manifest).replace("<", "\\u003c")
        + "</script>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="fr">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(labels.TABLEAU_TITLE)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _meta(manifest: Manifest) -> str:
    grids = manifest.get("grids")
    lines = []
    for grid in grids if isinstance(grids, list) else []:
        vintage = str(grid.get("vintage", ""))
        source = grid.get("input")
        path = str(source.get("path", "")) if isinstance(source, dict) else ""
        lines.append(labels.GRID_LINE.format(vintage=vintage, path=path))
        if grid.get("threshold") is not None:
            lines.append(labels.THRESHOLD_LINE.format(vintage=vintage, value=labels.integer(float(grid["threshold"]))))
    lines.append(f"{manifest.get('date', '')}")
    return '<p class="meta">' + " · ".join(_e(line) for line in lines) + "</p>"


def _title(row: pd.Series) -> str:
    kind = str(row["kind"])
    if kind == "zone":
        zone_type = labels.ZONE_TYPES.get(str(row["zone_type"]), labels.ZONE_TYPE_OTHER)
        return f"{zone_type} {row['code']} {row['name']}".strip()
    if kind == "commune":
        return f"{row['name']} ({row['code']})" if row["name"] else str(row["code"])
    return labels.TERRITORY_KINDS.get(kind, kind)


def _columns(rows: pd.DataFrame, zone: int) -> list[int]:
    """The zone, then its communes, the EPCI and the grid (row positions)."""
    communes = [c for c in str(rows.at[zone, "communes"]).split(";") if c]
    kind, code = rows["kind"], rows["code"].astype(str)
    picked = [*np.flatnonzero((kind == "commune") & code.isin(communes)), *np.flatnonzero(kind.isin(["epci", "grid"]))]
    return [zone, *(int(i) for i in picked)]


def _zone_section(rows: pd.DataFrame, zone: int, anchor: str, vintages: Sequence[str]) -> str:
    row = rows.loc[zone]
    reasons = [labels.FRAGILE_REASONS.get(r, r) for r in _fragile_reasons(row, vintages)]
    badge = f'<span class="badge">{_e(labels.FRAGILE)} : {_e(", ".join(reasons))}</span>' if reasons else ""
    fragile = " fragile" if reasons else ""
    heading = f"<h2>{_e(_title(row))}{badge}</h2>"
    return (
        f'<section class="zone{fragile}" id="{_e(anchor)}" data-code="{_e(str(row["code"]))}">{heading}'
        + _table(rows, _columns(rows, zone), vintages, with_method=True)
        + "</section>"
    )


def _fragile_reasons(row: pd.Series, vintages: Sequence[str]) -> list[str]:
    keys = ["fragile_reason"] if len(vintages) == 1 else [f"fragile_reason_{v}" for v in vintages]
    found = [part for key in keys for part in str(row.get(key, "") or "").split(";") if part and part != "nan"]
    return list(dict.fromkeys(found))


def _reference_section(rows: pd.DataFrame, columns: list[int], vintages: Sequence[str]) -> str:
    if not columns:
        return ""
    return (
        f'<section class="references" id="references"><h2>{_e(labels.REFERENCES_TITLE)}</h2>'
        + _table(rows, columns, vintages, with_method=False)
        + "</section>"
    )


def _table(rows: pd.DataFrame, columns: list[int], vintages: Sequence[str], with_method: bool) -> str:
    """Indicators down, territories across (each vintage under its territory; the zone's change after it)."""
    several = len(vintages) > 1
    suffixes = [f"_{v}" for v in vintages] if several else [""]
    change = several and str(rows.at[columns[0], "kind"]) == "zone"
    head = _head(rows, columns, vintages, with_method, change)
    body = [
        _indicator_row(rows, columns, name, suffixes, with_method, change)
        for name in SHOWN
        if any(_present(rows, name + s) for s in suffixes)
    ]
    body += [
        _indicator_row(rows, columns, name, suffixes, with_method, change, insee=True)
        for name in INSEE_ROWS
        if any(_present(rows.loc[columns], name + s) for s in [*suffixes, ""])
    ]
    return f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>"


def _head(rows: pd.DataFrame, columns: list[int], vintages: Sequence[str], with_method: bool, change: bool) -> str:
    several = len(vintages) > 1
    span = ' rowspan="2"' if several else ""
    top = [f"<th{span}>{_e(labels.INDICATOR_HEADER)}</th>"]
    for position, i in enumerate(columns):
        width = len(vintages) + (1 if change and position == 0 else 0) if several else 1
        top.append(
            f'<th colspan="{width}">{_e(_short(rows.loc[i]))}</th>'
            if several
            else f"<th>{_e(_short(rows.loc[i]))}</th>"
        )
    if with_method:
        top.append(f'<th class="method"{span}>{_e(labels.METHOD_HEADER)}</th>')
    if not several:
        return f"<tr>{''.join(top)}</tr>"
    second = []
    for position, _ in enumerate(columns):
        second += [f"<th>{_e(v)}</th>" for v in vintages]
        if change and position == 0:
            second.append(f"<th>{_e(labels.CHANGE)}</th>")
    return f"<tr>{''.join(top)}</tr><tr>{''.join(second)}</tr>"


def _short(row: pd.Series) -> str:
    """A territory's column heading: the zone's name (or code), the commune's name, a short label."""
    kind = str(row["kind"])
    if kind in ("zone", "commune"):
        return str(row["name"] or row["code"])
    return labels.TERRITORY_SHORT.get(kind, kind)


def _present(rows: pd.DataFrame, column: str) -> bool:
    return column in rows and bool(rows[column].notna().any())


def _value(rows: pd.DataFrame, i: int, column: str) -> float:
    value = rows.at[i, column] if column in rows else float("nan")
    return float(value) if isinstance(value, (int, float, np.number)) else float("nan")


def _indicator_row(
    rows: pd.DataFrame,
    columns: list[int],
    name: str,
    suffixes: list[str],
    with_method: bool,
    change: bool,
    insee: bool = False,
) -> str:
    kind = unit(name)
    per_vintage = not insee or name.endswith("ratio")
    cells = [f"<th>{_e(labels.INDICATOR_LABELS.get(name, name))}</th>"]
    zone_first = str(rows.at[columns[0], "kind"]) == "zone"
    for position, i in enumerate(columns):
        css = ' class="zone"' if position == 0 and zone_first else ""
        for suffix in suffixes:
            cells.append(f"<td{css}>{_e(french(_value(rows, i, name + suffix if per_vintage else name), kind))}</td>")
        if change and position == 0:
            shown = f"{name}_change" in rows
            text = labels.signed(_value(rows, i, f"{name}_change"), kind) if shown else ""
            cells.append(f"<td>{_e(text)}</td>")
    if with_method:
        cells.append(f'<td class="method">{_e(_method(rows.loc[columns[0]], name, suffixes[-1], insee))}</td>')
    opening = '<tr class="insee">' if insee else "<tr>"
    return opening + "".join(cells) + "</tr>"


def _method(row: pd.Series, name: str, suffix: str, insee: bool) -> str:
    if name == "grid_coverage":
        return ""
    if insee:
        return labels.METHODS["insee"] if not name.endswith("ratio") else ""
    if name == "low_income_share":
        return labels.METHODS.get(str(row.get("low_income_method" + suffix, "")), "")
    return labels.METHODS.get(str(row.get("method" + suffix, "")), "")


# -- XLSX --------------------------------------------------------------------------------------


def require_openpyxl(path: Path) -> None:
    """Fail at once, in one line, when ``--xlsx`` is asked for and openpyxl is missing."""
    if importlib.util.find_spec("openpyxl") is None:
        raise OutputError(f"{path} : openpyxl est nécessaire pour écrire un classeur .xlsx (pip install openpyxl)")


def write_xlsx(table: pd.DataFrame, path: Path, manifest: Manifest) -> Path:
    """A workbook: the tableau (French headers, number formats) and the manifest, byte-reproducible."""
    require_openpyxl(path)
    from openpyxl import Workbook  # type: ignore[import-untyped, unused-ignore]

    book = Workbook()
    sheet = book.active
    sheet.title = "Tableau"
    sheet.append([_column_label(column) for column in table.columns])
    for record in _french_words(table).itertuples(index=False):
        sheet.append([_cell_value(value) for value in record])
    for position, column in enumerate(table.columns, start=1):
        style = XLSX_FORMATS.get(_xlsx_unit(column))
        if style:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=position, max_col=position):
                cell.number_format = style
    sheet.freeze_panes = "E2"
    notes = book.create_sheet(labels.MANIFEST_TITLE)
    for key, value in sorted(manifest.items()):
        notes.append([key, json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)])
    _pin_dates(book, str(manifest.get("date", "1980-01-01")))
    buffer = io.BytesIO()
    book.save(buffer)
    with atomic_path(path) as temporary:
        temporary.write_bytes(_stable_zip(buffer.getvalue()))
    return path


def _french_words(table: pd.DataFrame) -> pd.DataFrame:
    """The table's words in French (territory kind, zone type, method, fragile reason), as the page says them."""
    words = {
        "kind": labels.TERRITORY_KINDS,
        "zone_type": labels.ZONE_TYPES,
        "method": labels.METHODS,
        "low_income_method": labels.METHODS,
        "fragile_reason": labels.FRAGILE_REASONS,
    }
    shown: pd.DataFrame = table.copy()
    for column in table.columns:
        french_of = words.get(_split(column)[0])
        if french_of is None:
            continue
        text = table[column].fillna("").astype(str)
        for word, french in french_of.items():  # a few words, each replaced in the whole column at once
            text = text.str.replace(rf"(?<![^;]){re.escape(word)}(?![^;])", french, regex=True)
        shown[column] = text.str.replace(";", ", ", regex=False)
    return shown


def _column_label(column: str) -> str:
    base, _, vintage = _split(column)
    label = labels.INDICATOR_LABELS.get(base) or labels.TABLEAU_COLUMNS.get(base, base)
    if vintage == "change":
        return f"{labels.CHANGE} : {label}"
    return f"{label} {vintage}".strip()


def _split(column: str) -> tuple[str, str, str]:
    match = re.match(r"^(.*)_((?:19|20)\d\d|grid\d+|change)$", column)
    return (match[1], "_", match[2]) if match else (column, "", "")


def _xlsx_unit(column: str) -> str:
    base = _split(column)[0]
    if base in labels.INDICATOR_LABELS:
        return unit(base)
    return ""


def _cell_value(value: object) -> object:
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return None if value is None else str(value)


def _pin_dates(book: object, date: str) -> None:
    import datetime as dt

    when = dt.datetime.fromisoformat(date[:10]) if re.match(r"^\d{4}-\d\d-\d\d", date) else dt.datetime(1980, 1, 1)
    properties = book.properties  # type: ignore[attr-defined]
    properties.created = properties.modified = when
    properties.creator = "carroyage"


def _stable_zip(data: bytes) -> bytes:
    """The same archive with no clock in it: members' timestamps fixed, ``modified`` set to ``created``.

    (openpyxl stamps the save time on both; the manifest's date is the only date kept.)
    """
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            content = source.read(member.filename)
            if member.filename == "docProps/core.xml":
                created = re.search(rb"<dcterms:created[^>]*>([^<]*)<", content)
                if created:
                    content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*<", rb"\g<1>" + created[1] + b"<", content)
            info = zipfile.ZipInfo(member.filename, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, content)
    return out.getvalue()

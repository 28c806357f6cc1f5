"""Vendored web assets (Leaflet and the DSFR, from their npm packages; licences beside them).

Both the published maps and the address page inline them, so that they draw with no CDN: the
address page is one self-contained HTML string, Marianne fonts and DSFR icons as data URIs.
"""

from __future__ import annotations

import base64
import re
from importlib import resources

LEAFLET_VERSION = "1.9.4"
DSFR_VERSION = "1.15.3"
DSFR_CSS = ("core", "skiplink", "header", "footer", "button", "link", "form", "input", "checkbox", "badge")
"""The DSFR style sheets the address page needs, in the order the DSFR documents."""
LEAFLET_CDN = f"https://cdn.jsdelivr.net/npm/leaflet@{LEAFLET_VERSION}/dist"


def leaflet_assets() -> tuple[str, str]:
    """The shipped Leaflet JavaScript and CSS, the CSS's images turned into data URIs."""
    folder = resources.files("carroyage") / "assets" / "leaflet"
    script = (folder / "leaflet.js").read_text(encoding="utf-8")
    css = (folder / "leaflet.css").read_text(encoding="utf-8")

    def data_uri(match: re.Match[str]) -> str:
        image = (folder / "images" / match.group(1)).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(image).decode('ascii')})"

    return script, re.sub(r"url\(images/([\w-]+\.png)\)", data_uri, css)


def inline_leaflet(page: str) -> str:
    """Replace the Leaflet CDN tags of a page by the shipped copy, inline."""
    script, css = leaflet_assets()
    script_tag = re.compile(r'<script src="[^"]*leaflet(?:@[\d.]+)?/dist/leaflet\.js"></script>')
    css_tag = re.compile(r'<link rel="stylesheet" href="[^"]*leaflet(?:@[\d.]+)?/dist/leaflet\.css"\s*/?>')
    if not script_tag.search(page) or not css_tag.search(page):
        raise ValueError("no Leaflet tags to inline: the page template changed")
    page = script_tag.sub(lambda _: f"<script>{script}</script>", page, count=1)
    return css_tag.sub(lambda _: f"<style>{css}</style>", page, count=1)


def dsfr_css() -> str:
    """The DSFR style sheets the page needs, one string, fonts and icons inlined.

    Only Marianne Regular, Medium and Bold (WOFF2) are shipped: the ``@font-face`` rules of the
    other weights and of Spectral are dropped, and so is every other font or icon URL, so the page
    never asks the network (or the server) for a file.
    """
    folder = resources.files("carroyage") / "assets" / "dsfr"
    fonts = {entry.name for entry in (folder / "fonts").iterdir()}
    icons = {entry.name for entry in (folder / "icons" / "system").iterdir()}

    def font_face(match: re.Match[str]) -> str:
        rule = match.group(0)
        shipped = [name for name in re.findall(r"url\(\.\./fonts/([\w-]+\.woff2)\)", rule) if name in fonts]
        if not shipped:
            return ""
        data = base64.b64encode((folder / "fonts" / shipped[0]).read_bytes()).decode("ascii")
        source = f'src:url(data:font/woff2;base64,{data}) format("woff2")'
        return re.sub(r"src:[^;}]*", source, rule, count=1)

    def icon(match: re.Match[str]) -> str:
        group, name = match.group(1), match.group(2)
        if group != "system" or name not in icons:
            return "none"
        data = base64.b64encode((folder / "icons" / "system" / name).read_bytes()).decode("ascii")
        return f"url(data:image/svg+xml;base64,{data})"

    sheets = []
    for name in DSFR_CSS:
        css = (folder / "css" / f"{name}.min.css").read_text(encoding="utf-8")
        css = re.sub(r"/\*#\s*sourceMappingURL=[^*]*\*/", "", css)
        css = re.sub(r"@font-face\{[^}]*\}", font_face, css)
        sheets.append(re.sub(r"url\((?:\.\./)+icons/([\w-]+)/([\w-]+\.svg)\)", icon, css))
    return "\n".join(sheets)

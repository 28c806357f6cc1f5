"""Vendored web assets (Leaflet, from the npm package; licence beside it) and how pages use them.

Both the published maps and the address page inline them, so that they draw with no CDN.
"""

from __future__ import annotations

import base64
import re
from importlib import resources

LEAFLET_VERSION = "1.9.4"
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

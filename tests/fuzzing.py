"""Hostile inputs for every reader and command, shared by the bounded test and the long benchmark.

Each strategy draws a file a user could hand to carroyage: a Filosofi grid with damaged cells,
headers or encodings, a beneficiaries file with broken quotes and lines, odd option values. A
command given any of them must either succeed or print one ``carroyage : erreur :`` line and exit 2:
no traceback, no other exception, no half-written output.
"""

from __future__ import annotations

import io
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from carroyage.engine.grid import format_ids

X0, Y0 = 3_763_200, 2_999_000
GRID_COLUMNS = ["idcar_200m", "i_est_200", "ind", "men", "men_pauv", "ind_snv"]
HOSTILE_NUMBERS = [
    "inf", "-inf", "nan", "1e308", "-1", "0", "", " ", "1,5", "1 000", "0x10", "١٢", "12abc", "NULL", "\x00", "é",
]  # fmt: skip
HOSTILE_IDS = [
    "CRS4326RES200mN2999000E3763200", "CRS3035RES0mN2999000E3763200", "CRS3035RES200mN2999050E3763200",
    "CRS3035RES200mN-2999000E3763200", "", "x", "CRS3035RES200mN29990000000000000000E3763200",
]  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One drawn input: bytes of a file and the command-line options to run it with."""

    content: bytes
    options: tuple[str, ...]

    def write(self, folder: Path, name: str) -> Path:
        path = folder / name
        path.write_bytes(self.content)
        return path


def _base_grid(size: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols, rows = np.meshgrid(np.arange(size), np.arange(size))
    cols, rows = cols.ravel(), rows.ravel()
    ind = rng.integers(1, 400, cols.size).astype(float)
    men = np.maximum(1.0, np.round(ind / rng.uniform(1.5, 3.0, cols.size)))
    return pd.DataFrame(
        {
            "idcar_200m": format_ids(X0 + cols * 200, Y0 + rows * 200, 200),
            "i_est_200": (rng.random(cols.size) < 0.3).astype(int),
            "ind": ind,
            "men": men,
            "men_pauv": np.round(men * rng.uniform(0, 0.7, cols.size)),
            "ind_snv": ind * rng.uniform(9_000, 35_000, cols.size),
        }
    )


@st.composite
def grid_files(draw: st.DrawFn) -> Case:
    """A Filosofi-like CSV grid, then a few mutations of its cells, header, bytes or options."""
    frame = _base_grid(draw(st.integers(1, 12)), draw(st.integers(0, 2**16))).astype(object)
    for _ in range(draw(st.integers(0, 3))):
        row = draw(st.integers(0, len(frame) - 1))
        column = draw(st.sampled_from(GRID_COLUMNS))
        pool = HOSTILE_IDS if column == "idcar_200m" else HOSTILE_NUMBERS
        frame.iat[row, GRID_COLUMNS.index(column)] = draw(st.sampled_from(pool) | st.text(max_size=8))
    if draw(st.booleans()):
        frame = pd.concat([frame, frame.iloc[[0]]])  # a duplicated cell
    header_change = draw(st.sampled_from(["none", "spaces", "duplicate", "drop", "upper", "bom"]))
    if header_change == "spaces":
        frame.columns = [f" {c} " for c in frame.columns]
    elif header_change == "duplicate":
        frame.columns = [*frame.columns[:-1], frame.columns[2]]
    elif header_change == "drop":
        frame = frame.drop(columns=draw(st.sampled_from(GRID_COLUMNS)))
    elif header_change == "upper":
        frame.columns = [c.upper() for c in frame.columns]
    text = frame.to_csv(index=False, sep=draw(st.sampled_from([",", ";"])))
    if header_change == "bom":
        text = "\ufeff" + text
    content = text.encode(draw(st.sampled_from(["utf-8", "latin-1", "utf-16"])), errors="replace")
    content = _damage(draw, content)
    median = draw(st.sampled_from(["22040", "0", "-5", "2204", "1e9", "nan", "abc", "22 040"]))
    return Case(content, ("--national-median", median, *draw(_grid_options())))


def _grid_options() -> st.SearchStrategy[tuple[str, ...]]:
    values = {
        "--gap-fill": ["0", "4", "-1", "1000000", "abc"],
        "--min-population": ["1000", "0", "-1", "1e12"],
        "--contiguity": ["rook", "queen", "king"],
        "--threshold-fraction": ["0.6", "0", "-1", "2", "nan"],
    }
    picked = st.lists(st.sampled_from(sorted(values)), max_size=2, unique=True)
    return picked.flatmap(lambda names: st.tuples(*[st.sampled_from(values[n]) for n in names]).map(
        lambda chosen: tuple(x for name, value in zip(names, chosen) for x in (name, value))
    ))  # fmt: skip


def _damage(draw: st.DrawFn, content: bytes) -> bytes:
    kind = draw(st.sampled_from(["none", "none", "truncate", "cr-only", "nul", "quote", "empty"]))
    if kind == "truncate" and content:
        return content[: draw(st.integers(0, len(content) - 1))]
    if kind == "cr-only":
        return content.replace(b"\n", b"\r")
    if kind == "nul":
        return content[:20] + b"\x00" + content[20:]
    if kind == "quote":
        return content.replace(b",", b',"', 1)
    if kind == "empty":
        return b""
    return content


@st.composite
def address_files(draw: st.DrawFn) -> Case:
    """A beneficiaries CSV with coordinates and addresses, then broken quotes, lines, values."""
    rows = draw(st.integers(1, 30))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    values = st.sampled_from(["2.3048", "49.9104", "", "abc", "inf", "1e308", "2,30", "-200", "49.9", "nan"])
    lines = [delimiter.join(["id", "lon", "lat", "adresse", "nom"])]
    for i in range(rows):
        lon, lat = draw(values), draw(values)
        address = draw(st.sampled_from(["8 bd du Port, Amiens", "", "=HYPERLINK(1)", "x" * 300]) | st.text(max_size=20))
        name = draw(st.text(alphabet=string.printable + "éà\"';,", max_size=10))
        lines.append(delimiter.join([str(i), lon, lat, address, name]))
    text = "\n".join(lines) + "\n"
    buffer = io.BytesIO(text.encode(draw(st.sampled_from(["utf-8", "latin-1"])), errors="replace"))
    return Case(_damage(draw, buffer.getvalue()), ())

"""The run manifest: how an output was made.

Every output carries one: stage, rule version and every parameter, the threshold and how it was
computed, input files with their sha256, estimator assumptions, software versions and the date.
The date is the day (UTC), or ``SOURCE_DATE_EPOCH`` when set, so that two runs on the same inputs
give identical files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("carroyage", "numpy", "scipy", "pandas", "shapely", "geopandas", "pyogrio", "pyproj", "rasterio", "pyarrow")


def run_date() -> str:
    """The run's date, ISO 8601 (``SOURCE_DATE_EPOCH`` wins, for reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch else dt.datetime.now(dt.timezone.utc)
    return when.date().isoformat()


def versions() -> dict[str, str]:
    """Versions of Python and the packages that shape the result."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def build_manifest(stage: str, **facts: object) -> dict[str, object]:
    """A manifest for one stage; dataclasses among ``facts`` are turned into dicts."""
    record: dict[str, object] = {"stage": stage}
    for key, value in facts.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        record[key] = value
    record["command"] = " ".join(["carroyage", *sys.argv[1:]]) if _from_cli() else None
    record["versions"] = versions()
    record["date"] = run_date()
    return record


def _from_cli() -> bool:
    return os.path.basename(sys.argv[0]) in ("carroyage", "__main__.py")


def sha256(path: str | Path) -> str:
    """Hash of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shown_path(path: str | Path) -> str:
    """A path for the manifest: relative to the working directory when inside it.

    Outputs then say ``data/grid.csv`` rather than one machine's absolute path, and the same run in
    another clone writes the same manifest.
    """
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def file_record(path: str | Path | None) -> dict[str, str | None] | None:
    """Path and sha256 of an input file, for the manifest."""
    if path is None:
        return None
    return {"path": shown_path(path), "sha256": sha256(path) if Path(path).is_file() else None}

"""Property-based: whatever file or option a user gives, a command succeeds or says one line.

A bounded profile runs here (a few hundred cases); ``benchmarks/fuzz.py`` runs the long one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from conftest import carroyage
from fuzzing import Case, address_files, grid_files
from hypothesis import HealthCheck, given, settings

from carroyage.files import TEMPORARY_TAG
from carroyage.labels import ERROR, NOTE, WARNING

BOUNDED = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def check_outcome(result, out: Path) -> None:
    """Success, or one ``carroyage : erreur :`` line, exit 2, and nothing written."""
    assert result.returncode in (0, 2), (result.returncode, result.stderr)
    if result.returncode == 2:
        lines = [line for line in result.stderr.splitlines() if not line.startswith((NOTE, WARNING, "  ["))]
        assert len(lines) == 1 and lines[0].startswith(ERROR), result.stderr
        assert not out.exists()
    assert [p for p in out.parent.iterdir() if TEMPORARY_TAG in p.name] == []


@BOUNDED
@given(grid_files())
def test_delimit_on_any_grid(case: Case) -> None:
    with tempfile.TemporaryDirectory() as folder:
        grid, out = case.write(Path(folder), "grid.csv"), Path(folder) / "out.gpkg"
        check_outcome(carroyage("delimit", grid, "--out", out, "-q", *case.options), out)


@settings(BOUNDED, max_examples=60)
@given(address_files())
def test_locate_csv_on_any_file(case: Case) -> None:
    with tempfile.TemporaryDirectory() as folder:
        source, out = case.write(Path(folder), "in.csv"), Path(folder) / "out.csv"
        check_outcome(carroyage("locate-csv", source, "--out", out, "-q"), out)

"""The long property-based profile: many hostile inputs through every reader and command.

``tests/test_fuzz.py`` runs a few hundred cases in CI; this runs as many as asked (10,000 by
default, split between grids for ``delimit`` and beneficiary files for ``locate-csv``) and prints how
many ran, how each ended, and whether any exception other than a one-line ``CarroyageError``
escaped. Each case runs the real command in this process (the CLI's own entry point), like the
test. Usage::

    python benchmarks/fuzz.py [--cases 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import carroyage  # noqa: E402
from fuzzing import Case, address_files, grid_files  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from carroyage.labels import ERROR, NOTE, WARNING  # noqa: E402


def outcome(result: object, out: Path) -> str:
    """``ok``, ``refused`` (one error line, exit 2, nothing written) or what went wrong."""
    code, stderr = result.returncode, result.stderr  # type: ignore[attr-defined]
    if code == 0:
        return "ok"
    lines = [line for line in stderr.splitlines() if not line.startswith((NOTE, WARNING, "  ["))]
    if code == 2 and len(lines) == 1 and lines[0].startswith(ERROR) and not out.exists():
        return "refused"
    return f"BAD exit {code}: {stderr.strip()[:200]!r}"


def run(cases: int, chosen_seed: int) -> collections.Counter[str]:
    tally: collections.Counter[str] = collections.Counter()
    escaped: list[str] = []
    # phases without shrinking: a failing case is counted and the run goes on, not minimised
    profile = settings(
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.generate],
    )

    def one(command: str, case: Case, name: str, kind: str) -> None:
        with tempfile.TemporaryDirectory() as folder:
            source = case.write(Path(folder), name)
            out = Path(folder) / ("out.gpkg" if command == "delimit" else "out.csv")
            try:
                result = carroyage(command, source, "--out", out, "-q", *case.options)
            except BaseException as exc:  # what the property forbids: count it, keep going
                escaped.append("".join(traceback.format_exception_only(exc)).strip())
                tally[f"{kind}: ESCAPED {type(exc).__name__}"] += 1
                return
            tally[f"{kind}: {outcome(result, out)}"] += 1

    @seed(chosen_seed)
    @settings(profile, max_examples=cases // 2)
    @given(grid_files())
    def grids(case: Case) -> None:
        one("delimit", case, "grid.csv", "delimit")

    @seed(chosen_seed)
    @settings(profile, max_examples=cases - cases // 2)
    @given(address_files())
    def files(case: Case) -> None:
        one("locate-csv", case, "in.csv", "locate-csv")

    grids()
    files()
    for line in sorted(set(escaped))[:20]:
        print("  escaped:", line)
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    tally = run(args.cases, args.seed)
    total = sum(tally.values())
    print(f"{total:,} cases in {time.perf_counter() - start:,.0f} s")
    for name, count in sorted(tally.items()):
        print(f"  {name:70} {count:7,}")
    bad = sum(count for name, count in tally.items() if "BAD" in name or "ESCAPED" in name)
    print(f"no exception other than a one-line CarroyageError escaped: {'yes' if bad == 0 else f'NO ({bad} cases)'}")


if __name__ == "__main__":
    main()

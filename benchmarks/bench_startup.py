"""Start-up benchmark: how long the ``carroyage`` command takes to answer when it has little to do.

Times, as whole processes, over ``--runs`` runs each (default 20, after one warm-up run each, the
commands in turn so that a drift of the machine's speed touches them all alike):

* the baselines, measured in the same run: ``python -c pass`` (the interpreter alone) and
  ``python -c "import typer"`` (the CLI framework alone);
* ``carroyage --help`` and ``carroyage delimit --help``;
* a bad argument, ``carroyage delimit missing.csv --out x.gpkg``: it must exit 2 with one line on
  stderr;
* ``carroyage locate`` without an address: it must exit 2 before the national QPV layer is loaded
  (that load alone takes seconds).

Each command runs as ``python -m carroyage`` with this interpreter (``carroyage`` the console script
does the same import), in an empty temporary folder, under the launcher of ``measure.py`` (wall
time from spawn to reaped, and the process's own peak memory: a command that imported geopandas
shows ~150 MB more). It prints min / median / max, the median over ``python -c pass``, and whether
the targets are met: < 0.5 s median for ``--help`` and the bad argument, < 1 s for ``locate``::

    python benchmarks/bench_startup.py [--runs 20] [--warmup 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure  # noqa: E402

PY = sys.executable
CARROYAGE = [PY, "-m", "carroyage"]


@dataclass
class Case:
    name: str
    command: list[str]
    exit: int = 0  # the exit code it must return
    one_line: bool = False  # an error: exactly one line on stderr
    target: float | None = None  # seconds, median
    walls: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)


def cases() -> list[Case]:
    return [
        Case("python -c pass", [PY, "-c", "pass"]),
        Case('python -c "import typer"', [PY, "-c", "import typer"]),
        Case("carroyage --help", [*CARROYAGE, "--help"], target=0.5),
        Case("carroyage delimit --help", [*CARROYAGE, "delimit", "--help"], target=0.5),
        Case(
            "carroyage delimit missing.csv --out x.gpkg",
            [*CARROYAGE, "delimit", "missing.csv", "--out", "x.gpkg"],
            exit=2,
            one_line=True,
            target=0.5,
        ),
        Case("carroyage locate (no argument)", [*CARROYAGE, "locate"], exit=2, one_line=True, target=1.0),
    ]


def measure_all(runs: int, warmup: int = 1) -> list[Case]:
    todo = cases()
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(warmup + runs):  # the first rounds are not counted
            for case in todo:
                run = measure.run(case.command, timeout=60, cwd=folder, check=False)
                if round_ < warmup:
                    continue
                case.walls.append(run.wall)
                case.peaks.append(run.peak_mb)
                lines = run.stderr.strip().splitlines()
                if run.exit != case.exit:
                    case.faults.append(f"exit {run.exit}, expected {case.exit}: {run.stderr.strip()[-300:]}")
                elif case.one_line and len(lines) != 1:
                    case.faults.append(f"{len(lines)} lines on stderr, expected 1: {lines}")
    return todo


def report(todo: list[Case]) -> None:
    python = statistics.median(todo[0].walls)
    runs = len(todo[0].walls)
    print(f"{'command':44} {'min':>6} {'median':>7} {'max':>6} {'-python':>8} {'peak MB':>8}   (seconds, {runs} runs)")
    for case in todo:
        median = statistics.median(case.walls)
        verdict = ""
        if case.target is not None:
            verdict = f"target < {case.target:g} s: {'met' if median < case.target else 'NOT met'}"
        print(
            f"{case.name:44} {min(case.walls):6.3f} {median:7.3f} {max(case.walls):6.3f} {median - python:8.3f} "
            f"{statistics.median(case.peaks):8.0f}   {verdict}"
        )
    for case in todo:
        if case.exit or case.one_line:
            state = f"exit {case.exit}, one line on stderr" if case.one_line else f"exit {case.exit}"
            print(f"{case.name}: {state}: " + ("yes" if not case.faults else f"NO ({len(case.faults)} runs)"))
        for fault in sorted(set(case.faults))[:3]:
            print(f"  {fault}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="counted runs of each command")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted runs of each command first")
    args = parser.parse_args()
    report(measure_all(max(1, args.runs), max(0, args.warmup)))


if __name__ == "__main__":
    main()

"""The public-grid estimator against exact truth, on synthetic households of the shipped cities.

For every city of :data:`carroyage.data.VALIDATION_CITIES` and every seed:

1. ``synthesise`` draws households consistent with the city's Filosofi 2019 grid (declared and
   disposable income, docs/households.md);
2. the **exact** geography: ``delimit_households`` on them (decree-2014, national median of
   declared income 22,040 €, which the synthetic bridge leaves unchanged at the median);
3. the **public-like** grid: the same households gridded (``filosofi_cells``, disposable income)
   with INSEE's secrecy rule (``apply_secrecy``), written as CSV and read back with ``read_grid``;
4. the **estimate**: the default public-grid path, ``carroyage.delimit(read_grid(...),
   "decree-2014", national_median=22040)``; also on the same grid without secrecy, to separate
   what the secrecy rule costs from what the estimator does.

Printed per city: quartiers and residents of both, recall (share of the exact quartiers' residents
that the estimate puts in a quartier), precision (share of the estimate's residents that are in an
exact quartier), and cell agreement (share of cells with the same in/out answer)::

    python benchmarks/estimator.py [--seeds 3] [--work benchmarks/work]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from carroyage import delimit, read_grid
from carroyage.data import VALIDATION_CITIES
from carroyage.engine.households import (
    apply_secrecy,
    delimit_households,
    filosofi_cells,
    grid_households,
    households_from_arrays,
)
from carroyage.engine.synth import synthesise

NATIONAL_MEDIAN = 22_040


def in_quartier(cells: pd.DataFrame) -> pd.Series:
    """Residents of each cell and whether it is in a quartier, by cell id."""
    return pd.Series(cells["qpv"].astype(str).str.len().to_numpy() > 0, index=cells["idcar_200m"].to_numpy())


def agreement(exact: pd.DataFrame, estimate: pd.DataFrame) -> dict[str, float]:
    """Recall, precision (residents) and cell agreement of an estimate against the exact geography."""
    truth = in_quartier(exact)
    guess = in_quartier(estimate).reindex(truth.index, fill_value=False)
    residents = pd.Series(exact["population"].to_numpy(), index=truth.index)
    both = float(residents[truth & guess].sum())
    return {
        "exact_residents": float(residents[truth].sum()),
        "estimated_residents": float(residents[guess].sum()),
        "recall": both / float(residents[truth].sum()) if truth.any() else float("nan"),
        "precision": both / float(residents[guess].sum()) if guess.any() else float("nan"),
        "cell_agreement": float((truth == guess).mean()),
    }


def run_city(name: str, grid: Path, seed: int, work: Path) -> dict[str, object]:
    synthetic = synthesise(grid, seed).table
    h = households_from_arrays(
        synthetic.column("x").to_numpy(),
        synthetic.column("y").to_numpy(),
        synthetic.column("income_declared").to_numpy(),
        synthetic.column("persons").to_numpy(),
        uc=synthetic.column("uc").to_numpy(),
        disposable=synthetic.column("income_disposable").to_numpy(),
        source=f"{name} synthetic (seed {seed})",
    )
    gridded = grid_households(h)
    exact = delimit_households(gridded, "decree-2014", national_median=NATIONAL_MEDIAN)
    row: dict[str, object] = {"city": name, "seed": seed, "exact_quartiers": len(exact.qpv)}
    public = filosofi_cells(gridded, poverty_median=NATIONAL_MEDIAN).drop(columns=["median_income"])
    for label, table in (("secrecy", apply_secrecy(public)), ("no_secrecy", public)):
        path = work / f"{name}_{seed}_{label}.csv"
        table.to_csv(path, index=False)
        estimate = delimit(read_grid(path), "decree-2014", national_median=NATIONAL_MEDIAN)
        figures = agreement(exact.cell_table, estimate.cell_table)
        row[label] = {"quartiers": len(estimate.qpv), **figures}
        if label == "secrecy":
            row["imputed_cells"] = int(table["i_est_200"].sum())
            row["cells"] = len(table)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="Synthetic populations per city.")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="carroyage-estimator-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = [run_city(name, grid, seed, work) for name, grid in VALIDATION_CITIES.items() for seed in range(args.seeds)]
    print("the public-grid estimator (decree-2014, national median 22,040 €) against exact truth")
    print("on synthetic households; exact = delimit_households, estimate = delimit(read_grid(public grid))")
    header = (
        f"{'city':14} {'seed':>4} {'grid':10} {'cells':>6} {'imput.':>6} {'Q exact':>7} {'Q est.':>6} "
        f"{'res. exact':>10} {'res. est.':>10} {'recall':>7} {'precis.':>7} {'cells ok':>8}"
    )
    print(header)
    for row in rows:
        for label in ("secrecy", "no_secrecy"):
            f = row[label]
            assert isinstance(f, dict)
            print(
                f"{row['city']:14} {row['seed']:>4} {label:10} {row['cells']:6d} {row['imputed_cells']:6d} "
                f"{row['exact_quartiers']:7d} {f['quartiers']:6d} {f['exact_residents']:10,.0f} "
                f"{f['estimated_residents']:10,.0f} {f['recall']:7.1%} {f['precision']:7.1%} {f['cell_agreement']:8.1%}"
            )
    print("mean over seeds (secrecy grid, as published):")
    for name in VALIDATION_CITIES:
        mine = [r["secrecy"] for r in rows if r["city"] == name]
        recall = np.nanmean([m["recall"] for m in mine])  # type: ignore[index]
        precision = np.nanmean([m["precision"] for m in mine])  # type: ignore[index]
        cells = np.mean([m["cell_agreement"] for m in mine])  # type: ignore[index]
        print(f"  {name:14} recall {recall:6.1%}  precision {precision:6.1%}  cell agreement {cells:6.1%}")
    print(json.dumps(rows, default=float))


if __name__ == "__main__":
    main()

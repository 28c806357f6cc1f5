"""Concurrent first lookups on freshly loaded zones, as the service's threads make them.

Each trial loads the national QPV layer afresh (its prepared polygons not yet used) and has four
threads locate the same 400-point batches at once, in boxes of the zones. GEOS builds a prepared
geometry's indexes on first use without a lock; ``Territory.geos`` serialises those calls. With
``--no-lock`` the lock is replaced by nothing, to see what it prevents (the process may abort)::

    python benchmarks/threads_lookup.py [--trials 15] [--seed 1] [--no-lock]
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time

import numpy as np

from carroyage.address import lookup
from carroyage.data import QPV_2024

THREADS, POINTS, BATCH = 4, 4000, 400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-lock", action="store_true", help="Replace the territories' lock by nothing.")
    args = parser.parse_args()
    if args.no_lock:
        prepared = lookup._prepared

        def unlocked(*given: object) -> lookup.Territory:
            territory = prepared(*given)  # type: ignore[arg-type]
            territory.geos = contextlib.nullcontext()  # type: ignore[assignment]
            return territory

        lookup._prepared = unlocked  # type: ignore[assignment]
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    for _ in range(args.trials):
        zones = lookup.load_zones([QPV_2024])
        boxes = np.concatenate([t.lonlat_boxes for t in zones.territories])
        pick = boxes[rng.integers(0, len(boxes), POINTS)]
        lon = pick[:, 0] + rng.random(POINTS) * (pick[:, 2] - pick[:, 0])
        lat = pick[:, 1] + rng.random(POINTS) * (pick[:, 3] - pick[:, 1])
        barrier = threading.Barrier(THREADS)

        def work(
            zones: lookup.ZoneSet = zones,
            lon: np.ndarray = lon,
            lat: np.ndarray = lat,
            start: threading.Barrier = barrier,
        ) -> None:
            start.wait()
            for first in range(0, POINTS, BATCH):
                zones.locate(lon[first : first + BATCH], lat[first : first + BATCH], tolerance=5.0)

        threads = [threading.Thread(target=work) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lock = "without" if args.no_lock else "with"
    seconds = time.perf_counter() - started
    print(f"{args.trials} trials × {THREADS} threads, {lock} the lock, in {seconds:.1f} s: no crash")


if __name__ == "__main__":
    main()

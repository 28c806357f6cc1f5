"""Latency benchmark of ``carroyage serve``: p50 / p99 of the address API under concurrent clients.

Starts ``carroyage serve`` (the national 2024 QPV layer, the shipped BAN extract
``carroyage.data.BAN_FIXTURE`` for geocoding) on 127.0.0.1 at a free port, and beside it, as the
baseline measured in the same run, a trivial FastAPI app on uvicorn answering ``/ping``. Then
``--clients`` threads of this process (default 8), each with its own keep-alive connection, send
``--requests`` requests of each kind (default 480), the kinds in turn over four rounds:

* ``/ping`` of the trivial app (what uvicorn, FastAPI and httpx cost by themselves);
* ``/openapi.json`` of carroyage's app (its framework path, no zone lookup);
* ``/api/locate?lon=..&lat=..`` around Amiens Nord (the lookup);
* ``/api/locate?adresse=..``, the BAN extract's addresses (geocoding, then the lookup).

It prints p50, p99 and max latency and the errors of each kind, and the p99 of the lookups over
the baseline's. Every request has a timeout and the whole run a bound (``--budget`` seconds); the
servers are stopped at the end, whatever happens. The figure is a machine's, under its load at
that moment: quote the ratio to the baseline rather than the milliseconds::

    python benchmarks/bench_serve.py [--requests 480] [--clients 8] [--budget 180]
"""

from __future__ import annotations

import argparse
import csv
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

TARGET_P99 = 0.050  # seconds: the lookups' p99 the old unit test asked for
ROUNDS = 4
BASELINE_APP = """\
import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict:
    return {"ok": True}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@dataclass
class Kind:
    name: str
    base_url: str
    path: str
    params: list[dict[str, object]]  # cycled through
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before answering")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in time")


@contextmanager
def server(command: list[str], url: str, deadline: float) -> Iterator[None]:
    """A server process until the block ends; always stopped, its stderr shown if it failed."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(url, proc, deadline)
            yield
        except BaseException:
            log.seek(0)
            sys.stderr.write(log.read()[-2000:])
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def addresses() -> list[dict[str, object]]:
    """One query per address of the shipped BAN extract: "8 Boulevard du Port, Amiens"..."""
    from carroyage.data import BAN_FIXTURE

    with open(BAN_FIXTURE, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    return [{"adresse": f"{row['numero']}{row['rep']} {row['nom_voie']}, {row['nom_commune']}"} for row in rows]


def load(kind: Kind, requests: int, clients: int, deadline: float) -> None:
    """``requests`` requests of one kind from ``clients`` threads, each its own connection."""

    def client(seed: int) -> None:
        with httpx.Client(base_url=kind.base_url, timeout=10.0) as session:
            for i in range(seed, requests, clients):
                if time.monotonic() > deadline:
                    kind.errors.append("budget exhausted")
                    return
                params = kind.params[(i * 7) % len(kind.params)]
                start = time.perf_counter()
                try:
                    reply = session.get(kind.path, params=params)
                except httpx.HTTPError as exc:
                    kind.errors.append(type(exc).__name__)
                    continue
                kind.latencies.append(time.perf_counter() - start)
                if reply.status_code != 200:
                    kind.errors.append(f"HTTP {reply.status_code}")

    threads = [threading.Thread(target=client, args=(seed,), daemon=True) for seed in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 15)


def p(latencies: list[float], q: int) -> float:
    if len(latencies) < 2:
        return latencies[0] if latencies else float("nan")
    return statistics.quantiles(latencies, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=480, help="requests of each kind")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--budget", type=float, default=180.0, help="seconds for the whole run, start-up included")
    args = parser.parse_args()
    from carroyage.data import BAN_FIXTURE

    deadline = time.monotonic() + args.budget
    ours, base = free_port(), free_port()
    ours_url, base_url = f"http://127.0.0.1:{ours}", f"http://127.0.0.1:{base}"
    serve = [sys.executable, "-m", "carroyage", "serve", "--host", "127.0.0.1", "--port", str(ours)]
    coordinates = [{"lon": round(2.28 + 0.001 * i, 6), "lat": 49.90 + 0.0025 * (i % 9)} for i in range(40)]
    kinds = [
        Kind("baseline: trivial FastAPI app /ping", base_url, "/ping", [{}]),
        Kind("carroyage /openapi.json", ours_url, "/openapi.json", [{}]),
        Kind("carroyage /api/locate lon/lat", ours_url, "/api/locate", coordinates),
        Kind("carroyage /api/locate adresse (BAN extract)", ours_url, "/api/locate", addresses()),
    ]
    started = time.perf_counter()
    with (
        server([sys.executable, "-c", BASELINE_APP, str(base)], f"{base_url}/ping", deadline),
        server([*serve, "--ban", str(BAN_FIXTURE)], f"{ours_url}/openapi.json", deadline),
    ):
        print(f"servers up in {time.perf_counter() - started:.1f} s", flush=True)
        for kind in kinds:  # warm-up, not counted
            warm = Kind(kind.name, kind.base_url, kind.path, kind.params)
            load(warm, 2 * args.clients, args.clients, deadline)
        share = max(1, args.requests // ROUNDS)
        for round_ in range(ROUNDS):
            for kind in kinds:
                count = share if round_ < ROUNDS - 1 else max(0, args.requests - share * (ROUNDS - 1))
                load(kind, count, args.clients, deadline)
    report(kinds, args.clients)


def report(kinds: list[Kind], clients: int) -> None:
    baseline = p(kinds[0].latencies, 99)
    print(f"\n{clients} concurrent clients; latency in ms")
    print(f"{'requests':46} {'sent':>5} {'p50':>7} {'p99':>7} {'max':>7} {'errors':>6} {'p99/base':>8}")
    for kind in kinds:
        lat = kind.latencies
        print(
            f"{kind.name:46} {len(lat) + len(kind.errors):5d} {p(lat, 50) * 1e3:7.1f} {p(lat, 99) * 1e3:7.1f} "
            f"{max(lat, default=float('nan')) * 1e3:7.1f} {len(kind.errors):6d} {p(lat, 99) / baseline:8.2f}"
        )
    for kind in kinds:
        if kind.errors:
            print(f"errors, {kind.name}: " + ", ".join(sorted(set(kind.errors))))
    lookup = kinds[2].latencies
    met = p(lookup, 99) < TARGET_P99
    print(
        f"\np99 of lon/lat lookups {p(lookup, 99) * 1e3:.1f} ms, target < {TARGET_P99 * 1e3:.0f} ms: "
        f"{'met' if met else 'NOT met'} (baseline p99 {baseline * 1e3:.1f} ms)"
    )


if __name__ == "__main__":
    main()

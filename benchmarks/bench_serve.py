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
that moment: quote the ratio to the baseline rather than the milliseconds.

Only loopback is spoken to, never through a proxy (clients with ``trust_env=False``, servers with
``NO_PROXY``: CI machines may set ``HTTP_PROXY``/``ALL_PROXY`` for the package registries). The
two servers get distinct ports, and each is ready only when it answers 200 as itself (the
baseline echoes a token of this run, carroyage's ``/openapi.json`` has its title) while its
process runs; a server that could not take its port is started again on another. When requests
fail, the servers' own logs are printed with the errors::

    python benchmarks/bench_serve.py [--requests 480] [--clients 8] [--budget 180]
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from servers import LOOPBACK, free_ports, stop  # noqa: E402 (the tests' loopback helpers: ports, no proxy)
from servers import client as loopback_client  # noqa: E402

TARGET_P99 = 0.050  # seconds: the lookups' p99 the old unit test asked for
ROUNDS = 4
TOKEN = secrets.token_hex(8)
"""Echoed by this run's baseline server: an answer from any other server is not it."""
BASELINE_APP = """\
import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/ping")
async def ping() -> dict:
    return {"ok": True, "token": sys.argv[2]}


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


def is_carroyage(reply: httpx.Response) -> bool:
    return reply.json().get("info", {}).get("title", "").startswith("carroyage")


def is_baseline(reply: httpx.Response) -> bool:
    return reply.json().get("token") == TOKEN


def wait_for(url: str, proc: subprocess.Popen, deadline: float, expected) -> None:
    """Until ``url`` answers 200 with what ``expected`` recognises, ``proc`` still running."""
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerExited(f"the server exited ({proc.returncode}) before answering {url} (last: {last})")
        try:
            reply = httpx.get(url, timeout=2.0, trust_env=False)
            if reply.status_code == 200 and expected(reply) and proc.poll() is None:
                return
            last = f"HTTP {reply.status_code}, not the expected server"
        except (httpx.TransportError, ValueError) as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 as expected in time (last: {last})")


class ServerExited(RuntimeError):
    pass


@dataclass
class Running:
    """A server process started by :func:`server`: its URL, process and log."""

    url: str
    proc: subprocess.Popen
    log: object

    def log_tail(self, chars: int = 2000) -> str:
        self.log.seek(0)
        return self.log.read()[-chars:]


@contextmanager
def server(command, ready: str, expected, deadline: float, attempts: int = 3) -> Iterator[Running]:
    """A server process until the block ends; always stopped, its stderr shown if it failed.

    ``command(port)`` is the command line for a port; ``ready`` the path answering 200 once it
    is up. A server that exits before answering (its port taken meanwhile) is started again on
    another port, ``attempts`` times in all.
    """
    environment = {**os.environ, "NO_PROXY": LOOPBACK, "no_proxy": LOOPBACK}
    for attempt in range(attempts):
        port = free_ports(1)[0]
        url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryFile("w+") as log:
            proc = subprocess.Popen(command(port), stdout=subprocess.DEVNULL, stderr=log, env=environment)
            running = Running(url, proc, log)
            try:
                try:
                    wait_for(url + ready, proc, deadline, expected)
                except ServerExited:
                    if attempt == attempts - 1:
                        raise
                    continue
                yield running
                return
            except BaseException:
                sys.stderr.write(running.log_tail())
                raise
            finally:
                stop(proc)


@contextmanager
def both_servers(deadline: float) -> Iterator[tuple[Running, Running]]:
    """The trivial baseline app and ``carroyage serve`` on the shipped BAN extract, both ready."""
    from carroyage.data import BAN_FIXTURE

    serve = [sys.executable, "-m", "carroyage", "serve", "--host", "127.0.0.1", "--ban", str(BAN_FIXTURE)]
    baseline = [sys.executable, "-c", BASELINE_APP]
    with (
        server(lambda port: [*baseline, str(port), TOKEN], "/ping", is_baseline, deadline) as base,
        server(lambda port: [*serve, "--port", str(port)], "/openapi.json", is_carroyage, deadline) as ours,
    ):
        yield base, ours


def addresses() -> list[dict[str, object]]:
    """One query per address of the shipped BAN extract: "8 Boulevard du Port, Amiens"..."""
    from carroyage.data import BAN_FIXTURE

    with open(BAN_FIXTURE, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    return [{"adresse": f"{row['numero']}{row['rep']} {row['nom_voie']}, {row['nom_commune']}"} for row in rows]


def load(kind: Kind, requests: int, clients: int, deadline: float) -> None:
    """``requests`` requests of one kind from ``clients`` threads, each its own connection."""

    def client(seed: int) -> None:
        with loopback_client(kind.base_url) as session:
            for i in range(seed, requests, clients):
                if time.monotonic() > deadline:
                    kind.errors.append("budget exhausted")
                    return
                params = kind.params[(i * 7) % len(kind.params)]
                start = time.perf_counter()
                try:
                    reply = session.get(kind.path, params=params)
                except httpx.HTTPError as exc:
                    kind.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if reply.status_code != 200:
                    kind.errors.append(f"HTTP {reply.status_code}: {reply.text[:80]}")
                    continue
                kind.latencies.append(time.perf_counter() - start)

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
    deadline = time.monotonic() + args.budget
    coordinates = [{"lon": round(2.28 + 0.001 * i, 6), "lat": 49.90 + 0.0025 * (i % 9)} for i in range(40)]
    started = time.perf_counter()
    with both_servers(deadline) as (base, ours):
        print(f"servers up in {time.perf_counter() - started:.1f} s", flush=True)
        kinds = [
            Kind("baseline: trivial FastAPI app /ping", base.url, "/ping", [{}]),
            Kind("carroyage /openapi.json", ours.url, "/openapi.json", [{}]),
            Kind("carroyage /api/locate lon/lat", ours.url, "/api/locate", coordinates),
            Kind("carroyage /api/locate adresse (BAN extract)", ours.url, "/api/locate", addresses()),
        ]
        for kind in kinds:  # warm-up, not counted
            warm = Kind(kind.name, kind.base_url, kind.path, kind.params)
            load(warm, 2 * args.clients, args.clients, deadline)
        share = max(1, args.requests // ROUNDS)
        for round_ in range(ROUNDS):
            for kind in kinds:
                count = share if round_ < ROUNDS - 1 else max(0, args.requests - share * (ROUNDS - 1))
                load(kind, count, args.clients, deadline)
        report(kinds, args.clients)
        if any(kind.errors for kind in kinds):  # what the servers said about it
            for name, running in (("baseline", base), ("carroyage serve", ours)):
                alive = "running" if running.proc.poll() is None else f"exited ({running.proc.returncode})"
                print(f"\n{name} on {running.url}, {alive}; its log:\n{running.log_tail() or '(empty)'}")


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
            counts = {error: kind.errors.count(error) for error in sorted(set(kind.errors))}
            print(f"errors, {kind.name}: " + "; ".join(f"{n} × {error}" for error, n in counts.items()))
    lookup = kinds[2].latencies
    met = p(lookup, 99) < TARGET_P99
    print(
        f"\np99 of lon/lat lookups {p(lookup, 99) * 1e3:.1f} ms, target < {TARGET_P99 * 1e3:.0f} ms: "
        f"{'met' if met else 'NOT met'} (baseline p99 {baseline * 1e3:.1f} ms)"
    )


if __name__ == "__main__":
    main()

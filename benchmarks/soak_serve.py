"""Soak benchmark of ``carroyage serve``: a fixed request rate for minutes, loopback only.

Starts ``carroyage serve`` (the national 2024 QPV layer, the shipped BAN extract for geocoding)
on 127.0.0.1 as ``bench_serve.py`` does, and from this process, a second one, sends requests at a
fixed rate (``--rate``, default 200 a second, for ``--seconds``, default 120): a mix of
``/api/locate?lon=&lat=`` (positions around Amiens and across France) and
``/api/locate?adresse=`` (the BAN extract's addresses), ``--address-share`` of them addresses.

The load is open-loop: request *i* is due at *i / rate* seconds whatever the answers before it,
so a slow server is not hidden by clients waiting for it (latency is counted from when each
request was due). Beside it all along, as the baseline measured in the same run and under the
same load of the machine, a trivial FastAPI app on uvicorn gets ``--baseline-rate`` requests a
second (default 20) from the same process: a shared machine's stalls show in both.

It prints the errors by kind, p50 / p99 / max latency of each query kind and of the baseline
(with the ratio), the server process's resident memory (``VmRSS`` of ``/proc/PID/status``) at
the start and end of the load with its peak in between, and whether the rate was sustained
(the requests sent within 50 ms of their time, and the answers back, at the rate asked)::

    python benchmarks/soak_serve.py [--rate 200] [--seconds 120] [--baseline-rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import addresses, both_servers  # noqa: E402
from bench_serve import p as quantile  # noqa: E402

from carroyage.settings import KEEP_ALIVE_S  # noqa: E402

LATE_S = 0.050  # a request sent later than this after its time means the driver fell behind
TIMEOUT_S = 10.0


@dataclass
class Tally:
    """What one kind of query got: latencies from when each was due, and the errors."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Run:
    tallies: dict[str, Tally]
    sent: int = 0
    late: int = 0
    answered_by: float = 0.0  # seconds from the start until the last answer
    rss_mb: list[float] = field(default_factory=list)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (uvicorn's workers), MB."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:  # gone meanwhile
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0) / 1024
        for task in tasks:
            with contextlib.suppress(OSError):
                pending += [int(child) for child in (task / "children").read_text().split()]
    return total


def queries(count: int, address_share: float) -> list[tuple[str, dict[str, object]]]:
    """``count`` (kind, parameters) pairs, the same every run."""
    rng = random.Random(13)
    known = addresses()
    mix = []
    for _ in range(count):
        if rng.random() < address_share:
            mix.append(("adresse", rng.choice(known)))
        elif rng.random() < 0.5:  # around Amiens Nord: inside, near or across the boundaries
            mix.append(
                ("lon/lat", {"lon": round(rng.uniform(2.27, 2.33), 6), "lat": round(rng.uniform(49.89, 49.93), 6)})
            )
        else:  # anywhere in metropolitan France
            mix.append(("lon/lat", {"lon": round(rng.uniform(-4.5, 8.0), 6), "lat": round(rng.uniform(42.5, 51.0), 6)}))
    return mix


class Loopback:
    """A minimal HTTP/1.1 client on keep-alive connections to 127.0.0.1 (no proxy, ever).

    The load generator must cost far less than the server it loads: httpx's async client takes
    about 5 ms of CPU a request, as much as the server, and falls behind 200 requests a second on
    a shared machine. This one only writes a GET and reads a ``Content-Length`` answer. At most
    ``connections`` are open at once (under the server's own limit); a kept-alive connection the
    server closed meanwhile is replaced once, as browsers and httpx do.
    """

    def __init__(self, port: int, connections: int = 128, keep_alive: float = KEEP_ALIVE_S - 1) -> None:
        self.port, self.keep_alive = port, keep_alive
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(connections)

    async def connection(self, fresh: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """A kept-alive connection not idle for longer than the server keeps it (else a new one)."""
        while self.idle and not fresh:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < self.keep_alive:
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return reader, writer, False

    async def get(self, target: str) -> int:
        """The status of ``GET target`` (its body read and dropped)."""
        async with self.slots:
            for attempt in range(2):
                reader, writer, reused = await self.connection(fresh=attempt > 0)
                try:
                    writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                    await reader.readexactly(int(length[1]) if length else 0)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    writer.close()
                    if reused and not getattr(exc, "partial", b""):
                        continue  # closed by the server while idle: once more, on a new connection
                    raise
                except BaseException:
                    writer.close()
                    raise
                if re.search(rb"(?i)\r\nconnection: *close", head):
                    writer.close()
                else:
                    self.idle.append((reader, writer, time.monotonic()))
                return int(head[9:12])
        raise AssertionError("unreachable")

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()


async def both(ours: tuple, baseline: tuple) -> tuple[Run, Run]:
    """Both loads at once: (url, path, mix, rate, pid) each."""
    mine, base = await asyncio.gather(drive(*ours), drive(*baseline))
    return mine, base


async def drive(url: str, path: str, mix: list[tuple[str, dict[str, object]]], rate: float, pid: int) -> Run:
    """Send ``mix`` to ``url + path`` at ``rate`` a second, open-loop; sample the server's memory."""
    run = Run({kind: Tally(kind) for kind in dict.fromkeys(kind for kind, _ in mix)})
    client = Loopback(int(url.rsplit(":", 1)[1]))
    targets = [f"{path}?{urlencode(params)}" if params else path for _, params in mix]
    start = time.perf_counter()
    run.rss_mb.append(rss_mb(pid))

    async def one(kind: str, target: str, due: float) -> None:
        tally = run.tallies[kind]
        try:
            status = await asyncio.wait_for(client.get(target), TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
            tally.errors[type(exc).__name__] += 1
            return
        if status != 200:
            tally.errors[f"HTTP {status}"] += 1
            return
        tally.latencies.append(time.perf_counter() - due)
        run.answered_by = max(run.answered_by, time.perf_counter() - start)

    async def sample_memory() -> None:
        while True:
            await asyncio.sleep(1.0)
            run.rss_mb.append(rss_mb(pid))

    sampler = asyncio.create_task(sample_memory())
    tasks = []
    for i, ((kind, _), target) in enumerate(zip(mix, targets, strict=True)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        run.late += time.perf_counter() - due > LATE_S
        tasks.append(asyncio.create_task(one(kind, target, due)))
        run.sent += 1
    await asyncio.wait(tasks, timeout=TIMEOUT_S + 5)
    sampler.cancel()
    run.rss_mb.append(rss_mb(pid))
    client.close()
    return run


def warm_up(url: str, mix: list[tuple[str, dict[str, object]]]) -> float:
    """A few queries of each kind, one at a time (the first ones load what the server loads lazily)."""
    start = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60.0, trust_env=False) as session:
        for _, params in mix[:50]:
            session.get("/api/locate", params=params)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests a second")
    parser.add_argument("--seconds", type=float, default=120.0, help="duration of the load on carroyage serve")
    parser.add_argument(
        "--baseline-rate", type=float, default=20.0, help="requests a second to the baseline, meanwhile"
    )
    parser.add_argument("--address-share", type=float, default=0.3, help="share of address queries")
    parser.add_argument("--startup", type=float, default=120.0, help="seconds allowed for each server to start")
    args = parser.parse_args()
    baseline_mix = [("baseline", {})] * max(1, int(args.baseline_rate * args.seconds))
    mix = queries(max(1, int(args.rate * args.seconds)), args.address_share)
    print(f"{args.rate:g} requests/s for {args.seconds:g} s; baseline meanwhile {args.baseline_rate:g}/s", flush=True)
    deadline = time.monotonic() + args.startup
    with both_servers(deadline) as (base, ours):
        print(f"warm-up (not counted): {warm_up(ours.url, mix):.1f} s", flush=True)
        ours_run, baseline = asyncio.run(
            both(
                (ours.url, "/api/locate", mix, args.rate, ours.proc.pid),
                (base.url, "/ping", baseline_mix, args.baseline_rate, base.proc.pid),
            )
        )
        alive = ours.proc.poll() is None
        log = ours.log_tail()
    report(args, baseline, ours_run, alive, log)


def report(args: argparse.Namespace, baseline: Run, ours: Run, alive: bool, log: str) -> None:
    base = baseline.tallies["baseline"]
    base_p99 = quantile(base.latencies, 99)
    print("\nlatency in ms, from when each request was due (open-loop)")
    print(f"{'requests':34} {'sent':>6} {'p50':>7} {'p99':>7} {'max':>8} {'errors':>6} {'p99/base':>8}")
    for tally in [base, *ours.tallies.values()]:
        lat = tally.latencies
        sent = len(lat) + sum(tally.errors.values())
        name = "baseline: trivial app /ping" if tally is base else f"carroyage /api/locate {tally.name}"
        print(
            f"{name:34} {sent:6d} {quantile(lat, 50) * 1e3:7.1f} {quantile(lat, 99) * 1e3:7.1f} "
            f"{max(lat, default=float('nan')) * 1e3:8.1f} {sum(tally.errors.values()):6d} "
            f"{quantile(lat, 99) / base_p99:8.2f}"
        )
    errors: Counter[str] = Counter()
    for tally in [base, *ours.tallies.values()]:
        errors.update({f"{tally.name}: {kind}": n for kind, n in tally.errors.items()})
    print("errors by kind: " + (", ".join(f"{kind} × {n}" for kind, n in sorted(errors.items())) or "none"))
    print(
        f"server memory (VmRSS): {ours.rss_mb[0]:.0f} MB at the start, {ours.rss_mb[-1]:.0f} MB at the end, "
        f"peak {max(ours.rss_mb):.0f} MB ({len(ours.rss_mb)} samples)"
    )
    ok = sum(len(t.latencies) for t in ours.tallies.values())
    achieved = ok / max(ours.answered_by, 1e-9)
    sustained = ours.late <= 0.01 * ours.sent and ok >= 0.99 * ours.sent and achieved >= 0.98 * args.rate
    print(
        f"rate: {ours.sent} sent in {args.seconds:g} s, {ours.late} later than {LATE_S * 1e3:.0f} ms after their time, "
        f"{ok} answered 200, {achieved:.1f}/s achieved: {'sustained' if sustained else 'NOT sustained'} "
        f"(≤ 1 % late, ≥ 99 % answered, ≥ 98 % of the rate; baseline: {baseline.late} late of {baseline.sent})"
    )
    print(f"server {'still running' if alive else 'EXITED'}")
    if errors or not alive:
        print(f"its log:\n{log or '(empty)'}")


if __name__ == "__main__":
    main()

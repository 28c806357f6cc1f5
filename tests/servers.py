"""Real servers on 127.0.0.1 for the tests: uvicorn in a thread, redis-server and addok as processes.

Loopback servers are never reached through a proxy: the clients made here ignore the proxy
variables (``trust_env=False``), and the processes started here get ``NO_PROXY`` for loopback
(CI machines may set ``HTTP_PROXY``/``ALL_PROXY`` for the package registries).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

LOOPBACK = "127.0.0.1,localhost,::1"


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (all held open while they are chosen)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def client(base_url: str, **options) -> httpx.Client:
    """An HTTP client for a loopback server: no proxy, whatever the environment says."""
    return httpx.Client(base_url=base_url, trust_env=False, **{"timeout": 30.0, **options})


def wait_for_port(port: int, seconds: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before listening on 127.0.0.1:{port}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def wait_for_ok(url: str, seconds: float, proc: subprocess.Popen | None = None) -> None:
    """Until ``url`` answers 200 (and ``proc``, the server expected there, is still running)."""
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}) before answering {url}")
        try:
            reply = httpx.get(url, timeout=2.0, trust_env=False)
            if reply.status_code == 200 and (proc is None or proc.poll() is None):
                return
            last = f"HTTP {reply.status_code}"
        except httpx.TransportError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 in {seconds:g} s (last: {last})")


def require(program: str) -> str:
    """A program from this Python's environment or the PATH (skipped if missing, failed in CI)."""
    beside = Path(sys.executable).parent / program
    found = str(beside) if beside.is_file() else shutil.which(program)
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is missing: .ci/run installs it")
        pytest.skip(f"{program} is not installed")
    return found


@contextmanager
def process(command: list[str], port: int, env: dict | None = None, timeout: float = 20.0, ready: str | None = None):
    """Run a server process until the block ends (it is always stopped).

    It is ready when it listens on ``port``, or, given ``ready`` (a path such as
    ``/openapi.json``), when that answers HTTP 200 while the process still runs.
    """
    environment = {**os.environ, "NO_PROXY": LOOPBACK, "no_proxy": LOOPBACK, **(env or {})}
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    try:
        if ready is None:
            wait_for_port(port, timeout, proc)
        else:
            wait_for_ok(f"http://127.0.0.1:{port}{ready}", timeout, proc)
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server, and kill it if it has not exited within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serving(app, limits=None):
    """``app`` served by uvicorn in a thread of this process, as ``carroyage serve`` serves it
    (its protocol and uvicorn settings, ``limits`` or the defaults); yields the base URL."""
    import uvicorn

    from carroyage.address.server import GuardedProtocol, Limits

    limits = limits or Limits()
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=GuardedProtocol.bounded(limits), **limits.uvicorn_options()
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)

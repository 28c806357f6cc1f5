"""Whole-process measurement of one command: wall time and the command's own peak memory.

Why a launcher: on Linux a process's peak resident memory (``ru_maxrss``) survives ``execve``:
the kernel folds the peak of the memory image being replaced into the new program's figure. A
child started by a large parent (``fork`` copies the parent's resident pages; ``vfork`` and
``posix_spawn`` borrow the parent's whole image) therefore reports at least its parent's size:
a benchmark that generated a 2.3 M-cell grid in its own process saw ~1.1 GB for every variant,
whatever the variant did. ``RUSAGE_CHILDREN`` in that parent is no better: it is the largest of
those inflated figures over every child it ever waited for.

So each command runs under a tiny launcher, ``python -S -c LAUNCHER command...``, a fresh
interpreter (about 10 MB) whose only child is the command. The launcher starts it with
``posix_spawn`` and reaps it with ``os.wait4``, which returns that one child's resource usage
(the same accounting ``/usr/bin/time -v`` prints): its peak can only be inflated up to the
launcher's own ~10 MB, never to the benchmark's. :func:`floor` measures that floor in the same
run (``python -c pass`` under the launcher).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

LAUNCHER = """\
import json, os, sys, time
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
record = {"wall": wall, "peak_mb": usage.ru_maxrss / 1024, "user": usage.ru_utime, "sys": usage.ru_stime,
          "exit": os.waitstatus_to_exitcode(status)}
print("\\n#launcher " + json.dumps(record), flush=True)
"""
MARK = "#launcher "


@dataclass
class Run:
    """One finished command: the launcher's figures and what the command printed."""

    wall: float  # seconds, from spawn to reaped: interpreter start-up and imports included
    peak_mb: float  # the command's own peak resident memory
    user: float
    sys: float
    exit: int
    stdout: str  # without the launcher's line
    stderr: str

    def last_json(self) -> dict:
        """The last line of the command's output that is a JSON object."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise ValueError(f"no JSON line in the output:\n{self.stdout}\n{self.stderr}")


def run(command: list[str], timeout: float | None = None, cwd: str | None = None, check: bool = True) -> Run:
    """Run ``command`` (its first item a path to an executable) under the launcher."""
    done = subprocess.run(
        [sys.executable, "-S", "-c", LAUNCHER, *map(str, command)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    stdout, _, record = done.stdout.rpartition(MARK)
    if done.returncode != 0 or not record:
        raise RuntimeError(f"launcher failed ({done.returncode}): {done.stderr}")
    result = Run(**json.loads(record), stdout=stdout.rstrip("\n"), stderr=done.stderr)
    if check and result.exit != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} exited {result.exit}:\n{result.stderr}")
    return result


def floor() -> float:
    """Peak memory (MB) of ``python -c pass`` under the launcher: the least any command can show."""
    return run([sys.executable, "-c", "pass"]).peak_mb

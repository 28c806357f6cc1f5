"""Which of numpy's sorting kernels the ``carroyage`` command lets run, chosen before numpy loads.

On AMD Zen 4 processors (family 25 with AVX-512), numpy's AVX-512 sort and partition are about
five times slower than its AVX2 ones: they store with ``vpcompressq`` to memory, which Zen 4 runs
in microcode (numpy pull request 32690, x86-simd-sort issue 6; Zen 5 is not affected). Gridding
households is mostly one sort, so the command asks numpy for its AVX2 kernels there, through
numpy's own switch ``NPY_DISABLE_CPU_FEATURES`` (docs/households.md), set before any command
imports numpy, and never when the user has set it. numpy reads it once, when it is imported:
Python programs that use the API can set it themselves before importing numpy.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import MutableMapping
from pathlib import Path

NUMPY_SWITCH = "NPY_DISABLE_CPU_FEATURES"
AVX512_TARGETS = "X86_V4 AVX512_ICL"
"""numpy's dispatch targets that hold the AVX-512 sort (its AVX2 target stays)."""
ZEN4_FAMILY = 25


def is_zen4(cpuinfo: str | None = None, processor: str | None = None) -> bool:
    """Whether the processor is an AMD Zen 4 (family 25 with AVX-512).

    ``cpuinfo`` is Linux's ``/proc/cpuinfo`` (read when not given); ``processor`` is
    :func:`platform.processor`'s text, which names the family on Windows.

    Examples
    --------
    >>> is_zen4("vendor_id\\t: AuthenticAMD\\ncpu family\\t: 25\\nflags\\t\\t: fpu avx2 avx512f\\n")
    True
    >>> is_zen4("vendor_id\\t: GenuineIntel\\ncpu family\\t: 6\\nflags\\t\\t: fpu avx2 avx512f\\n")
    False
    >>> is_zen4("", "AMD64 Family 25 Model 97 Stepping 2, AuthenticAMD")
    True
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")[:20_000]
        except OSError:  # not Linux, or not readable: the processor text decides
            cpuinfo = ""
    if cpuinfo:
        first = cpuinfo.split("\n\n", 1)[0]
        fields = dict(re.findall(r"^([^:\n]+?)\s*:\s*(.*)$", first, flags=re.MULTILINE))
        return (
            fields.get("vendor_id") == "AuthenticAMD"
            and fields.get("cpu family") == str(ZEN4_FAMILY)
            and "avx512f" in fields.get("flags", "").split()
        )
    text = platform.processor() if processor is None else processor
    return "AuthenticAMD" in text and re.search(rf"\bFamily {ZEN4_FAMILY}\b", text) is not None


def prefer_avx2_sort(environ: MutableMapping[str, str] | None = None, cpuinfo: str | None = None) -> bool:
    """Ask numpy for its AVX2 sort on Zen 4, unless the user has chosen: returns whether it did.

    It takes effect in this process if numpy is not imported yet, and in the processes it starts.

    Examples
    --------
    >>> zen4 = "vendor_id : AuthenticAMD\\ncpu family : 25\\nflags : avx2 avx512f\\n"
    >>> environ = {}
    >>> prefer_avx2_sort(environ, zen4), environ, prefer_avx2_sort({NUMPY_SWITCH: ""}, zen4)
    (True, {'NPY_DISABLE_CPU_FEATURES': 'X86_V4 AVX512_ICL'}, False)
    """
    environ = os.environ if environ is None else environ
    if NUMPY_SWITCH in environ or not is_zen4(cpuinfo):
        return False
    environ[NUMPY_SWITCH] = AVX512_TARGETS
    return True

"""numpy's sort kernels on AMD Zen 4: the processor test, and the command's switch before numpy loads."""

import subprocess
import sys

import pytest

from carroyage.cpu import AVX512_TARGETS, NUMPY_SWITCH, is_zen4, prefer_avx2_sort

ZEN4 = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nflags\t\t: fpu avx2 avx512f avx512dq\n"
)
ZEN3 = ZEN4.replace(" avx512f avx512dq", "")  # family 25 too, without AVX-512
ZEN5 = ZEN4.replace("cpu family\t: 25", "cpu family\t: 26")
INTEL = ZEN4.replace("AuthenticAMD", "GenuineIntel").replace("cpu family\t: 25", "cpu family\t: 6")


@pytest.mark.parametrize(("cpuinfo", "expected"), [(ZEN4, True), (ZEN3, False), (ZEN5, False), (INTEL, False)])
def test_only_zen4_is_told_apart(cpuinfo, expected):
    assert is_zen4(cpuinfo + "\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n") is expected  # the first processor decides


def test_windows_names_the_family_in_the_processor_text():
    assert is_zen4("", "AMD64 Family 25 Model 17 Stepping 1, AuthenticAMD")
    assert not is_zen4("", "AMD64 Family 26 Model 2 Stepping 0, AuthenticAMD")
    assert not is_zen4("", "Intel64 Family 6 Model 85 Stepping 7, GenuineIntel")


def test_the_switch_is_set_on_zen4_only_and_never_over_the_users_choice():
    environ: dict[str, str] = {}
    assert prefer_avx2_sort(environ, ZEN4) and environ == {NUMPY_SWITCH: AVX512_TARGETS}
    mine = {NUMPY_SWITCH: "AVX2"}
    assert not prefer_avx2_sort(mine, ZEN4) and mine == {NUMPY_SWITCH: "AVX2"}
    untouched: dict[str, str] = {}
    assert not prefer_avx2_sort(untouched, INTEL) and untouched == {}


def test_the_command_line_loads_no_numpy_before_its_switch():
    code = "import sys, carroyage.cli; print('numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"

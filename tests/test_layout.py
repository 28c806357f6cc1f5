"""The package's shape: two wings side by side on a shared ground floor, and a light CLI."""

import json
import subprocess
import sys

import carroyage

ENGINE_SIDE = ("carroyage.engine", "carroyage.around", "carroyage.publish", "carroyage.jobs")


def loaded_after(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def test_the_address_wing_never_loads_the_engine():
    modules = loaded_after(
        "import carroyage.address.batch, carroyage.address.server, carroyage.address.check, carroyage.cli.address\n"
        "from carroyage import locate, locate_csv, load_zones"
    )
    assert "carroyage.address.server" in modules
    assert [m for m in modules if m.startswith(ENGINE_SIDE)] == []


def test_the_engine_never_loads_the_address_wing():
    modules = loaded_after("import carroyage.engine.delimit, carroyage.engine.sensitivity, carroyage.engine.readers")
    assert "carroyage.engine.delimit" in modules
    assert [m for m in modules if m.startswith(("carroyage.address", "carroyage.publish", "carroyage.around"))] == []


def test_the_command_line_starts_without_the_heavy_libraries():
    modules = loaded_after("import carroyage.cli")
    assert [m for m in ("geopandas", "pandas", "numpy", "shapely", "pyarrow", "fastapi") if m in modules] == []


def test_the_public_api_is_lazy_and_complete():
    assert "delimit" in dir(carroyage)
    for name in carroyage.__all__:
        assert getattr(carroyage, name) is not None, name
    try:
        carroyage.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")

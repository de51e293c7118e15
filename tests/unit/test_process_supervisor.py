"""The local process supervisor starts as a bare interpreter: it imports nothing but the standard library."""

from __future__ import annotations

import json
import subprocess
import sys

from push_pools.platforms.local.backend import SUPERVISOR

LOADED_MODULES = """
import json, runpy, sys
runpy.run_path(sys.argv[1], run_name="supervisor")
print(json.dumps(sorted(name.partition(".")[0] for name in sys.modules)))
"""


def test_the_supervisor_is_a_script_in_isolated_mode() -> None:
    executable, *flags, script = SUPERVISOR
    assert executable == sys.executable
    assert flags == ["-I", "-S"], "no PYTHON* variables, no site-packages: nothing but the standard library"
    assert script.endswith("push_pools/platforms/local/runner.py")


def test_the_supervisor_imports_only_the_standard_library() -> None:
    executable, *flags, script = SUPERVISOR
    result = subprocess.run(
        [executable, *flags, "-c", LOADED_MODULES, script], capture_output=True, text=True, check=True, timeout=30
    )
    loaded = set(json.loads(result.stdout))
    assert loaded - sys.stdlib_module_names - {"__main__"} == set()
    assert not loaded & {"push_pools", "pydantic"}

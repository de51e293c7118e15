"""Importing the Lambda entry point is cheap: it builds nothing and pulls in no other cloud, no CLI, no test tool."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("typer", "rich", "moto", "azure", "httpx", "yaml", "google.cloud.run_v2", "functions_framework")


def test_importing_the_handler_loads_only_what_a_request_needs() -> None:
    script = (
        "import json, sys, push_pools.platforms.aws.function as f;"
        "print(json.dumps({'modules': sorted(sys.modules), 'built': f._function.cache_info().currsize}))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(result.stdout)
    loaded = [m for m in report["modules"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert loaded == []
    assert report["built"] == 0, "nothing is built before the first invocation"
    assert "boto3" in report["modules"]

"""The Azure Functions archive: built by `push_pools.packaging`, it holds function_app.py and host.json at its root,
no other cloud's modules, a requirements.txt with the azure extra, and its function_app imports (from the archive,
not the checkout) and declares the three functions."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from push_pools.packaging import build_package

PROBE = """
import json, push_pools, function_app
functions = function_app.app.get_functions()
print(json.dumps({
    "package": push_pools.__file__,
    "functions": {f.get_function_name(): json.loads(f.get_function_json())["bindings"][0]["type"] for f in functions},
}))
"""


def test_the_archive_imports_and_declares_the_three_functions(tmp_path: Path) -> None:
    archive = tmp_path / "azure-function.zip"
    report = build_package("azure", archive)
    names = zipfile.ZipFile(archive).namelist()
    assert {"function_app.py", "host.json", "requirements.txt"} <= set(names)
    assert {"push_pools/platforms/azure/backend.py", "push_pools/platforms/azure/function.py"} <= set(names)
    assert not [n for n in names if n.startswith(("push_pools/platforms/aws/", "push_pools/platforms/gcp/"))]
    requirements = {line.split(">")[0].split("=")[0] for line in report.requirements}
    assert {"azure-mgmt-containerinstance", "azure-identity", "azure-functions", "azure-storage-queue"} <= requirements
    assert not requirements & {"boto3", "google-cloud-run", "typer", "rich"}
    host = json.loads(zipfile.ZipFile(archive).read("host.json"))
    assert host["extensions"]["queues"]["maxDequeueCount"] >= 1

    unpacked = tmp_path / "site"
    zipfile.ZipFile(archive).extractall(unpacked)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=unpacked, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout)
    assert Path(probe["package"]).is_relative_to(unpacked), "imported from the archive"
    assert probe["functions"] == {"webhook": "httpTrigger", "run_queue": "queueTrigger", "tick": "timerTrigger"}

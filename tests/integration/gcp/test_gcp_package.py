"""The Cloud Functions package: `push-pool package gcp` builds it, and its `main.py` serves both targets on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from push_pools.cli import app as cli

CHECK = textwrap.dedent(
    """
    import json, sys
    import functions_framework
    import main
    import push_pools
    assert push_pools.__file__.startswith(sys.argv[1]), push_pools.__file__
    foreign = sorted(m for m in sys.modules if m.startswith(("boto3", "botocore", "azure", "push_pools.cli")))
    assert not foreign, foreign
    events = functions_framework.create_app(target="pubsub", source="main.py").test_client()
    refused = events.post("/", data=json.dumps({"message": {"data": "!!", "messageId": "1"}, "subscription": "s"}),
                          headers={"Content-Type": "application/json"})
    web = functions_framework.create_app(target="webhook", source="main.py").test_client()
    print(json.dumps({"pubsub": refused.status_code, "webhook": web.get("/").status_code,
                      "targets": [callable(main.webhook), callable(main.pubsub)]}))
    """
)


def test_the_gcp_package_holds_the_function_and_runs_from_its_own_files(tmp_path: Path) -> None:
    output = tmp_path / "dist" / "gcp-function.zip"
    result = CliRunner().invoke(cli, ["package", "gcp", "--file", str(output)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(output) as archive:
        entries = set(archive.namelist())
        requirements = archive.read("requirements.txt").decode()
        archive.extractall(tmp_path / "function")
    assert {"main.py", "requirements.txt", "push_pools/platforms/gcp/function.py"} <= entries
    assert {"push_pools/platforms/gcp/backend.py", "push_pools/platforms/gcp/request.py"} <= entries
    assert "push_pools/platforms/gcp/template.json" in entries
    assert not [e for e in entries if e.startswith(("push_pools/platforms/aws/", "push_pools/platforms/azure/"))]
    assert "google-cloud-run" in requirements
    assert "functions-framework" in requirements
    root = tmp_path / "function"
    environment = os.environ | {"PYTHONPATH": str(root), "PUSH_POOL_HOME": str(tmp_path / "home")}
    checked = subprocess.run(
        [sys.executable, "-c", CHECK, str(root)], cwd=root, env=environment, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout.strip().splitlines()[-1]) == {
        "pubsub": 400,
        "webhook": 405,
        "targets": [True, True],
    }

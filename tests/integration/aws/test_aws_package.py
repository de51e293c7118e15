"""The Lambda package: built by `push_pools.packaging`, unzipped, and its handler imported and called in a fresh
Python that has only the package's files and boto3 (what Lambda's runtime provides), nothing else installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SITE_PACKAGES = Path(next(p for p in sys.path if p.endswith("site-packages")))
BOTO3_AND_ITS_DEPENDENCIES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py")
HEAVY = ("typer", "rich", "moto", "azure", "httpx", "yaml", "google.cloud.run_v2", "pytest")

PROBE = """
import json, sys
sys.path[:0] = {paths!r}
import lambda_function
answers = [
    lambda_function.handler({{"action": "tick"}}, None),
    lambda_function.handler({http!r}, None),
]
try:
    lambda_function.handler({{"Records": [{{"eventSource": "aws:s3"}}]}}, None)
except Exception as exc:
    answers.append(type(exc).__name__)
heavy = sorted(m for m in sys.modules if m in {heavy!r} or any(m.startswith(h + ".") for h in {heavy!r}))
outside = sorted({{getattr(m, "__file__", None) or "" for m in list(sys.modules.values())}} - {{""}})
print(json.dumps({{"answers": answers, "heavy": heavy, "files": outside}}))
"""


@pytest.mark.slow  # builds the archive: vendors manylinux wheels with uv (cached after the first run)
def test_the_packaged_handler_runs_with_only_its_vendored_dependencies_and_boto3(tmp_path: Path) -> None:
    from push_pools.packaging import build_package

    archive = build_package("aws", tmp_path / "push-pools-aws.zip").path
    tree = tmp_path / "function"
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(tree)
    platforms = {path.name for path in (tree / "push_pools" / "platforms").iterdir() if path.is_dir()}
    assert platforms - {"__pycache__"} == {"aws", "local"}
    assert (tree / "push_pools" / "platforms" / "aws" / "backend.py").is_file()
    assert not (tree / "boto3").exists(), "Lambda's runtime provides boto3: it is not vendored"

    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for name in BOTO3_AND_ITS_DEPENDENCIES:
        (runtime / name).symlink_to(SITE_PACKAGES / name)
    http = json.loads((Path(__file__).parents[2] / "fixtures" / "aws" / "function_url_post.json").read_text())
    script = PROBE.format(paths=[str(tree), str(runtime)], http=http, heavy=list(HEAVY))
    env = {
        "PATH": os.environ["PATH"],
        "PUSH_POOL_HOME": str(tmp_path / "home"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PUSH_POOL_WEBHOOK_SECRET": "s3cret",
    }
    result = subprocess.run(
        [sys.executable, "-S", "-I", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    tick, webhook, unsupported = report["answers"]
    assert tick["kind"] == "done"
    assert webhook["statusCode"] == 401  # unsigned: refused
    assert unsupported == "UnsupportedEventError"
    assert report["heavy"] == []
    leaked = [file for file in report["files"] if file.startswith(str(SITE_PACKAGES))]
    assert leaked == [], "imported from the development environment instead of the package"
    assert any(file.startswith(str(tree / "pydantic")) for file in report["files"]), "vendored pydantic is used"

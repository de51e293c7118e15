"""The function packages: what goes in, what stays out, and that the same sources give the same bytes."""

from __future__ import annotations

import importlib.util
import marshal
import re
import sys
import zipfile
from pathlib import Path

import pytest

from push_pools.errors import ConfigurationError
from push_pools.packaging import PLATFORMS, RUNTIME_PYTHON, build_package, function_requirements


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[;, ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_each_platform_gets_the_core_and_only_its_own_sdk() -> None:
    aws, gcp, azure = (names(function_requirements(PLATFORMS[p])) for p in ("aws", "gcp", "azure"))
    core = {"pydantic", "pydantic-settings", "tenacity", "jsonschema", "httpx"}
    assert core <= aws
    assert core <= gcp
    assert core <= azure
    for cli_only in ("typer", "rich", "pyyaml"):
        assert cli_only not in aws | gcp | azure
    assert "boto3" not in aws, "the Lambda runtime provides boto3"
    assert "google-cloud-run" in gcp
    assert not {n for n in gcp if n.startswith(("azure", "boto"))}
    assert "azure-mgmt-containerinstance" in azure
    assert not {n for n in azure if n.startswith(("google", "boto"))}


def test_the_azure_package(tmp_path: Path) -> None:
    report = build_package("azure", tmp_path / "azure.zip")
    with zipfile.ZipFile(report.path) as archive:
        entries = set(archive.namelist())
        requirements = archive.read("requirements.txt").decode().split()
    assert {"function_app.py", "host.json", "requirements.txt", "push_pools/__init__.py"} <= entries
    assert {"push_pools/platforms/azure/template.json", "push_pools/platforms/azure/backend.py"} <= entries
    assert "push_pools/platforms/local/backend.py" in entries
    assert not any(entry.startswith(("push_pools/cli/", "push_pools/testing.py")) for entry in entries)
    assert not any(entry.startswith(("push_pools/platforms/aws/", "push_pools/platforms/gcp/")) for entry in entries)
    compiled = shipped_bytecode(entries) if sys.version_info[:2] == RUNTIME_PYTHON else set()
    assert {entry for entry in entries if "__pycache__" in entry} == compiled
    assert names(requirements) == names(function_requirements(PLATFORMS["azure"]))
    assert report.size_bytes == report.path.stat().st_size
    assert report.files == len(entries)


def shipped_bytecode(entries: set[str]) -> set[str]:
    """The .pyc entries an archive should hold: one per module, for the functions' Python."""
    tag = f"cpython-{RUNTIME_PYTHON[0]}{RUNTIME_PYTHON[1]}"
    return {
        f"{entry.rpartition('/')[0]}/__pycache__/{entry.rpartition('/')[2][:-3]}.{tag}.pyc".lstrip("/")
        for entry in entries
        if entry.endswith(".py")
    }


@pytest.mark.skipif(sys.version_info[:2] != RUNTIME_PYTHON, reason="bytecode is compiled by the runtime's Python only")
def test_modules_ship_checked_bytecode_recorded_under_the_runtime_path(tmp_path: Path) -> None:
    report = build_package("gcp", tmp_path / "gcp.zip")
    with zipfile.ZipFile(report.path) as archive:
        compiled = archive.read("push_pools/__pycache__/dispatcher.cpython-311.pyc")
        source = archive.read("push_pools/dispatcher.py")
    assert compiled[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(compiled[4:8], "little") == 0b11, "hash-based and checked: never stale, whatever the mtime"
    assert compiled[8:16] == importlib.util.source_hash(source)
    assert marshal.loads(compiled[16:]).co_filename == "/workspace/push_pools/dispatcher.py"


def test_packages_are_reproducible(tmp_path: Path) -> None:
    first = build_package("azure", tmp_path / "a.zip")
    second = build_package("azure", tmp_path / "b.zip")
    assert first.path.read_bytes() == second.path.read_bytes()


@pytest.mark.parametrize(
    ("platform", "architecture", "message"),
    [("solaris", "x86_64", "unknown platform 'solaris'"), ("aws", "sparc", "unknown architecture 'sparc'")],
)
def test_bad_platforms_and_architectures(tmp_path: Path, platform: str, architecture: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_package(platform, tmp_path / "x.zip", architecture=architecture)

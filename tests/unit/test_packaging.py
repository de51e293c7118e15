"""The function packages: what goes in, what stays out, and that the same sources give the same bytes."""

from __future__ import annotations

import importlib.util
import marshal
import re
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from push_pools.errors import ConfigurationError
from push_pools.packaging import (
    LOCK_FILE,
    PLATFORMS,
    RUNTIME_PYTHON,
    build_package,
    function_requirements,
    infra_directory,
    locked_requirements,
)

ROOT = Path(__file__).resolve().parents[2]


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
        requirements = archive.read("requirements.txt").decode()
    assert {"function_app.py", "host.json", "requirements.txt", "push_pools/__init__.py"} <= entries
    assert {"push_pools/platforms/azure/template.json", "push_pools/platforms/azure/backend.py"} <= entries
    assert "push_pools/platforms/local/backend.py" in entries
    assert not any(entry.startswith(("push_pools/cli/", "push_pools/testing.py")) for entry in entries)
    assert not any(entry.startswith(("push_pools/platforms/aws/", "push_pools/platforms/gcp/")) for entry in entries)
    compiled = shipped_bytecode(entries) if sys.version_info[:2] == RUNTIME_PYTHON else set()
    assert {entry for entry in entries if "__pycache__" in entry} == compiled
    lock = ROOT / "infra" / "azure" / LOCK_FILE
    assert requirements == lock.read_text()
    assert report.requirements == locked_requirements(lock)
    assert not report.vendored
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


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_each_lock_pins_what_pyproject_asks_at_the_versions_the_tests_run_with(platform: str) -> None:
    lock = infra_directory(PLATFORMS[platform]) / LOCK_FILE
    assert lock == ROOT / "infra" / platform / LOCK_FILE, "a checkout builds from its own infra/"
    pins = dict(pin.split("==") for pin in locked_requirements(lock))
    for requirement in map(Requirement, function_requirements(PLATFORMS[platform])):
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"{requirement.name} is not in {lock}: run `make lock`"
        assert requirement.specifier.contains(pinned), f"{lock} pins {requirement.name}=={pinned}: run `make lock`"
    installed = {name: metadata.version(name) for name in pins}
    assert installed == pins, f"the tests run with other versions than {lock} pins: run `make lock`"
    assert "boto3" not in pins or platform != "aws", "Lambda's runtime provides boto3"


def test_a_platform_without_its_files_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("push_pools.packaging.PACKAGE_ROOT", tmp_path / "push_pools")
    with pytest.raises(ConfigurationError, match="the gcp function's files are missing"):
        build_package("gcp", tmp_path / "x.zip")

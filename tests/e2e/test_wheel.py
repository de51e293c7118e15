"""`pip install 'push-pools[EXTRA]' && push-pool package PLATFORM` in a clean virtual environment: the wheel (built
once) carries everything an archive needs, and the archive it builds is byte for byte the one a checkout builds."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from push_pools.packaging import LOCK_FILE, PLATFORMS, build_package, infra_directory, locked_requirements

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"
LOCKS = [arg for platform in PLATFORMS for arg in ("--constraint", str(ROOT / "infra" / platform / LOCK_FILE))]

pytestmark = [
    pytest.mark.slow,  # one wheel build, then a venv per extra from uv's cache
    pytest.mark.skipif(not UV.is_file(), reason="needs uv next to the test's Python (make builds it)"),
]


def uv(*args: str | Path) -> None:
    result = subprocess.run([str(UV), *map(str, args)], capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wheel")
    uv("build", "--quiet", "--wheel", "--out-dir", directory, ROOT)
    (built,) = directory.glob("push_pools-*.whl")
    return built


def test_the_wheel_ships_every_platforms_archive_files(wheel: Path) -> None:
    entries = set(zipfile.ZipFile(wheel).namelist())
    for platform in PLATFORMS:
        shipped = {f"push_pools/infra/{platform}/{path.name}" for path in (ROOT / "infra" / platform).iterdir()}
        assert shipped - {f"push_pools/infra/{platform}/__pycache__"} <= entries


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_a_clean_install_of_the_extra_builds_the_archive_a_checkout_builds(
    wheel: Path, tmp_path: Path, platform: str
) -> None:
    venv = tmp_path / "venv"
    uv("venv", "--quiet", "--python", sys.executable, venv)
    requirement = f"{wheel}[{PLATFORMS[platform].extra}]"
    uv("pip", "install", "--quiet", "--python", venv / "bin" / "python", requirement, *LOCKS)
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{UV.parent}{os.pathsep}{environment['PATH']}"
    result = subprocess.run(
        ["push-pool", "package", platform],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    from_wheel = tmp_path / "dist" / f"push-pools-{platform}.zip"
    pins = locked_requirements(infra_directory(PLATFORMS[platform]) / LOCK_FILE)
    assert f"({len(pins)}): {', '.join(pins)}" in " ".join(result.stdout.split())
    assert f"Wrote dist/push-pools-{platform}.zip: " in result.stdout
    from_checkout = build_package(platform, tmp_path / "checkout.zip").path
    assert from_wheel.read_bytes() == from_checkout.read_bytes()

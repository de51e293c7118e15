"""`push-pool package <platform>`: the deployable function archive for AWS Lambda, Google Cloud Functions or
Azure Functions, built from an installed push-pools (a wheel or a source checkout alike).

The archive holds the `push_pools` package without the CLI and without the other clouds' folders under
`push_pools/platforms/`, the platform's own files from `infra/<platform>/` at its root, and the dependencies pinned
in that folder's `requirements.txt` (`make lock` writes it, at the versions the tests run with): vendored manylinux
wheels for Lambda (which installs nothing; boto3 comes with its runtime), or the `requirements.txt` itself for Cloud
Functions and Azure Functions, which install it at deploy time. The wheel ships `infra/` inside the package
(`push_pools/infra/`); a checkout has it next to the package. Entries are sorted and time-stamped 1980-01-01, so the
same sources always give the same bytes (and Terraform's source hash only changes with them).

Archives also ship their modules compiled (.pyc). Lambda runs the archive from a read-only /var/task, where Python
cannot cache what it compiles, so every module without a .pyc would be compiled again at every cold start (about
0.25 s for the Lambda archive and its vendored dependencies: `python -m bench.aws.footprint`). Cloud Functions and
Azure Functions instances also start from the deployed files (Azure may mount them read-only), so their archives
ship .pyc files for push-pools' own modules too; the dependencies they install at deploy time are theirs to compile.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from push_pools.errors import ConfigurationError

DISTRIBUTION = "push-pools"
CLI_ONLY = frozenset({"typer", "rich", "pyyaml"})
PACKAGE_ROOT = Path(__file__).resolve().parent
LOCK_FILE = "requirements.txt"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Platform:
    name: str
    extra: str
    vendor_dependencies: bool
    bytecode_root: str
    """Where the runtime puts the archive's files: the .pyc files it ships record their sources under that path."""
    provided: frozenset[str] = frozenset()
    """Distributions the platform's runtime already has."""


PlatformName = Literal["aws", "gcp", "azure"]
Architecture = Literal["x86_64", "arm64"]
PLATFORMS: dict[str, Platform] = {
    "aws": Platform("aws", "aws", vendor_dependencies=True, bytecode_root="/var/task", provided=frozenset({"boto3"})),
    "gcp": Platform("gcp", "gcp", vendor_dependencies=False, bytecode_root="/workspace"),
    "azure": Platform("azure", "azure", vendor_dependencies=False, bytecode_root="/home/site/wwwroot"),
}
RUNTIME_PYTHON = (3, 11)
"""The functions' Python (the Terraform modules' runtimes): wheels are chosen, and .pyc compiled, for it."""
ARCHITECTURES: dict[str, str] = {"x86_64": "x86_64", "arm64": "aarch64"}
"""Lambda's architectures, by the machine name manylinux wheels use."""


@dataclass(frozen=True)
class PackageReport:
    path: Path
    size_bytes: int
    files: int
    requirements: tuple[str, ...]
    """The pinned distributions (`name==version`): vendored in the archive, or installed from it at deploy time."""
    vendored: bool


def build_package(platform_name: str, output: Path, *, architecture: str = "x86_64") -> PackageReport:
    """Build the platform's function archive at `output`."""
    platform = _platform(platform_name)
    if architecture not in ARCHITECTURES:
        raise ConfigurationError(f"unknown architecture {architecture!r}; choose one of: {', '.join(ARCHITECTURES)}")
    infra_dir = infra_directory(platform)
    requirements = locked_requirements(infra_dir / LOCK_FILE)
    with tempfile.TemporaryDirectory(prefix="push-pools-package-") as scratch:
        staging = Path(scratch)
        _copy_package(platform, staging / "push_pools")
        shutil.copytree(infra_dir, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        if platform.vendor_dependencies:
            _vendor(infra_dir / LOCK_FILE, staging, architecture)
        _compile_bytecode(staging, platform.bytecode_root)
        output.parent.mkdir(parents=True, exist_ok=True)
        files = _zip(staging, output)
    return PackageReport(output, output.stat().st_size, files, requirements, platform.vendor_dependencies)


def infra_directory(platform: Platform) -> Path:
    """The platform's files for the archive's root: inside the package when installed from the wheel, next to it
    in a source checkout."""
    for candidate in (PACKAGE_ROOT / "infra" / platform.name, PACKAGE_ROOT.parent / "infra" / platform.name):
        if (candidate / LOCK_FILE).is_file():
            return candidate
    raise ConfigurationError(f"the {platform.name} function's files are missing from {PACKAGE_ROOT}: reinstall it")


def locked_requirements(lock: Path) -> tuple[str, ...]:
    """The `name==version` lines of a requirements file written by `make lock`."""
    lines = (line.split("#", 1)[0].strip() for line in lock.read_text().splitlines())
    return tuple(line for line in lines if line)


def function_requirements(platform: Platform) -> list[str]:
    """What the function needs at run time, as pyproject.toml declares it (the core's dependencies but the CLI's,
    plus the platform's extra): what `make lock` pins."""
    requirements = []
    for requirement in metadata.requires(DISTRIBUTION) or []:
        spec, _, marker = requirement.partition(";")
        name = re.split(r"[<>=!~\[ ]", spec.strip(), maxsplit=1)[0].lower()
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        wanted = extra.group(1) == platform.extra if extra else name not in CLI_ONLY
        if wanted and name not in platform.provided:
            requirements.append(spec.strip())
    return sorted(requirements)


def _platform(name: str) -> Platform:
    if name not in PLATFORMS:
        raise ConfigurationError(f"unknown platform {name!r}; choose one of: {', '.join(PLATFORMS)}")
    return PLATFORMS[name]


def _copy_package(platform: Platform, target: Path) -> None:
    foreign = {other for other in PLATFORMS if other != platform.name}

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory)
        skipped = {name for name in names if name == "__pycache__" or name.endswith(".pyc")}
        if here == PACKAGE_ROOT:
            skipped |= {"cli", "testing.py", "infra"}
        if here == PACKAGE_ROOT / "platforms":
            skipped |= foreign & set(names)
        return skipped

    shutil.copytree(PACKAGE_ROOT, target, ignore=ignore)


def _vendor(lock: Path, target: Path, architecture: str) -> None:
    """Install the pinned manylinux wheels for Lambda's Python into the archive root, and nothing else."""
    machine = ARCHITECTURES[architecture]
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is not None:
        installer = [uv, "pip", "install", "--python-platform", f"{machine}-manylinux_2_17"]
    else:
        installer = [sys.executable, "-m", "pip", "install", "--platform", f"manylinux2014_{machine}"]
        # pip would compile timestamped .pyc files: `_compile_bytecode` makes reproducible ones instead.
        installer += ["--implementation", "cp", "--disable-pip-version-check", "--no-compile"]
    version = ".".join(map(str, RUNTIME_PYTHON))
    options = ["--quiet", "--target", str(target), "--python-version", version, "--only-binary", ":all:", "--no-deps"]
    result = subprocess.run([*installer, *options, "-r", str(lock)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ConfigurationError(f"installing the function's dependencies failed: {result.stderr.strip()[-2000:]}")
    # Console scripts (and the install records that hash them) name the building machine's Python: of no use to
    # the function, and the one part of the archive that would depend on where it was built.
    shutil.rmtree(target / "bin", ignore_errors=True)
    for record in target.glob("*.dist-info/RECORD"):
        record.unlink()


def _compile_bytecode(staging: Path, runtime_root: str) -> None:
    """Compile every module of the archive for the runtime's Python. Checked-hash .pyc files stay valid whatever
    the files' times are (and are never used for a changed source); a fresh interpreter with a fixed hash seed
    writes the same bytes for the same sources; code is recorded under `runtime_root`, so tracebacks show the
    deployed files. Built by another Python, .pyc files would be useless: the archive then ships none."""
    if sys.version_info[:2] != RUNTIME_PYTHON:
        return
    command = [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "checked-hash", "-d", runtime_root]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run([*command, str(staging)], capture_output=True, text=True, env=environment, check=False)
    if result.returncode != 0:
        raise ConfigurationError(f"compiling the function's modules failed: {result.stdout.strip()[-2000:]}")


def _zip(source: Path, output: Path) -> int:
    # The only __pycache__ directories in the staging tree are those `_compile_bytecode` wrote.
    paths = sorted(p for p in source.rglob("*") if p.is_file())
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            entry = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=_ZIP_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    return len(paths)

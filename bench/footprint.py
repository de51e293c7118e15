"""Cold start and footprint of a function entry point, measured in fresh processes. The machinery behind
`bench.aws.footprint`, `bench.gcp.footprint` and `bench.azure.footprint` (each says what its platform runs).

- **Package.** The platform's archive, built by `push_pools.packaging` (as `push-pool package` does) and unpacked;
  every process below runs from the unpacked archive, so what is measured is what is deployed.
- **Cold import.** A fresh interpreter times the import of what a cold start loads before it can answer: the
  handler module, its backend and the cloud SDK modules they load (some only on the first request). The baseline,
  timed the same way in the same run and interleaved with it, is the platform's SDK modules alone; the difference
  is what push-pools adds. Medians of `repeats` fresh processes.
- **Bytecode.** Python caches compiled modules (.pyc); whether they exist changes import times severalfold, so
  every process gets its own cache directory (PYTHONPYCACHEPREFIX) and writes nothing: "from bytecode" has every
  module compiled beforehand; "as packaged" has compiled only what the platform brings compiled (its runtime, its
  SDK, requirements it installs) plus the .pyc files the archive ships. Lambda runs from a read-only /var/task, so
  modules of the archive without a .pyc are compiled again at every cold start.
- **Peak RSS.** A fresh process imports the entry point, is handed one event of a kind (a webhook, a queue batch of
  10 runs, a tick that submits 10 due runs) exactly as the platform hands it, submits to the local fake of the
  cloud, and reports its peak resident set (Linux `VmHWM`, see `fresh_process.peak_rss_kib`). The runs are checked
  to have been submitted. Baseline: the SDK modules imported alone.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.figures import Figure
from push_pools.models import Deployment
from push_pools.orchestrators.local import LocalStore
from push_pools.packaging import build_package

REPO_ROOT = Path(__file__).resolve().parents[1]
IMPORT_TARGET_MS = 100.0
RSS_TARGET_MIB = 100.0
_IMPORT_CHILD = """\
import importlib, json, sys, time
names = sys.argv[1:]
before, timed = (names[: names.index("--")], names[names.index("--") + 1 :]) if "--" in names else ([], names)
for name in before:
    importlib.import_module(name)
each = {}
for name in timed:
    start = time.perf_counter()
    importlib.import_module(name)
    each[name] = (time.perf_counter() - start) * 1000
from bench.fresh_process import peak_rss_kib
print(json.dumps({"ms": sum(each.values()), "each": each, "rss_kb": peak_rss_kib(), "modules": sorted(sys.modules)}))
"""
DEPENDENCIES = ("pydantic.main", "tenacity", "pydantic_settings")
"""push-pools' own dependencies that every entry point imports, timed one after the other after the SDK."""
_CLOUD_SDKS = {"aws": ("boto3", "botocore"), "gcp": ("google", "functions_framework"), "azure": ("azure",)}


@dataclass(frozen=True)
class EntryPoint:
    """What a platform's function loads, and how a fresh process hands it one event (`invoke_module`)."""

    platform: str
    """As `push-pool package` names it: aws, gcp, azure."""
    handler_imports: tuple[str, ...]
    """The handler module, then what its first request imports lazily: the backend and its SDK modules."""
    sdk_imports: tuple[str, ...]
    """The platform's SDK modules that the function needs: the baseline."""
    invoke_module: str
    """`python -m <invoke_module> <scenario> <run id>...` imports the handler and hands it the scenario's event."""

    @property
    def foreign_sdks(self) -> tuple[str, ...]:
        return tuple(prefix for name, prefixes in _CLOUD_SDKS.items() if name != self.platform for prefix in prefixes)


@dataclass(frozen=True)
class Package:
    zip_path: Path
    root: Path
    zip_bytes: int
    unpacked_bytes: int
    files: int
    pyc_files: int


def build_and_unpack(platform: str, directory: Path) -> Package:
    archive = build_package(platform, directory / f"{platform}.zip").path
    root = (directory / platform).resolve()
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(root)
        members = [info for info in opened.infolist() if not info.is_dir()]
    return Package(
        zip_path=archive,
        root=root,
        zip_bytes=archive.stat().st_size,
        unpacked_bytes=sum(info.file_size for info in members),
        files=len(members),
        pyc_files=sum(1 for info in members if info.filename.endswith(".pyc")),
    )


class FreshProcesses:
    """Starts fresh interpreters in the unpacked package, each with a bytecode cache this benchmark controls."""

    def __init__(self, package: Package, scratch: Path, environ: dict[str, str] | None = None) -> None:
        self.package = package
        self.scratch = scratch
        self.environ = environ or {}
        self.compiled = scratch / "pycache-compiled"
        """Every module compiled (filled by `compile`)."""
        self.as_packaged = scratch / "pycache-as-packaged"

    def env(self, cache: Path, *, write: bool = False, extra: dict[str, str] | None = None) -> dict[str, str]:
        inherited = ("PYTHON", "PUSH_POOL_", "AWS_", "GOOGLE_", "AZURE_", "FUNCTION_")
        env = {key: value for key, value in os.environ.items() if not key.startswith(inherited)}
        env |= {"PYTHONPATH": f"{self.package.root}{os.pathsep}{REPO_ROOT}", "PYTHONPYCACHEPREFIX": str(cache)}
        if not write:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env | self.environ | (extra or {})

    def run(self, args: Sequence[str], cache: Path, *, write: bool = False) -> dict[str, Any]:
        """Run `python ARGS` in the unpacked package; its last line of output, as JSON."""
        result = subprocess.run(
            [sys.executable, *args],
            cwd=self.package.root,
            env=self.env(cache, write=write),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:3])} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return report

    def import_ms(
        self, modules: Sequence[str], cache: Path, *, write: bool = False, after: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Time importing `modules` (each, and in all) in a fresh process, once `after` are imported untimed."""
        return self.run(["-c", _IMPORT_CHILD, *after, "--", *modules], cache, write=write)

    def compile(self, entry: EntryPoint) -> None:
        """Fill both caches: everything compiled; and "as packaged" — the archive's own modules removed from it,
        then the .pyc files the archive ships put back."""
        self.import_ms((*entry.handler_imports, *entry.sdk_imports), self.compiled, write=True)
        shutil.rmtree(self.as_packaged, ignore_errors=True)
        shutil.copytree(self.compiled, self.as_packaged)
        mirror = self.as_packaged / self.package.root.relative_to(self.package.root.anchor)
        shutil.rmtree(mirror, ignore_errors=True)
        for shipped in self.package.root.rglob("__pycache__/*.pyc"):
            source_dir = shipped.parent.parent.relative_to(self.package.root)
            target = mirror / source_dir / shipped.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(shipped, target)


@contextmanager
def scratch_directory(platform: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"bench-footprint-{platform}-") as directory:
        yield Path(directory).resolve()


def package_figures(platform: str, package: Package) -> list[Figure]:
    return [
        Figure(platform, "function package: zip size", package.zip_bytes / 2**20, "MiB"),
        Figure(platform, "  unpacked", package.unpacked_bytes / 2**20, "MiB"),
        Figure(platform, "  files (of which .pyc)", package.files, f"files ({package.pyc_files} .pyc)"),
    ]


def import_figures(entry: EntryPoint, processes: FreshProcesses, repeats: int, sdk_label: str) -> list[Figure]:
    """The handler and its SDK alone, interleaved; then handler - SDK measured directly, in one process that imports
    the SDK first (the difference of two medians of separate processes is twice as noisy), from bytecode and as
    packaged; and what push-pools' dependencies take of it."""
    samples: dict[str, list[float]] = {"handler": [], "sdk": [], "extra": [], "extra packaged": []}
    dependencies = []
    for _ in range(repeats):
        samples["handler"].append(processes.import_ms(entry.handler_imports, processes.compiled)["ms"])
        samples["sdk"].append(processes.import_ms(entry.sdk_imports, processes.compiled)["ms"])
        sdk = entry.sdk_imports
        samples["extra"].append(processes.import_ms(entry.handler_imports, processes.compiled, after=sdk)["ms"])
        packaged = processes.import_ms(entry.handler_imports, processes.as_packaged, after=sdk)["ms"]
        samples["extra packaged"].append(packaged)
        dependencies.append(processes.import_ms(DEPENDENCIES, processes.compiled, after=sdk)["each"])
    m = {key: statistics.median(values) for key, values in samples.items()}
    each = {module: statistics.median(sample[module] for sample in dependencies) for module in DEPENDENCIES}
    target = f"≤ {IMPORT_TARGET_MS:.0f} ms"
    name = entry.platform
    extra, packaged = m["extra"], m["extra packaged"]
    return [
        Figure(name, f"cold import, baseline: {sdk_label} alone (median of {repeats} fresh processes)", m["sdk"], "ms"),
        Figure(name, "cold import: handler, its backend and their SDK", m["handler"], "ms"),
        Figure(name, "  difference of the two medians", m["handler"] - m["sdk"], "ms"),
        Figure(name, "handler - SDK: handler imported after its SDK, from bytecode", extra, "ms", target,
               extra <= IMPORT_TARGET_MS),
        Figure(name, "  of which pydantic (pydantic.main)", each["pydantic.main"], "ms"),
        Figure(name, "  of which tenacity", each["tenacity"], "ms"),
        Figure(name, "  of which pydantic-settings (with what it imports)", each["pydantic_settings"], "ms"),
        Figure(name, "handler - SDK as packaged (modules without a shipped .pyc compiled)", packaged, "ms", target,
               packaged <= IMPORT_TARGET_MS),
    ]  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    runs: int
    """Due runs the event should submit."""


SCENARIOS = (
    Scenario("webhook", "one webhook (1 run)", 1),
    Scenario("batch", "one queue batch of 10 runs", 10),
    Scenario("tick", "one tick submitting 10 due runs", 10),
)


@dataclass
class Cloud:
    """The local stand-in for one platform's cloud: the env a function process needs to reach it, and the
    embedded store holding a pool of the platform's type (at `PUSH_POOL_HOME` in that env)."""

    environ: dict[str, str]
    store: LocalStore
    deployment: Deployment

    def schedule(self, count: int) -> list[str]:
        now = datetime.now(UTC)
        return [self.store.create_run(self.deployment, now - timedelta(seconds=1), now=now).id for _ in range(count)]

    def submitted(self, run_ids: Sequence[str]) -> int:
        return sum(1 for run_id in run_ids if self.store.get_run(run_id).infrastructure_pid)


def invoke(
    processes: FreshProcesses, entry: EntryPoint, scenario: Scenario, run_ids: Sequence[str], *, write: bool = False
) -> dict[str, Any]:
    """One fresh process handling one event; its report (peak RSS, times, other clouds' modules it loaded)."""
    report = processes.run(["-m", entry.invoke_module, scenario.name, *run_ids], processes.compiled, write=write)
    report["foreign"] = [module for module in report["modules"] if module.split(".")[0] in entry.foreign_sdks]
    return report


def scenario_reports(
    entry: EntryPoint, processes: FreshProcesses, cloud: Cloud, repeats: int
) -> dict[str, list[dict[str, Any]]]:
    """Each scenario `repeats` times (after one run that fills the bytecode cache), its runs checked submitted."""
    reports: dict[str, list[dict[str, Any]]] = {}
    for scenario in SCENARIOS:
        reports[scenario.name] = []
        for attempt in range(repeats + 1):
            run_ids = cloud.schedule(scenario.runs)
            report = invoke(processes, entry, scenario, run_ids, write=attempt == 0)
            if cloud.submitted(run_ids) != len(run_ids):
                raise RuntimeError(f"{entry.platform} {scenario.name}: runs not submitted; answers {report['answers']}")
            if attempt:
                reports[scenario.name].append(report)
    return reports


def measure_entry_point(
    entry: EntryPoint, sdk_label: str, cloud: Callable[[Path], AbstractContextManager[Cloud]], quick: bool
) -> list[Figure]:
    """Every figure of one platform's entry point: package, cold import, peak RSS, first answer."""
    repeats, rss_repeats = (3, 1) if quick else (7, 2)
    with scratch_directory(entry.platform) as scratch:
        package = build_and_unpack(entry.platform, scratch)
        with cloud(scratch / "home") as world:
            processes = FreshProcesses(package, scratch, world.environ)
            processes.compile(entry)
            figures = package_figures(entry.platform, package)
            figures += import_figures(entry, processes, repeats, sdk_label)
            reports = scenario_reports(entry, processes, world, rss_repeats)
            sdk_rss = [processes.import_ms(entry.sdk_imports, processes.compiled)["rss_kb"] for _ in range(rss_repeats)]
    rss = {name: statistics.median(r["rss_kb"] for r in runs) / 1024 for name, runs in reports.items()}
    figures += rss_figures(entry, rss, statistics.median(sdk_rss) / 1024, sdk_label)
    first = statistics.median(r["import_ms"] + r["handle_ms"] for r in reports["webhook"])
    figures.append(Figure(entry.platform, "first webhook answered: import, clients, 1 run to the fake", first, "ms"))
    foreign = sorted({module for runs in reports.values() for r in runs for module in r["foreign"]})
    figures.append(
        Figure(entry.platform, "other clouds' SDK modules loaded", len(foreign), "modules", "0", not foreign)
    )
    return figures


def rss_figures(entry: EntryPoint, rss_mib: dict[str, float], sdk_rss_mib: float, sdk_label: str) -> list[Figure]:
    name = entry.platform
    figures = [Figure(name, f"peak RSS, baseline: {sdk_label} imported alone", sdk_rss_mib, "MiB")]
    for scenario in SCENARIOS:
        value = rss_mib[scenario.name]
        target = f"≤ {RSS_TARGET_MIB:.0f} MiB"
        figures.append(Figure(name, f"peak RSS: {scenario.label}", value, "MiB", target, value <= RSS_TARGET_MIB))
    return figures

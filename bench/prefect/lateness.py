"""Lateness of scheduled Prefect runs: from a run's scheduled start to the moment its infrastructure starts, for
push-pools' tick, push-pools' webhook (called by a Prefect automation) and a Prefect process worker, side by side
against one real Prefect server (from `.venv-prefect`) in one run.

Every path runs the same job: a tiny Python process that writes the time it started. The three pools get the same
schedule (offsets spread over a window), so their figures are comparable:

- tick: `tick(dispatcher, pool)` every PUSH_POOL_TICK_INTERVAL_SECONDS (default 60 s, the Terraform modules' rate);
- webhook: `push-pool serve`'s server; Prefect's automation calls it when each run is scheduled, and it holds the run
  in its delay queue until due (what SQS/Pub/Sub/Storage queue delays do in the clouds);
- worker: `prefect worker start --type process` with Prefect's defaults (it polls every 15 s).

    .venv/bin/python -m bench.prefect [--runs 24] [--window 180] [--tick-interval 60] [--burst]
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.figures import Figure, percentile, print_figures
from push_pools.backends import default_base_job_template
from push_pools.backends.base import RunContext
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import InfrastructureRef, WorkPool
from push_pools.orchestrators.prefect import PrefectOrchestrator
from push_pools.orchestrators.prefect.api import PrefectApi
from push_pools.orchestrators.prefect.automation import install_automation
from push_pools.orchestrators.prefect.schema import parse_time
from push_pools.platforms.local.backend import ProcessBackend
from push_pools.settings import Settings
from push_pools.tick import tick
from push_pools.triggers.http_server import LocalFunction
from tests.e2e.prefect.server import PREFECT_BIN, PrefectServer

SECRET = "bench-secret"
LEAD_SECONDS = 20.0
"""The first run is due this long after the runs are created, so every path has started."""
STAMP = (
    "import os, sys, time; "
    "open(os.path.join(sys.argv[1], os.environ['PREFECT__FLOW_RUN_ID']), 'w').write(repr(time.time()))"
)
"""The job: write the time the process started, in a file named after the run."""
PATHS = ("tick", "webhook", "worker")


class RecordingProcessBackend(ProcessBackend):
    """The process backend, noting when each submission returned: push-pools' "infrastructure submitted"."""

    def __init__(self, runs_dir: Path, submitted: dict[str, float]) -> None:
        super().__init__(runs_dir)
        self.submitted = submitted

    def submit(self, configuration: dict[str, Any], run: RunContext) -> InfrastructureRef:
        ref = super().submit(configuration, run)
        self.submitted.setdefault(run.flow_run_id, time.time())
        return ref


@dataclass
class Bench:
    server: PrefectServer
    work: Path
    orchestrator: PrefectOrchestrator
    settings: Settings
    submitted: dict[str, float] = field(default_factory=dict)
    tick_seconds: list[float] = field(default_factory=list)

    def backends(self) -> Backends:
        backend = RecordingProcessBackend(self.settings.home / "process", self.submitted)
        return Backends(self.settings, {"process": backend})

    @property
    def stamps(self) -> Path:
        return self.work / "stamps"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=24, help="runs per path")
    parser.add_argument("--window", type=float, default=180.0, help="seconds over which the runs are due")
    parser.add_argument("--tick-interval", type=float, default=60.0, help="seconds between ticks")
    parser.add_argument("--burst", action="store_true", help="make every run due at the same moment instead")
    args = parser.parse_args(argv)
    print_figures(measure(args.runs, 0.0 if args.burst else args.window, args.tick_interval))


def measure(runs: int, window: float, tick_interval: float) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as directory:
        work = Path(directory)
        server = PrefectServer(work / "server")
        server.start()
        try:
            return _measure(server, work, runs, window, tick_interval)
        finally:
            server.stop()


def _measure(server: PrefectServer, work: Path, runs: int, window: float, tick_interval: float) -> list[Figure]:
    settings = Settings(
        home=work / "push-pools",
        orchestrator="prefect",
        webhook_secret=SECRET,
        tick_interval_seconds=tick_interval,
        prefect_work_pools=["tick"],
    )
    orchestrator = PrefectOrchestrator(PrefectApi(server.connection()), served_pools=["tick"])
    bench = Bench(server, work, orchestrator, settings)
    bench.stamps.mkdir(parents=True)
    deployments = {path: _pool_and_deployment(bench, path) for path in PATHS}
    stop = threading.Event()
    worker = _start_worker(bench)
    function = _start_webhook(bench)
    ticker = threading.Thread(target=_tick_forever, args=(bench, stop), daemon=True)
    try:
        ticker.start()
        scheduled = _schedule(bench, deployments, runs, window)
        _wait_for_stamps(bench, scheduled, timeout=window + LEAD_SECONDS + tick_interval + 60)
    finally:
        stop.set()
        function.stop()
        _stop(worker)
        ticker.join(timeout=30)
        orchestrator.close()
    print(f"{runs} runs per path due over {window:.0f} s; tick every {tick_interval:.0f} s; worker: Prefect defaults")
    return _figures(bench, scheduled, runs, tick_interval)


def _pool_and_deployment(bench: Bench, path: str) -> str:
    """A `process` pool per path whose job is the stamp script; the worker's pool gets Prefect's own template."""
    api = bench.orchestrator.api
    if path == "worker":
        _prefect("work-pool", "create", path, "--type", "process", server=bench.server)
    else:
        template = default_base_job_template("process")
        bench.orchestrator.save_pool(WorkPool(name=path, type="process", base_job_template=template))
    flow = api.post("flows/", {"name": f"bench-{path}"})
    command = f"{sys.executable} -c {shlex.quote(STAMP)} {bench.stamps}"
    body = {"name": path, "flow_id": flow["id"], "work_pool_name": path, "job_variables": {"command": command}}
    return str(api.post("deployments/", body)["id"])


def _start_worker(bench: Bench) -> subprocess.Popen[bytes]:
    log = (bench.work / "worker.log").open("ab")
    return subprocess.Popen(
        [str(PREFECT_BIN / "prefect"), "worker", "start", "--pool", "worker", "--type", "process"],
        env={**os.environ, **bench.server.client_env()},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _start_webhook(bench: Bench) -> LocalFunction:
    """The local function; its own tick never fires during the run (the tick path is measured on its own)."""
    settings = Settings(
        home=bench.settings.home, webhook_secret=SECRET, tick_interval_seconds=24 * 3600, prefect_work_pools=["-"]
    )
    orchestrator = PrefectOrchestrator(PrefectApi(bench.server.connection()), served_pools=["-"])
    function = LocalFunction(Dispatcher(orchestrator, bench.backends(), settings), host="127.0.0.1", port=0)
    function.start()
    host, port = function.address
    install_automation(bench.orchestrator.api, "webhook", f"http://{host}:{port}/", SECRET)
    return function


def _tick_forever(bench: Bench, stop: threading.Event) -> None:
    dispatcher = Dispatcher(bench.orchestrator, bench.backends(), bench.settings)
    while not stop.is_set():
        started = time.monotonic()
        tick(dispatcher, "tick")
        bench.tick_seconds.append(time.monotonic() - started)
        stop.wait(bench.settings.tick_interval_seconds)


@dataclass(frozen=True)
class ScheduledRun:
    flow_run_id: str
    path: str
    due: datetime


def _schedule(bench: Bench, deployments: dict[str, str], runs: int, window: float) -> list[ScheduledRun]:
    """The same due times for every path (random offsets over the window, fixed seed)."""
    start = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
    rng = random.Random(7)
    offsets = sorted(rng.uniform(0, window) for _ in range(runs))
    scheduled = []
    for path, deployment_id in deployments.items():
        for offset in offsets:
            when = start + timedelta(seconds=offset)
            body = {"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": when.isoformat()}}}
            created = bench.orchestrator.api.post(f"deployments/{deployment_id}/create_flow_run", body)
            scheduled.append(ScheduledRun(created["id"], path, parse_time(created["expected_start_time"]) or when))
    return scheduled


def _wait_for_stamps(bench: Bench, scheduled: list[ScheduledRun], timeout: float) -> None:
    expected = {run.flow_run_id for run in scheduled}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not expected <= {p.name for p in bench.stamps.iterdir()}:
        time.sleep(1)


def _figures(bench: Bench, scheduled: list[ScheduledRun], runs: int, tick_interval: float) -> list[Figure]:
    """Lateness from each run's scheduled start to push-pools' submission (tick, webhook) and, for every path, to
    the moment the job's process started (which, for push-pools, includes the process backend's supervisor)."""
    late: dict[tuple[str, str], list[float]] = {}
    for run in scheduled:
        due = run.due.timestamp()
        if run.flow_run_id in bench.submitted:
            late.setdefault((run.path, "submitted"), []).append(bench.submitted[run.flow_run_id] - due)
        stamp = bench.stamps / run.flow_run_id
        if stamp.exists():
            late.setdefault((run.path, "process started"), []).append(float(stamp.read_text()) - due)
    figures = []
    for path in PATHS:
        for moment in ("submitted", "process started"):
            samples = late.get((path, moment), [])
            if path == "worker" and moment == "submitted":
                continue  # the worker's submission is the process start
            every = f" every {tick_interval:.0f} s" if path == "tick" else ""
            name = f"{path}{every}: due → {moment} ({len(samples)}/{runs})"
            for label, q in (("min", 0.0), ("p50", 0.5), ("p99", 0.99)):
                value = percentile(samples, q) if samples else float("nan")
                figures.append(Figure("prefect", f"{name} {label}", value, "s"))
    if bench.tick_seconds:
        figures.append(
            Figure(
                "prefect",
                f"one tick's duration, p50 of {len(bench.tick_seconds)}",
                percentile(bench.tick_seconds, 0.5),
                "s",
            )
        )
    return figures


def _prefect(*args: str, server: PrefectServer) -> None:
    subprocess.run(
        [str(PREFECT_BIN / "prefect"), *args],
        env={**os.environ, **server.client_env()},
        check=True,
        capture_output=True,
        timeout=120,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()

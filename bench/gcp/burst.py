"""Cloud Run benchmarks, through the real `google-cloud-run` REST client against the local fake.

1. **Calls per run.** Runs submitted one by one by a warm function instance: Cloud Run write calls per run (target 1),
   and what the first run of a new template and a new instance cost.
2. **A 300-run burst against the job-run quota.** 300 runs due at once arrive as Pub/Sub messages on 20 function
   instances (the module's max_instances, one message each at a time) with the settings the Terraform module
   deploys (10 tries per submission within a 30-second deadline). The fake enforces Cloud Run's 180 job runs a
   minute as a token bucket (180/min, 30 saved: a 10-second allowance) answering 429 without Retry-After (a hint
   the backend would honour but cannot count on). Time runs `scale` times fast: the bucket refills at 3 * scale
   per real second, and the dispatcher's backoff sleeps, its submit deadline and Pub/Sub's redelivery backoff
   are divided by scale. The quota floor is the least time the quota allows: (300 - 30 saved) / 3 per second =
   90 quota seconds. Reported: wall time / floor (target <= 1.1), failures (crashed, dead-lettered, duplicated or
   lost runs: target 0) and calls. Also measured: how many runs a second this machine submits with no quota at
   all; keep `scale * 3` well below it, or the benchmark measures the machine, not the quota.

    .venv/bin/python -m bench.gcp.burst [--repeats 3] [--scale 10] [--runs 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.figures import Figure, median_of, print_figures
from bench.gcp.pubsub import deliver
from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import Deployment, FlowRun, StateType, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.gcp.backend import CloudRunBackend
from push_pools.platforms.gcp.request import IDEMPOTENCY_ENV
from push_pools.settings import Settings
from push_pools.templating import set_variable_defaults
from push_pools.triggers.handling import RequestHandler
from push_pools.triggers.payloads import RunRequest
from tests.fakes.cloud_run import WRITE_METHODS, FakeCloudRun, TokenBucket, clients

QUOTA_PER_MINUTE = 180
QUOTA_SAVED = 30
INSTANCES = 20
SUBMIT_ATTEMPTS = 10
SUBMIT_DEADLINE_SECONDS = 30.0
"""The Terraform module's defaults (max_instances, submit_attempts, submit_deadline_seconds)."""
BENCH = "gcp"


@dataclass
class World:
    fake: FakeCloudRun
    store: LocalStore
    deployment: Deployment
    settings: Settings
    scale: float

    def handler(self) -> RequestHandler:
        """One function instance: its own store connection, Cloud Run clients and dispatcher."""
        jobs, executions = clients(self.fake)
        backend = CloudRunBackend(jobs, executions, call_timeout=10.0)
        store = LocalStore(self.settings.store_path)
        dispatcher = Dispatcher(
            store, Backends(self.settings, {"cloud-run": backend}), self.settings, sleep=self._sleep
        )
        return RequestHandler(dispatcher)

    def schedule(self, count: int) -> list[FlowRun]:
        now = datetime.now(UTC)
        return [self.store.create_run(self.deployment, now - timedelta(seconds=1), now=now) for _ in range(count)]

    def _sleep(self, seconds: float) -> None:
        time.sleep(seconds / self.scale)


@contextmanager
def world(*, scale: float = 1.0, quota: TokenBucket | None = None) -> Iterator[World]:
    with tempfile.TemporaryDirectory(prefix="bench-gcp-") as home, FakeCloudRun(seed=1, run_quota=quota) as fake:
        settings = Settings(
            home=Path(home), submit_attempts=SUBMIT_ATTEMPTS, submit_deadline_seconds=SUBMIT_DEADLINE_SECONDS / scale
        )
        store = LocalStore(settings.store_path)
        template = set_variable_defaults(
            default_base_job_template("cloud-run"),
            {"project": "bench-project", "image": "us-docker.pkg.dev/bench/flows:1"},
        )
        store.save_pool(WorkPool(name="bench", type="cloud-run", base_job_template=template))
        deployment = store.save_deployment(Deployment(id=str(uuid.uuid4()), name="burst", pool_name="bench"))
        try:
            yield World(fake, store, deployment, settings, scale)
        finally:
            store.close()


def calls_per_run(runs: int) -> dict[str, float]:
    with world() as w:
        handler = w.handler()
        first, *rest = w.schedule(runs)
        handler.handle_message(RunRequest(flow_run_id=first.id).to_message())
        first_writes, first_calls = w.fake.write_calls(), sum(w.fake.calls.values())
        w.fake.calls.clear()
        for run in rest:
            handler.handle_message(RunRequest(flow_run_id=run.id).to_message())
        steady_writes, steady_calls = w.fake.write_calls(), sum(w.fake.calls.values())
        w.fake.calls.clear()
        [late] = w.schedule(1)
        w.handler().handle_message(RunRequest(flow_run_id=late.id).to_message())  # a new instance, job exists
        return {
            "first run of a template: write calls": first_writes,
            "first run of a template: all calls": first_calls,
            "steady state: write calls per run": steady_writes / len(rest),
            "steady state: all calls per run": steady_calls / len(rest),
            "new instance, existing job: write calls": w.fake.write_calls(),
            "new instance, existing job: all calls": sum(w.fake.calls.values()),
        }


def burst(runs: int, scale: float) -> dict[str, float]:
    quota = TokenBucket(rate=QUOTA_PER_MINUTE / 60 * scale, capacity=QUOTA_SAVED)
    with world(scale=scale, quota=quota) as w:
        scheduled = w.schedule(runs)
        handlers = [w.handler() for _ in range(INSTANCES)]
        messages = [RunRequest(flow_run_id=run.id).to_message() for run in scheduled]
        outcome = deliver(handlers, messages, scale=scale)
        floor = max(0, runs - QUOTA_SAVED) / (QUOTA_PER_MINUTE / 60) / scale
        executions = w.fake.executions_by_key(IDEMPOTENCY_ENV)
        recorded = [w.store.get_run(run.id) for run in scheduled]
        submitted = [run for run in recorded if run.state.type is StateType.PENDING and run.infrastructure_pid]
        failures = len(outcome.dead_letters) + (runs - len(submitted)) + sum(n - 1 for n in executions.values())
        return {
            "time / quota floor": outcome.finished_at / floor,
            "failures (crashed, dead-lettered, lost, duplicated)": failures,
            "runs submitted": len(submitted),
            "RunJob calls per run (429s included)": w.fake.calls["RunJob"] / runs,
            "accepted write calls per run": sum(
                n for (method, status), n in w.fake.answers.items() if method in WRITE_METHODS and status == 200
            )
            / runs,
            "Pub/Sub redeliveries": outcome.refused,
            "wall seconds": outcome.finished_at,
            "quota floor seconds": floor,
        }


def capacity(runs: int) -> dict[str, float]:
    with world() as w:
        scheduled = w.schedule(runs)
        handlers = [w.handler() for _ in range(INSTANCES)]
        outcome = deliver(handlers, [RunRequest(flow_run_id=run.id).to_message() for run in scheduled], scale=1.0)
        return {"no quota: runs submitted per real second": runs / outcome.finished_at}


def measure(repeats: int, scale: float, runs: int) -> list[Figure]:
    figures = [
        Figure(BENCH, name, value, "", "= 1" if "steady state: write" in name else "", met(name, value))
        for name, value in median_of(repeats, lambda: calls_per_run(200)).items()
    ]
    figures += [Figure(BENCH, name, value, "") for name, value in median_of(repeats, lambda: capacity(runs)).items()]
    for name, value in median_of(repeats, lambda: burst(runs, scale)).items():
        target = {"time / quota floor": "<= 1.1", "failures (crashed, dead-lettered, lost, duplicated)": "= 0"}
        figures.append(Figure(BENCH, f"{runs}-run burst: {name}", value, "", target.get(name, ""), met(name, value)))
    return figures


def met(name: str, value: float) -> bool | None:
    if name == "steady state: write calls per run":
        return value == 1
    if name == "time / quota floor":
        return value <= 1.1
    if name.startswith("failures"):
        return value == 0
    return None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gcp.burst", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="medians over this many repeats")
    parser.add_argument("--scale", type=float, default=10.0, help="how many times faster than real time the burst runs")
    parser.add_argument("--runs", type=int, default=300, help="runs in the burst")
    options = parser.parse_args()
    print(
        f"Cloud Run, medians of {options.repeats} repeats; burst: {options.runs} runs, {INSTANCES} instances, "
        f"quota {QUOTA_PER_MINUTE}/min with {QUOTA_SAVED} saved, time x{options.scale:g} "
        f"(quota {QUOTA_PER_MINUTE / 60 * options.scale:g} runs per real second)"
    )
    print_figures(measure(options.repeats, options.scale, options.runs))


if __name__ == "__main__":
    main()

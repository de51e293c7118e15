"""ECS: push-pools beside Prefect's own ECS worker (prefect-aws 0.7.7 on Prefect 3.6.29), on one moto server and
one Prefect server, with the same code driving both sides.

The set-up is the same for both (see `world`):

- One Prefect server provides the runs. Each side gets its own pool with Prefect's default ECS base job template
  (its `cluster` and `image` set as pool defaults, nothing else), one deployment, and runs made the same way, due at
  once. The worker's pool has type `ecs`; push-pools' has type `ecs:push` and is served through the Prefect
  orchestrator (PUSH_POOL_ORCHESTRATOR=prefect), so both pay the same Prefect API costs for claims and records.
- One moto server behind `tests.fakes.aws_wire`: every ECS and EC2 call of either side is counted there, at the
  wire, by the access key that signed it. Both use the default VPC's subnets (the template names none), so both
  look them up. ECS's client-token idempotency (`tests.fakes.ecs_semantics`) is on for both (only push-pools sends
  tokens); in the burst, the same token buckets (`tests.fakes.ecs_limits`) answer ThrottlingException to both.
- Prefect's worker runs with its defaults in its own process, one poll at a time (`prefect_worker_driver`: the
  worker's own `get_and_submit_flow_runs`, until its runs are submitted). push-pools runs `tick(dispatcher, pool)`
  with its default settings; a new "instance" (a new Lambda execution environment) is a new dispatcher with new
  clients, as a new worker "process" is a new driver process. Polls and ticks follow each other at once: the
  worker's 15 s poll interval and the function's trigger latency are left out of every time here (bench.prefect
  measures lateness).

Measured, per side:
1. ECS calls for the first run (task definition not registered yet), the first run of a new process/instance (task
   definition registered), and warm runs; RegisterTaskDefinition calls per 100 runs (warm, and a new
   process/instance given 100 due runs at once); the time to submit 100 due runs (warm and new), from the start of
   the poll/tick until every run is submitted and its infrastructure id recorded in Prefect. No rate limits.
2. A burst of N runs due at once with the token buckets on. Each side is warm (it submitted one run of the
   deployment before the buckets were installed). Reported: time until every run is submitted or given up, the
   floor the buckets allow, their ratio, failed runs (CRASHED), runs left unsubmitted, runs given two tasks,
   throttles answered, polls/ticks needed (Prefect hands out at most 200 runs per poll or tick), and the requests
   each side sent to the Prefect API per run: all of them, and those the server carried out (a Prefect server on
   SQLite answers some writes 503 "database is locked" under a burst, and clients send them again).

Both sides reach ECS only as fast as the one Prefect server lets them claim and record runs (about 20 runs a second
for push-pools on this 2-core machine, less for the worker, which makes more Prefect calls per run): where that is
slower than ECS's launch rate, the burst's time / floor measures the Prefect server. `bench.aws` measures
push-pools' burst against the same buckets with the embedded store, where ECS is the only limit.

Creating the runs is the slow part of the set-up (Prefect validates each run's job variables: about 0.1 s a run
here); it is not timed.
"""

from __future__ import annotations

import itertools
import os
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
import pytest

from bench.figures import Figure
from bench.workers.world import PrefectWorker, PushPoolsInstance, Runs, environment, prefect_default_template
from push_pools.platforms.aws.backend import EcsBackend
from push_pools.settings import Settings
from push_pools.templating import set_variable_defaults
from tests.e2e.prefect.server import PrefectServer
from tests.fakes.aws_front import patch_moto_fargate_memory
from tests.fakes.aws_wire import AwsWire, WireCall
from tests.fakes.ecs_limits import EcsRateLimits
from tests.fakes.ecs_semantics import EcsClientTokens

BENCH = "workers"
CLUSTER = "bench"
REGION = "us-east-1"
IMAGE = "ghcr.io/example/flows:1"
WORKER, OURS = "Prefect ECS worker", "push-pools"
KEYS = {WORKER: "prefect-worker", OURS: "push-pools"}
WARM_RUNS = 10
MAX_ROUNDS = 10
TARGET_RATIO = 1.1
TARGET_PREFECT_CALLS = 2


class Submitter(Protocol):
    """A Prefect worker process or a push-pools instance: submits the due runs of its pool."""

    prefect_requests: Counter[str]
    """Requests sent to the Prefect API while submitting (`calls`), and those answered 503 (`busy`)."""

    def submit_due(self, max_rounds: int) -> tuple[float, int]: ...

    def stop(self) -> None: ...


@dataclass
class EcsBench:
    server: PrefectServer
    wire: AwsWire
    runs: Runs
    template: dict[str, Any]
    work: Path
    batch: int = 100
    """Runs in the timed batches."""
    _names: Iterator[int] = field(default_factory=itertools.count)

    def fresh_account(self, *layers: Any) -> None:
        """Forget every AWS resource, put these layers in front, and make the cluster."""
        self.wire.layers = list(layers)
        self.wire.reset_moto()
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="setup", aws_secret_access_key="x")
        session.client("ecs", endpoint_url=self.wire.endpoint).create_cluster(clusterName=CLUSTER)

    def pool_and_deployment(self, side: str) -> tuple[str, str]:
        name = f"{'worker' if side == WORKER else 'push'}-ecs-{next(self._names)}"
        self.runs.pool(name, "ecs", self.template, push=side == OURS)
        return name, self.runs.deployment(name)

    @contextmanager
    def submitter(self, side: str, pool: str) -> Iterator[Submitter]:
        """A new worker process or push-pools instance for the pool, stopped on the way out."""
        made: Submitter
        if side == WORKER:
            made = PrefectWorker("ecs", pool, self._worker_env(), self.work / f"{pool}.log")
        else:
            session = boto3.session.Session(
                region_name=REGION, aws_access_key_id=KEYS[OURS], aws_secret_access_key="bench"
            )
            settings = Settings(home=self.work / "push-pools", orchestrator="prefect", prefect_work_pools=[pool])
            backend = EcsBackend.from_session(session, settings)
            made = PushPoolsInstance(self.server, pool, "ecs", backend, settings)
        try:
            yield made
        finally:
            made.stop()

    def _worker_env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PREFECT_", "PUSH_POOL_"))}
        return {
            **inherited,
            **self.server.client_env(),
            "AWS_ENDPOINT_URL": self.wire.endpoint,
            "AWS_ACCESS_KEY_ID": KEYS[WORKER],
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
        }

    def submit(self, side: str, submitter: Submitter, deployment: str, count: int) -> Round:
        """Make `count` runs due, let the submitter submit them, and read what it did."""
        run_ids = self.runs.schedule(deployment, count)
        mark = self.wire.mark()
        seconds, rounds = submitter.submit_due(MAX_ROUNDS)
        return Round(run_ids, seconds, rounds, self.wire.calls(access_key=KEYS[side], since=mark))


@dataclass
class Round:
    run_ids: list[str]
    seconds: float
    rounds: int
    calls: list[WireCall]

    def count(self, action: str) -> int:
        return sum(1 for call in self.calls if call.action == action)

    def per_run(self, service: str = "ecs") -> float:
        return sum(1 for call in self.calls if call.service == service) / len(self.run_ids)

    def all_per_run(self) -> float:
        return len(self.calls) / len(self.run_ids)

    def tasks_per_run(self) -> Counter[str]:
        """Tasks ECS started, by the flow run named in their overrides (replayed client tokens start none)."""
        started: Counter[str] = Counter()
        for call in self.calls:
            if call.action == "ecs:RunTask" and call.status == 200 and not call.by_layer:
                for task in call.answer.get("tasks") or []:
                    started[_flow_run_id(task.get("overrides") or {})] += 1
        return started


def _flow_run_id(overrides: dict[str, Any]) -> str:
    for container in overrides.get("containerOverrides") or []:
        for variable in container.get("environment") or []:
            if variable.get("name") == "PREFECT__FLOW_RUN_ID":
                return str(variable.get("value"))
    return ""


# ---- 1. calls per run, registrations, time to submit 100 due runs ------------------------------------------------


def calls_and_timing(bench: EcsBench, side: str) -> dict[str, float]:
    bench.fresh_account(EcsClientTokens())
    pool, deployment = bench.pool_and_deployment(side)
    with bench.submitter(side, pool) as first:
        first_run = bench.submit(side, first, deployment, 1)
        warm = bench.submit(side, first, deployment, WARM_RUNS)
        warm_batch = bench.submit(side, first, deployment, bench.batch)
    with bench.submitter(side, pool) as second:
        new_instance = bench.submit(side, second, deployment, 1)
    with bench.submitter(side, pool) as third:
        new_batch = bench.submit(side, third, deployment, bench.batch)
    return {
        "first run": first_run.per_run(),
        "first run, all": first_run.all_per_run(),
        "new": new_instance.per_run(),
        "new, all": new_instance.all_per_run(),
        "warm": warm.per_run(),
        "warm, all": warm.all_per_run(),
        "register, warm batch": warm_batch.count("ecs:RegisterTaskDefinition") * 100 / bench.batch,
        "register, new batch": new_batch.count("ecs:RegisterTaskDefinition") * 100 / bench.batch,
        "seconds, warm batch": warm_batch.seconds,
        "seconds, new batch": new_batch.seconds,
    }


def call_rows(batch: int) -> list[tuple[str, str, str, str, Callable[[float], bool] | None]]:
    """Figure name, sample key, unit, and push-pools' target (the worker's rows carry none)."""
    return [
        ("ECS calls, first run (task definition not registered)", "first run", "calls/run", "", None),
        ("AWS calls, first run (ECS + EC2)", "first run, all", "calls/run", "", None),
        ("ECS calls, first run of a new instance/process", "new", "calls/run", "<= 3", lambda v: v <= 3),
        ("AWS calls, first run of a new instance/process", "new, all", "calls/run", "", None),
        (f"ECS calls per run, warm (mean of {WARM_RUNS})", "warm", "calls/run", "1", lambda v: v == 1),
        ("AWS calls per run, warm (ECS + EC2)", "warm, all", "calls/run", "", None),
        ("RegisterTaskDefinition calls per 100 runs, warm", "register, warm batch", "calls", "", None),
        (f"RegisterTaskDefinition calls per 100 runs, new instance/process given {batch}", "register, new batch",
         "calls", "", None),
        (f"time to submit {batch} due runs, warm", "seconds, warm batch", "s", "", None),
        (f"time to submit {batch} due runs, new instance/process", "seconds, new batch", "s", "", None),
    ]  # fmt: skip


def calls_figures(samples: dict[str, list[dict[str, float]]], batch: int) -> list[Figure]:
    figures = []
    for side in (OURS, WORKER):
        median = medians(samples[side])
        for name, key, unit, target, met in call_rows(batch):
            value = median[key]
            if side == OURS and met is not None:
                figures.append(Figure(BENCH, f"ecs, {side}: {name}", value, unit, target, met(value)))
            else:
                figures.append(Figure(BENCH, f"ecs, {side}: {name}", value, unit))
    for key, label in (("seconds, warm batch", "warm"), ("seconds, new batch", "new instance/process")):
        ratios = [w[key] / o[key] for w, o in zip(samples[WORKER], samples[OURS], strict=True) if o[key]]
        if ratios:
            name = f"ecs: time to submit {batch} due runs, {label}: worker / push-pools"
            figures.append(Figure(BENCH, name, statistics.median(ratios), "x"))
    return figures


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}


# ---- 2. the burst --------------------------------------------------------------------------------------------------


def burst(bench: EcsBench, side: str, runs: int) -> dict[str, float]:
    bench.fresh_account(EcsClientTokens())
    pool, deployment = bench.pool_and_deployment(side)
    with bench.submitter(side, pool) as submitter:
        bench.submit(side, submitter, deployment, 1)  # warm: the task definition exists and this side knows it
        run_ids = bench.runs.schedule(deployment, runs)
        limits = EcsRateLimits()  # full buckets, from now on
        bench.wire.layers = [limits, EcsClientTokens()]
        mark, before = bench.wire.mark(), Counter(submitter.prefect_requests)
        seconds, rounds = submitter.submit_due(MAX_ROUNDS)
        prefect = submitter.prefect_requests - before
    measured = Round(run_ids, seconds, rounds, bench.wire.calls(access_key=KEYS[side], since=mark))
    outcome = bench.runs.outcome(run_ids)
    floor = limits.floor_seconds(runs)
    tasks = measured.tasks_per_run()
    burst_ids = set(run_ids)
    return {
        "seconds": seconds,
        "floor": floor,
        "ratio": seconds / floor if floor else float("nan"),
        "failed": outcome.failed,
        "unsubmitted": outcome.unsubmitted,
        "duplicates": sum(count - 1 for run_id, count in tasks.items() if run_id in burst_ids and count > 1),
        "throttled": sum(limits.throttled.values()),
        "rounds": rounds,
        "prefect requests": prefect["calls"] / runs,
        "prefect calls": (prefect["calls"] - prefect["busy"]) / runs,
    }


def burst_figures(samples: dict[str, list[dict[str, float]]], runs: int) -> list[Figure]:
    figures = []
    for side in (OURS, WORKER):
        median = medians(samples[side])
        worst = {key: max(s[key] for s in samples[side]) for key in ("failed", "unsubmitted", "duplicates")}
        label = f"ecs, {side}: {runs}-run burst"
        prefect_calls = median["prefect calls"]
        calls_target, calls_met = f"<= {TARGET_PREFECT_CALLS}", prefect_calls <= TARGET_PREFECT_CALLS
        rows = [
            ("time until every run is submitted or given up", median["seconds"], "s", "", None),
            ("floor the token buckets allow", median["floor"], "s", "", None),
            ("time / floor", median["ratio"], "", f"<= {TARGET_RATIO}", median["ratio"] <= TARGET_RATIO),
            ("runs failed (CRASHED; worst repeat)", worst["failed"], "runs", "0", worst["failed"] == 0),
            ("runs left unsubmitted (worst repeat)", worst["unsubmitted"], "runs", "0", worst["unsubmitted"] == 0),
            ("runs given two tasks (worst repeat)", worst["duplicates"], "runs", "0", worst["duplicates"] == 0),
            ("ThrottlingExceptions answered", median["throttled"], "calls", "", None),
            ("Prefect requests per run, 503 retries included", median["prefect requests"], "calls/run", "", None),
            ("Prefect calls per run (503 answers apart)", prefect_calls, "calls/run", calls_target, calls_met),
            ("polls/ticks needed", median["rounds"], "", "", None),
        ]
        for name, value, unit, target, met in rows:
            if side == OURS and met is not None:
                figures.append(Figure(BENCH, f"{label}: {name}", value, unit, target, met))
            else:
                figures.append(Figure(BENCH, f"{label}: {name}", value, unit))
    ratios = [w["seconds"] / o["seconds"] for w, o in zip(samples[WORKER], samples[OURS], strict=True)]
    figures.append(Figure(BENCH, f"ecs: {runs}-run burst time: worker / push-pools", statistics.median(ratios), "x"))
    return figures


# ---- the whole comparison ------------------------------------------------------------------------------------------


def measure(
    server: PrefectServer,
    runs: Runs,
    work: Path,
    *,
    repeats: int = 1,
    batch: int = 100,
    burst_runs: int = 500,
    burst_repeats: int = 1,
    burst_only: bool = False,
) -> list[Figure]:
    """Both parts (only the burst when `burst_only`), on this Prefect server and a moto wire of their own."""
    monkeypatch = pytest.MonkeyPatch()
    patch_moto_fargate_memory(monkeypatch)
    template = set_variable_defaults(prefect_default_template("ecs"), {"cluster": CLUSTER, "image": IMAGE})
    calls: dict[str, list[dict[str, float]]] = {OURS: [], WORKER: []}
    bursts: dict[str, list[dict[str, float]]] = {OURS: [], WORKER: []}
    try:
        with AwsWire() as wire, environment({"AWS_ENDPOINT_URL": wire.endpoint, "AWS_DEFAULT_REGION": REGION}):
            bench = EcsBench(server, wire, runs, template, work, batch)
            for _ in range(0 if burst_only else repeats):
                for side in (OURS, WORKER):
                    calls[side].append(calls_and_timing(bench, side))
            for _ in range(burst_repeats):
                for side in (OURS, WORKER):
                    bursts[side].append(burst(bench, side, burst_runs))
    finally:
        monkeypatch.undo()
    return ([] if burst_only else calls_figures(calls, batch)) + burst_figures(bursts, burst_runs)

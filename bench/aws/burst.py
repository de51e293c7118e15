"""The ECS backend against a moto server behind ECS's rate limits (token buckets that answer ThrottlingException,
`tests.fakes.ecs_limits`) and ECS's client-token idempotency (`tests.fakes.ecs_semantics`).

1. Cloud calls per run: the first run ever (registers the task definition, looks up the default VPC), the first run
   of a cold instance when the family exists, and warm runs — counted from the boto3 calls the backend makes.
2. A burst: N runs due at once, submitted by one tick of one function instance (and, separately, by ticks of
   several instances at once, each with its own clients and pacer). Reported: the time until every run has a
   task, divided by the least time the buckets allow (the floor); runs left unsubmitted; runs with two tasks.

    .venv/bin/python -m bench.aws.burst [--runs 500] [--repeats 3] [--instances 4]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from bench.figures import Figure, print_figures
from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.jobs import run_context
from push_pools.models import Deployment, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.aws.backend import EcsBackend
from push_pools.settings import Settings
from push_pools.templating import set_variable_defaults
from push_pools.tick import tick
from tests.fakes.aws_front import ActionRecorder, AwsFront, patch_moto_fargate_memory
from tests.fakes.ecs_limits import EcsRateLimits
from tests.fakes.ecs_semantics import EcsClientTokens

CLUSTER = "push-pools"
REGION = "us-east-1"
TARGET_RATIO = 1.1


@dataclass
class Account:
    """One AWS account on the moto server: its ECS limits, and a function instance's session over it."""

    endpoint: str
    limits: EcsRateLimits

    def session(self) -> tuple[boto3.session.Session, ActionRecorder]:
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="bench", aws_secret_access_key="bench")
        AwsFront(self.limits, EcsClientTokens()).install(session)
        return session, ActionRecorder().install(session)


@contextmanager
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def fresh_account(endpoint: str) -> Account:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    account = Account(endpoint, EcsRateLimits())
    session, _ = account.session()
    session.client("ecs").create_cluster(clusterName=CLUSTER)
    return account


def store_with_runs(home: Path, runs: int, settings: Settings) -> LocalStore:
    store = LocalStore(settings.store_path)
    template = set_variable_defaults(default_base_job_template("ecs"), {"cluster": CLUSTER})
    store.save_pool(WorkPool(name="burst", type="ecs", base_job_template=template))
    deployment = store.save_deployment(
        Deployment(
            id=str(uuid.uuid4()),
            name="flows",
            pool_name="burst",
            image="ghcr.io/example/flows:1",
            command="python -m flows",
        )
    )
    now = datetime.now(UTC)
    for _ in range(runs):
        store.create_run(deployment, now, now=now)
    return store


# ---- calls per run ---------------------------------------------------------------------------------------------


def calls_per_run(endpoint: str, warm_runs: int) -> list[Figure]:
    account = fresh_account(endpoint)
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        store = store_with_runs(Path(home), 2 + warm_runs, settings)
        runs = store.scheduled_runs("burst", datetime.now(UTC), 2 + warm_runs)
        first_ever = submit_counted(account, store, settings, runs[:1])
        cold = submit_counted(account, store, settings, runs[1:2])
        warm = submit_counted(account, store, settings, runs[2:], warm_up=runs[1])
        store.close()
    return [
        Figure("aws", "calls, first run ever (register + VPC lookup)", first_ever, "calls/run"),
        Figure("aws", "calls, first run of a cold instance", cold, "calls/run"),
        Figure("aws", f"calls, warm runs (mean of {warm_runs})", warm, "calls/run", "1", warm == 1),
    ]


def submit_counted(
    account: Account, store: LocalStore, settings: Settings, runs: list[Any], warm_up: Any = None
) -> float:
    """Mean boto3 calls per run for these runs, on a new instance (warmed up by one run first, if given)."""
    session, recorder = account.session()
    dispatcher = Dispatcher(store, Backends(settings, {"ecs": EcsBackend.from_session(session, settings)}), settings)
    if warm_up is not None:
        pool = store.get_pool("burst")
        configuration = dispatcher.prepare(warm_up, pool).configuration
        dispatcher.backends.for_type("ecs").submit(configuration, run_context(warm_up, resubmission=True))
    before = recorder.total()
    for run in runs:
        dispatcher.submit(run)
    return (recorder.total() - before) / len(runs)


# ---- the burst -------------------------------------------------------------------------------------------------


def burst(endpoint: str, runs: int, instances: int) -> dict[str, float]:
    """Submit `runs` due runs with `instances` function instances ticking at once; time, floor and damage."""
    account = fresh_account(endpoint)
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), tick_batch_size=runs)
        store = store_with_runs(Path(home), runs, settings)
        dispatchers = []
        for _ in range(instances):
            session, _ = account.session()
            backends = Backends(settings, {"ecs": EcsBackend.from_session(session, settings)})
            dispatchers.append(Dispatcher(LocalStore(settings.store_path), backends, settings))
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=instances) as pool:
            list(pool.map(tick, dispatchers))
        elapsed = time.monotonic() - started
        unsubmitted = sum(1 for run in store.list_runs(limit=runs) if run.infrastructure_pid is None)
        store.close()
    tasks = all_tasks(account)
    per_run: dict[str, int] = {}
    for task in tasks:
        per_run[task["startedBy"]] = per_run.get(task["startedBy"], 0) + 1
    floor = account.limits.floor_seconds(runs)
    return {
        "seconds": elapsed,
        "floor": floor,
        "ratio": elapsed / floor if floor else float("nan"),
        "unsubmitted": unsubmitted,
        "duplicates": sum(count - 1 for count in per_run.values()),
        "throttled": float(sum(account.limits.throttled.values())),
    }


def all_tasks(account: Account) -> list[dict[str, Any]]:
    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=account.endpoint,
                       aws_access_key_id="bench", aws_secret_access_key="bench")  # fmt: skip
    arns = [arn for page in ecs.get_paginator("list_tasks").paginate(cluster=CLUSTER) for arn in page["taskArns"]]
    return [task for i in range(0, len(arns), 100) for task in
            ecs.describe_tasks(cluster=CLUSTER, tasks=arns[i : i + 100])["tasks"]]  # fmt: skip


def burst_figures(endpoint: str, runs: int, instances: int, repeats: int) -> list[Figure]:
    samples = [burst(endpoint, runs, instances) for _ in range(repeats)]
    median = {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}
    label = f"{runs}-run burst, {instances} instance{'s' if instances > 1 else ''}"
    unsubmitted = max(sample["unsubmitted"] for sample in samples)
    duplicated = max(sample["duplicates"] for sample in samples)
    met = median["ratio"] <= TARGET_RATIO if instances == 1 else None
    return [
        Figure("aws", f"{label}: time to all submitted", median["seconds"], "s"),
        Figure("aws", f"{label}: floor the buckets allow", median["floor"], "s"),
        Figure(
            "aws", f"{label}: time / floor", median["ratio"], "", f"<= {TARGET_RATIO}" if instances == 1 else "", met
        ),
        Figure("aws", f"{label}: runs left to a later try (worst repeat)", unsubmitted, "runs", "0", unsubmitted == 0),
        Figure("aws", f"{label}: runs with two tasks (worst repeat)", duplicated, "runs", "0", duplicated == 0),
        Figure("aws", f"{label}: ThrottlingExceptions answered", median["throttled"], "calls"),
    ]


def measure(runs: int = 500, repeats: int = 3, instances: int = 4) -> list[Figure]:
    """Calls per run, then the burst with one instance and (unless `instances` < 2) with several."""
    monkeypatch = pytest.MonkeyPatch()
    patch_moto_fargate_memory(monkeypatch)
    monkeypatch.setenv("AWS_DEFAULT_REGION", os.environ.get("AWS_DEFAULT_REGION", REGION))
    try:
        with moto_server() as endpoint:
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
            figures = calls_per_run(endpoint, warm_runs=20)
            figures += burst_figures(endpoint, runs, 1, repeats)
            if instances > 1:
                figures += burst_figures(endpoint, runs, instances, repeats)
    finally:
        monkeypatch.undo()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="runs in the burst")
    parser.add_argument("--repeats", type=int, default=3, help="bursts per scenario (medians are printed)")
    parser.add_argument("--instances", type=int, default=4, help="function instances in the second scenario (0: skip)")
    args = parser.parse_args()
    print_figures(measure(args.runs, args.repeats, args.instances))


if __name__ == "__main__":
    main()

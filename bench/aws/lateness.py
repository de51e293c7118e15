"""Lateness of the Lambda entry point: from a run's scheduled start to the RunTask call that starts its task, for
the three ways a run reaches the function. One warm function instance (`LambdaFunction`, the object the Lambda
handler builds once per instance) is handed events as Lambda hands them; ECS and SQS are moto's, in a
ThreadedMotoServer; the moment of each RunTask call is taken by a boto3 hook on the function's own session.

- **webhook**: the webhook arrives as the run becomes due (a Prefect automation on a run created to start now);
  what is measured is the function's own processing (Prefect's delivery and the network are not included).
- **delayed queue**: the webhook arrives while the run is due in 1 to `window` seconds; the function puts it on
  the run queue with SQS DelaySeconds (whole seconds, rounded up); a poller standing in for Lambda's SQS event
  source mapping receives it once visible (short polls every 50 ms: moto's long polls notice delayed messages only
  once a second, a moto artefact) and hands the batch to the function. Real time.
- **tick**: runs are due at random moments over `ticks` minutes; the EventBridge rule's `rate(1 minute)` event
  reaches the function at each minute. The waiting is simulated: the dispatcher's clock jumps to each tick's
  minute and then advances in real time while the tick works, so a figure is (the tick's minute - due time) +
  the tick's real processing until that run's RunTask call. EventBridge's own delivery delay is not included.

    .venv/bin/python -m bench.aws.lateness [--quick]
"""

from __future__ import annotations

import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from bench.aws.burst import CLUSTER, REGION, moto_server
from bench.aws.events import function_url_post, run_request, scheduled_event, sqs_batch
from bench.figures import Figure, percentile, run_alone
from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import Deployment, FlowRun, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.aws.backend import EcsBackend
from push_pools.platforms.aws.function import LambdaFunction, SqsEnqueue
from push_pools.settings import Settings
from push_pools.templating import set_variable_defaults
from tests.fakes.aws_front import patch_moto_fargate_memory

TOKEN = "bench-webhook-secret"
TICK_SECONDS = 60.0
POLL_SECONDS = 0.05
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


class SimulatedClock:
    """Real time, or, once `jump_to` is called, that moment plus the real time elapsed since the call."""

    def __init__(self) -> None:
        self._base: datetime | None = None
        self._started = 0.0

    def jump_to(self, moment: datetime) -> None:
        self._base, self._started = moment, time.perf_counter()

    def __call__(self) -> datetime:
        if self._base is None:
            return datetime.now(UTC)
        return self._base + timedelta(seconds=time.perf_counter() - self._started)


@dataclass
class Function:
    """One warm Lambda instance over moto, its store and the RunTask calls it made (run id → clock at the call)."""

    instance: LambdaFunction
    store: LocalStore
    deployment: Deployment
    clock: SimulatedClock
    sqs: Any
    queue_url: str
    calls: dict[str, list[datetime]] = field(default_factory=dict)

    def schedule(self, due: datetime) -> FlowRun:
        return self.store.create_run(self.deployment, due, now=datetime.now(UTC))

    def lateness(self, runs: list[FlowRun]) -> list[float]:
        return [
            (self.calls[run.id][0] - run.expected_start_time).total_seconds() for run in runs if run.id in self.calls
        ]

    def duplicates(self, runs: list[FlowRun]) -> int:
        return sum(len(self.calls.get(run.id, [])) - 1 for run in runs if run.id in self.calls)

    def webhook(self, run: FlowRun) -> dict[str, Any]:
        return self.instance(function_url_post(run_request(run.id), {"authorization": f"Bearer {TOKEN}"}))


@contextmanager
def lambda_function(endpoint: str, home: Path) -> Iterator[Function]:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    session = boto3.session.Session(region_name=REGION, **CREDENTIALS)
    session.client("ecs").create_cluster(clusterName=CLUSTER)
    sqs = session.client("sqs")
    queue_url = sqs.create_queue(QueueName="push-pools-runs")["QueueUrl"]
    settings = Settings(home=home, webhook_secret=TOKEN, tick_batch_size=1000)
    store = LocalStore(settings.store_path)
    template = set_variable_defaults(default_base_job_template("ecs"), {"cluster": CLUSTER})
    store.save_pool(WorkPool(name="ecs", type="ecs", base_job_template=template))
    deployment = store.save_deployment(
        Deployment(id=str(uuid.uuid4()), name="flows", pool_name="ecs", image="ghcr.io/example/flows:1")
    )
    clock = SimulatedClock()
    calls: dict[str, list[datetime]] = {}
    # Before the clients are made: each client copies the session's hooks when it is created.
    session.events.register("before-parameter-build.ecs.RunTask", _recorder(calls, clock))
    backends = Backends(settings, {"ecs": EcsBackend.from_session(session, settings)})
    dispatcher = Dispatcher(store, backends, settings, clock=clock)
    instance = LambdaFunction(dispatcher, enqueue=SqsEnqueue(lambda: sqs, queue_url))
    function = Function(instance, store, deployment, clock, sqs, queue_url, calls)
    try:
        yield function
    finally:
        store.close()


def _recorder(calls: dict[str, list[datetime]], clock: SimulatedClock) -> Callable[..., None]:
    def record(params: dict[str, Any], **_: Any) -> None:
        run_id = str(params.get("clientToken", ""))[:36]  # the token is "<run id>-<attempt>"
        calls.setdefault(run_id, []).append(clock())

    return record


# ---- the three paths -------------------------------------------------------------------------------------------


def webhook_path(function: Function, runs: int) -> list[FlowRun]:
    scheduled = []
    for _ in range(runs):
        run = function.schedule(datetime.now(UTC))
        function.webhook(run)
        scheduled.append(run)
    return scheduled


def delayed_queue_path(function: Function, runs: int, window: float) -> list[FlowRun]:
    now = datetime.now(UTC)
    rng = random.Random(11)
    offsets = sorted(rng.uniform(1.0, window) for _ in range(runs))
    scheduled = [function.schedule(now + timedelta(seconds=offset)) for offset in offsets]
    for run in scheduled:
        answer = function.webhook(run)
        if '"queued"' not in answer["body"]:
            raise RuntimeError(f"the webhook did not queue the run: {answer}")
    stop = threading.Event()
    poller = threading.Thread(target=_event_source_mapping, args=(function, stop), daemon=True)
    poller.start()
    deadline = time.monotonic() + window + 30
    while time.monotonic() < deadline and not all(run.id in function.calls for run in scheduled):
        time.sleep(0.1)
    stop.set()
    poller.join(timeout=10)
    return scheduled


def _event_source_mapping(function: Function, stop: threading.Event) -> None:
    """Receive up to 10 visible messages, hand them to the function as one SQS event, delete the handled ones."""
    while not stop.is_set():
        received = function.sqs.receive_message(QueueUrl=function.queue_url, MaxNumberOfMessages=10)
        messages = received.get("Messages", [])
        if not messages:
            time.sleep(POLL_SECONDS)
            continue
        answer = function.instance(sqs_batch([(m["MessageId"], m["Body"]) for m in messages]))
        failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            function.sqs.delete_message_batch(QueueUrl=function.queue_url, Entries=entries)


def tick_path(function: Function, runs: int, ticks: int) -> tuple[list[FlowRun], datetime]:
    """Runs due over `ticks` simulated minutes from an epoch a day away (so no real-time path sees them)."""
    epoch = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    window = ticks * TICK_SECONDS
    rng = random.Random(7)
    offsets = sorted(rng.uniform(0.0, window) for _ in range(runs))
    scheduled = [function.schedule(epoch + timedelta(seconds=offset)) for offset in offsets]
    for minute in range(1, ticks + 1):
        function.clock.jump_to(epoch + timedelta(seconds=minute * TICK_SECONDS))
        function.instance(scheduled_event())
    return scheduled, epoch


def tick_processing(function: Function, runs: list[FlowRun], epoch: datetime) -> list[float]:
    """The real part of each tick-path figure: from the tick's minute to the run's RunTask call."""
    return [
        (function.calls[run.id][0] - epoch).total_seconds() % TICK_SECONDS for run in runs if run.id in function.calls
    ]


# ---- figures ---------------------------------------------------------------------------------------------------


def path_figures(label: str, function: Function, runs: list[FlowRun], unit: str) -> list[Figure]:
    late = function.lateness(runs)
    scale = 1000.0 if unit == "ms" else 1.0
    missing = len(runs) - len(late)
    return [
        Figure("aws", f"lateness, {label}: p50 of {len(runs)} runs", statistics.median(late) * scale, unit),
        Figure("aws", f"lateness, {label}: p99", percentile(late, 0.99) * scale, unit),
        Figure("aws", f"  {label}: runs never submitted / submitted twice", missing + function.duplicates(runs),
               "runs", "0", missing + function.duplicates(runs) == 0),
    ]  # fmt: skip


def measure(quick: bool = False) -> list[Figure]:
    webhook_runs, queued_runs, window, tick_runs, ticks = (10, 8, 6.0, 30, 3) if quick else (50, 30, 20.0, 200, 10)
    monkeypatch = pytest.MonkeyPatch()
    patch_moto_fargate_memory(monkeypatch)
    try:
        with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="bench-aws-lateness-") as home:
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
            with lambda_function(endpoint, Path(home)) as function:
                webhook_path(function, 1)  # the instance's first run: task definition, default VPC
                figures = path_figures("webhook for a due run", function, webhook_path(function, webhook_runs), "ms")
                queued = delayed_queue_path(function, queued_runs, window)
                figures += path_figures(f"delayed queue, due in 1-{window:.0f} s (SQS DelaySeconds)", function,
                                        queued, "s")  # fmt: skip
                ticked, epoch = tick_path(function, tick_runs, ticks)
                figures += path_figures("tick every 60 s (simulated clock)", function, ticked, "s")
                processing = tick_processing(function, ticked, epoch)
                figures.append(Figure("aws", "  of which the tick's own work, tick start → RunTask: p99",
                                      percentile(processing, 0.99), "s"))  # fmt: skip
    finally:
        monkeypatch.undo()
    return figures


if __name__ == "__main__":
    run_alone(measure, "python -m bench.aws.lateness", __doc__)

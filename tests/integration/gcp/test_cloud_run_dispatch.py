"""The whole path on Cloud Run: store → dispatcher → backend → real `run_v2` clients → fake, with several function
instances at once, redelivered messages and injected failures. Counted: executions per run, runs lost."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from push_pools.cli import context, main
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.jobs import run_context
from push_pools.models import Deployment, FlowRun, StateType, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.gcp.backend import CloudRunBackend
from push_pools.platforms.gcp.logs import read_command
from push_pools.platforms.gcp.request import IDEMPOTENCY_ENV
from push_pools.settings import Settings
from push_pools.tick import tick
from push_pools.triggers.handling import RequestHandler
from push_pools.triggers.payloads import RunRequest
from tests.fakes.cloud_run import FakeCloudRun, Fault, clients, tasks_client

FIXTURES = Path(__file__).parents[2] / "fixtures" / "gcp"


@dataclass
class Instance:
    """One function instance: its own store connection, Cloud Run clients, backend and dispatcher."""

    store: LocalStore
    dispatcher: Dispatcher
    handler: RequestHandler


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, submit_attempts=3, submit_deadline_seconds=5, orphan_timeout_seconds=60)


@pytest.fixture
def deployment(settings: Settings, cloud_run_template: dict[str, Any]) -> Iterator[Deployment]:
    store = LocalStore(settings.store_path)
    store.save_pool(WorkPool(name="etl", type="cloud-run", base_job_template=cloud_run_template))
    yield store.save_deployment(Deployment(id=str(uuid.uuid4()), name="nightly", pool_name="etl", image="flows:1"))
    store.close()


@pytest.fixture
def instances(fake: FakeCloudRun, settings: Settings, deployment: Deployment) -> Iterator[list[Instance]]:
    made = []
    for _ in range(4):
        store = LocalStore(settings.store_path)
        jobs, executions = clients(fake)
        backend = CloudRunBackend(jobs, executions, tasks_client=tasks_client(fake), call_timeout=5.0)
        dispatcher = Dispatcher(store, Backends(settings, {"cloud-run": backend}), settings, sleep=lambda _: None)
        made.append(Instance(store, dispatcher, RequestHandler(dispatcher)))
    yield made
    for instance in made:
        instance.store.close()


def schedule(store: LocalStore, deployment: Deployment, count: int) -> list[FlowRun]:
    now = datetime.now(UTC)
    return [store.create_run(deployment, now - timedelta(seconds=1), now=now) for _ in range(count)]


def deliver_until_acknowledged(instances: list[Instance], deliveries: list[str], *, rounds: int = 40) -> int:
    """Deliver every message to the instances at once; redeliver each one not acknowledged, as Pub/Sub does."""
    pending = list(deliveries)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for round_number in range(rounds):
            if not pending:
                return round_number
            targets = [instances[(i + round_number) % len(instances)] for i in range(len(pending))]
            replies = list(
                pool.map(lambda message, instance: instance.handler.handle_message(message), pending, targets)
            )
            pending = [message for message, reply in zip(pending, replies, strict=True) if not reply.acknowledged]
    raise AssertionError(f"{len(pending)} message(s) never acknowledged")


def assert_one_execution_per_run(fake: FakeCloudRun, store: LocalStore, runs: list[FlowRun]) -> None:
    by_key = fake.executions_by_key(IDEMPOTENCY_ENV)
    assert sorted(by_key) == sorted(run.idempotency_key for run in runs), "every run started"
    assert set(by_key.values()) == {1}, f"duplicates: { {k: n for k, n in by_key.items() if n > 1} }"
    for run in runs:
        recorded = store.get_run(run.id)
        assert recorded.state.type is StateType.PENDING
        assert recorded.infrastructure_pid in fake.executions


def test_redelivery_storm_makes_exactly_one_execution_per_run(
    fake: FakeCloudRun, instances: list[Instance], deployment: Deployment
) -> None:
    runs = schedule(instances[0].store, deployment, 30)
    fake.inject(Fault(503, method="RunJob", probability=0.3, after=1.0))  # started, but the answer was lost
    messages = [RunRequest(flow_run_id=run.id).to_message() for run in runs] * 5
    deliver_until_acknowledged(instances, messages)
    assert_one_execution_per_run(fake, instances[0].store, runs)
    assert fake.lost_responses["RunJob"] > 0, "the storm included lost responses"
    assert fake.calls["ListExecutions"] > 0, "lost responses were followed by lookups"


def test_thirty_percent_throttled_or_failing_calls_lose_no_run_and_start_none_twice(
    fake: FakeCloudRun, instances: list[Instance], deployment: Deployment
) -> None:
    runs = schedule(instances[0].store, deployment, 60)
    fake.inject(Fault((429, 503), probability=0.3, after=0.5))
    messages = [RunRequest(flow_run_id=run.id).to_message() for run in runs] * 2
    deliver_until_acknowledged(instances, messages)
    assert_one_execution_per_run(fake, instances[0].store, runs)
    failed = sum(count for (_, status), count in fake.answers.items() if status in (429, 503))
    # Threads interleave, so the seeded draws vary a little between runs; 0.15 is 4 sigma under 0.3 here.
    assert failed >= 0.15 * sum(fake.answers.values())
    assert fake.lost_responses["RunJob"] > 0, "some runs started although their RunJob answered an error"


def test_an_orphan_whose_execution_started_is_adopted_by_the_tick(
    fake: FakeCloudRun, instances: list[Instance], deployment: Deployment, settings: Settings
) -> None:
    store = instances[0].store
    [run] = schedule(store, deployment, 1)
    dying = instances[0].dispatcher
    store.claim_run(run, datetime.now(UTC), None)
    job = dying.prepare(run, store.get_pool("etl"))
    pid = dying.backends.for_type("cloud-run").submit(job.configuration, run_context(run)).infrastructure_pid
    # ... and the instance died before recording it. Later, another instance's tick:
    later = datetime.now(UTC) + timedelta(seconds=settings.orphan_timeout_seconds + 5)
    survivor = Dispatcher(store, instances[1].dispatcher.backends, settings, clock=lambda: later, sleep=lambda _: None)
    report = tick(survivor)
    assert store.get_run(run.id).infrastructure_pid == pid
    assert fake.executions_by_key(IDEMPOTENCY_ENV)[run.idempotency_key] == 1
    assert [outcome.status for outcome in report.outcomes] == ["submitted"]
    assert "adopted" in (report.outcomes[0].message or "")


def test_the_tick_follows_executions_to_the_end(
    fake: FakeCloudRun, instances: list[Instance], deployment: Deployment
) -> None:
    dispatcher, store = instances[0].dispatcher, instances[0].store
    ok, failing, cancelled = schedule(store, deployment, 3)
    for run in (ok, failing, cancelled):
        assert dispatcher.submit_run(run.id).status == "submitted"
    pid = {run.id: store.get_run(run.id).infrastructure_pid for run in (ok, failing, cancelled)}
    for execution in pid.values():
        fake.start_execution(execution)
    assert tick(dispatcher).state_changes == 3
    assert {store.get_run(run.id).state.type for run in (ok, failing, cancelled)} == {StateType.RUNNING}
    fake.finish(pid[ok.id])
    reason = "Task pp-job-task0 failed with message: The container exited with an error."
    fake.finish(pid[failing.id], succeeded=False, message=reason, exit_code=3)
    store.request_cancellation(cancelled.id)
    report = tick(dispatcher)
    assert report.cancelled == 1
    assert store.get_run(ok.id).state.type is StateType.COMPLETED
    crashed = store.get_run(failing.id).state
    assert crashed.type is StateType.CRASHED
    link = fake.executions[pid[failing.id]]["logUri"] + "%0Alabels.%22run.googleapis.com/task_index%22%3D%220%22"
    assert link.startswith("https://console.cloud.google.com/logs/viewer?project=")
    assert crashed.message == f"Infrastructure exited with code 3: Cloud Run execution failed: {reason}; logs: {link}"
    assert store.get_run(cancelled.id).state.type is StateType.CANCELLED
    assert fake.executions[pid[cancelled.id]]["cancelledCount"] == 1
    fake.calls.clear()
    assert tick(dispatcher).state_changes == 0, "terminal states are sticky"
    assert fake.calls["GetExecution"] == 0, "finished runs are not polled again"


def test_a_permanent_refusal_crashes_the_run_with_the_reason(
    fake: FakeCloudRun, instances: list[Instance], deployment: Deployment
) -> None:
    [run] = schedule(instances[0].store, deployment, 1)
    fake.inject(Fault(400, method="RunJob"))
    outcome = instances[0].dispatcher.submit_run(run.id)
    assert outcome.status == "crashed"
    state = instances[0].store.get_run(run.id).state
    assert state.type is StateType.CRASHED
    assert "HTTP 400" in (state.message or "")
    assert fake.calls["RunJob"] == 1, "a permanent error is not retried"


def test_the_functions_account_denied_leaves_the_run_scheduled_and_the_pool_not_ready(
    fake: FakeCloudRun, instances: list[Instance], deployment: Deployment
) -> None:
    [run] = schedule(instances[0].store, deployment, 1)
    fake.inject(Fault(403, method="RunJob"))
    outcome = instances[0].dispatcher.submit_run(run.id)
    assert outcome.status == "not-ready"
    store = instances[0].store
    assert store.get_run(run.id).state.type is StateType.SCHEDULED
    assert "serviceAccountUser" in (store.get_pool(deployment.pool_name).not_ready_reason or "")
    assert fake.calls["RunJob"] == 1, "a refusal is not retried"


def test_a_prefect_cloud_run_v2_template_submits_unchanged(
    fake: FakeCloudRun, settings: Settings, tmp_path: Path
) -> None:
    template = json.loads((FIXTURES / "prefect-cloud-run-v2-template.json").read_text())
    store = LocalStore(tmp_path / "prefect-shaped.db")
    store.save_pool(WorkPool(name="prefect-v2", type="cloud-run-v2:push", base_job_template=template))
    deployment = store.save_deployment(
        Deployment(
            id=str(uuid.uuid4()),
            name="etl",
            pool_name="prefect-v2",
            image="us-docker.pkg.dev/proj-1/flows/etl:3",
            command="prefect flow-run execute",
            job_variables={"prefect_api_key_secret": {"secret": "prefect-api-key"}, "args": ["--verbose"]},
        )
    )
    jobs, executions = clients(fake)
    backend = CloudRunBackend(jobs, executions, default_project="proj-1", call_timeout=5.0)
    dispatcher = Dispatcher(store, Backends(settings, {"cloud-run": backend}), settings, sleep=lambda _: None)
    [run] = schedule(store, deployment, 1)
    outcome = dispatcher.submit_run(run.id)
    assert outcome.status == "submitted", outcome.message
    execution = fake.executions[store.get_run(run.id).infrastructure_pid]
    container = execution["template"]["containers"][0]
    assert container["image"] == "us-docker.pkg.dev/proj-1/flows/etl:3"
    assert container["command"] == ["prefect", "flow-run", "execute"]
    assert container["args"] == ["--verbose"]
    assert execution["template"]["timeout"] == "600s"
    assert {
        "name": "PREFECT_API_KEY",
        "valueSource": {"secretKeyRef": {"secret": "prefect-api-key", "version": "latest"}},
    } in container["env"]
    job = fake.jobs[execution["job"]]
    assert job["client"] == "prefect"
    assert execution["job"].startswith("projects/proj-1/locations/us-central1/jobs/pp-prefect-v2-")
    store.close()


def test_runs_logs_prints_the_gcloud_command_for_a_cloud_run_run(
    instances: list[Instance],
    deployment: Deployment,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (run,) = schedule(instances[0].store, deployment, 1)
    pid = instances[0].dispatcher.submit_run(run.id).infrastructure_pid or ""
    user = {"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}
    (tmp_path / "adc.json").write_text(json.dumps(user))  # credentials the CLI's clients are built with, never used
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "adc.json"))
    monkeypatch.setenv("PUSH_POOL_HOME", str(settings.home))
    context.reset()
    capsys.readouterr()
    assert main(["runs", "logs", run.id, "--follow"]) == 0
    assert capsys.readouterr().out == read_command(pid) + "\n"

"""Faults beside a healthy pool: each one is contained where it happens, logged once with the ids, and the healthy
pool's runs are submitted all the same. The executor's own faults leave runs SCHEDULED and the pool NOT_READY; the
run's own faults CRASH it; anything unexpected answers (webhook 500) and never stops the tick."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from push_pools.backends import default_base_job_template
from push_pools.backends.base import RunContext
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import Deployment, FlowRun, StateType, SubmissionStatus, WorkPool, WorkPoolStatus
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend
from push_pools.tick import tick
from push_pools.triggers.auth import WebhookAuthenticator
from push_pools.triggers.handling import RequestHandler
from push_pools.triggers.webhook import Webhook
from tests.conftest import MEMORY_TEMPLATE, ScheduleRun, without_aws_region

SECRET = "s3cret-token"
AUTH = {"Authorization": f"Bearer {SECRET}"}


def faulty_run(store: LocalStore, pool_type: str, *, command: str = "echo hi", template: Any = None) -> FlowRun:
    """A due run in a pool named `faulty` of `pool_type`."""
    store.save_pool(WorkPool(name="faulty", type=pool_type, base_job_template=template or MEMORY_TEMPLATE))
    deployment = store.save_deployment(
        Deployment(id=str(uuid.uuid4()), name="faulty-deploy", pool_name="faulty", command=command, image="img")
    )
    now = datetime.now(UTC)
    return store.create_run(deployment, now - timedelta(seconds=1), now=now)


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info]


def assert_healthy_pool_submitted(store: LocalStore, healthy: list[FlowRun], backend: InMemoryBackend) -> None:
    assert {store.get_run(run.id).state.type for run in healthy} == {StateType.PENDING}
    assert all(store.get_run(run.id).infrastructure_pid for run in healthy)
    assert backend.calls["submit"] == len(healthy)


def hide_module(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make `import name` fail as if its distribution were not installed."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pool_type", "environment", "reason"),
    [
        pytest.param(
            "aci",
            lambda mp: (
                mp.delitem(sys.modules, "push_pools.platforms.azure.backend", raising=False),
                hide_module(mp, "azure.mgmt.containerinstance", "azure.identity", "azure.core"),
            ),
            "install push-pools[azure]",
            id="missing-extra",
        ),
        pytest.param(
            "ecs",
            without_aws_region,
            "NoRegionError",
            id="no-region",
        ),
    ],
)
def test_an_executor_that_cannot_serve_a_pool_leaves_its_runs_scheduled_and_the_pool_not_ready(
    dispatcher: Dispatcher,
    backend: InMemoryBackend,
    store: LocalStore,
    schedule_run: ScheduleRun,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    pool_type: str,
    environment: Callable[[pytest.MonkeyPatch], object],
    reason: str,
) -> None:
    environment(monkeypatch)
    healthy = [schedule_run(), schedule_run()]
    waiting = faulty_run(store, pool_type)
    with caplog.at_level(logging.INFO, logger="push_pools"):
        report = tick(dispatcher)
    assert_healthy_pool_submitted(store, healthy, backend)
    assert store.get_run(waiting.id).state.type is StateType.SCHEDULED
    faulty = store.get_pool("faulty")
    assert faulty.status(datetime.now(UTC), timedelta(minutes=1)) is WorkPoolStatus.NOT_READY
    assert faulty.not_ready_reason is not None
    assert reason in faulty.not_ready_reason
    assert len(report.errors) == 1
    assert "pool 'faulty' is not ready" in report.errors[0]
    assert tracebacks(caplog) == []
    assert [r.message for r in caplog.records if r.levelno == logging.WARNING and r.__dict__.get("pool") == "faulty"]


def test_a_pool_is_ready_again_once_the_executor_is_fixed(
    dispatcher: Dispatcher, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_aws_region(monkeypatch)
    faulty_run(store, "ecs")
    tick(dispatcher)
    assert store.get_pool("faulty").not_ready_reason is not None
    dispatcher.backends = Backends(dispatcher.settings, {"ecs": InMemoryBackend()})
    report = tick(dispatcher)
    assert report.counts() == {"submitted": 1}
    assert store.get_pool("faulty").status(datetime.now(UTC), timedelta(minutes=1)) is WorkPoolStatus.READY


def test_credentials_refused_at_submission_give_the_run_back_and_spare_the_rest_of_the_batch(
    store: LocalStore, settings: Settings, backend: InMemoryBackend, schedule_run: ScheduleRun
) -> None:
    from botocore.exceptions import NoCredentialsError

    from push_pools.platforms.aws.errors import translate

    def refuse(operation: str, run: RunContext | None) -> None:
        raise translate(NoCredentialsError(), "ecs:RunTask")

    refusing = InMemoryBackend(fail=refuse)
    dispatcher = Dispatcher(store, Backends(settings, {"process": backend, "ecs": refusing}), settings)
    healthy = [schedule_run()]
    waiting = [faulty_run(store, "ecs")]
    deployment = store.get_deployment_by_name("faulty-deploy")
    now = datetime.now(UTC)
    waiting += [store.create_run(deployment, now - timedelta(seconds=1), now=now) for _ in range(19)]
    report = tick(dispatcher)
    assert_healthy_pool_submitted(store, healthy, backend)
    assert {store.get_run(run.id).state.type for run in waiting} == {StateType.SCHEDULED}
    assert refusing.calls["submit"] <= settings.max_parallel_submissions
    assert "Unable to locate credentials" in (store.get_pool("faulty").not_ready_reason or "")
    assert len(report.errors) == 1
    assert "pool 'faulty' is not ready" in report.errors[0]
    assert report.counts()["not-ready"] == refusing.calls["submit"]


def test_a_backend_raising_outside_our_errors_gives_the_run_back_with_one_traceback(
    store: LocalStore,
    settings: Settings,
    backend: InMemoryBackend,
    schedule_run: ScheduleRun,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(operation: str, run: RunContext | None) -> None:
        raise RuntimeError("the SDK broke")

    dispatcher = Dispatcher(
        store, Backends(settings, {"process": backend, "cloud-run": InMemoryBackend(fail=explode)}), settings
    )
    healthy = [schedule_run(), schedule_run()]
    faulty = faulty_run(store, "cloud-run")
    with caplog.at_level(logging.INFO, logger="push_pools"):
        report = tick(dispatcher)
    assert_healthy_pool_submitted(store, healthy, backend)
    run = store.get_run(faulty.id)
    assert run.state.type is StateType.SCHEDULED
    assert "RuntimeError: the SDK broke" in (run.state.message or "")
    assert report.counts() == {"submitted": 2, "requeued": 1}
    [logged] = tracebacks(caplog)
    assert logged.__dict__["flow_run_id"] == faulty.id


def test_a_failing_store_call_stops_only_its_own_step(
    dispatcher: Dispatcher,
    backend: InMemoryBackend,
    store: LocalStore,
    schedule_run: ScheduleRun,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    faulty = faulty_run(store, "process")
    runs_in_state = store.runs_in_state

    def flaky(pool_name: str, state: StateType, limit: int) -> list[FlowRun]:
        if pool_name == "faulty" and state is StateType.RUNNING:
            raise sqlite3.OperationalError("disk I/O error")
        return runs_in_state(pool_name, state, limit)

    monkeypatch.setattr(store, "runs_in_state", flaky)
    healthy = [schedule_run(), schedule_run()]
    with caplog.at_level(logging.INFO, logger="push_pools"):
        report = tick(dispatcher)
    assert_healthy_pool_submitted(store, [*healthy, faulty], backend)
    assert report.errors == ["reading RUNNING runs: OperationalError: disk I/O error"]
    [logged] = tracebacks(caplog)
    assert logged.__dict__["pool"] == "faulty"


def test_a_command_with_a_stray_quote_crashes_only_its_run(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    from moto import mock_aws

    healthy = [schedule_run()]
    with mock_aws():
        dispatcher.backends = Backends(dispatcher.settings, {"process": backend, **_ecs_backend(dispatcher.settings)})
        faulty = faulty_run(store, "ecs", command="python -c 'unterminated", template=default_base_job_template("ecs"))
        report = tick(dispatcher)
    assert_healthy_pool_submitted(store, healthy, backend)
    run = store.get_run(faulty.id)
    assert run.state.type is StateType.CRASHED
    assert "cannot be split like a shell command" in (run.state.message or "")
    assert report.errors == []


def _ecs_backend(settings: Settings) -> dict[str, Any]:
    import boto3

    from push_pools.platforms.aws.backend import EcsBackend

    return {"ecs": EcsBackend.from_session(boto3.session.Session(region_name="us-east-1"), settings)}


def test_a_render_fault_outside_our_errors_crashes_the_run_with_one_traceback(
    dispatcher: Dispatcher,
    backend: InMemoryBackend,
    schedule_run: ScheduleRun,
    store: LocalStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = schedule_run()
    monkeypatch.setattr(store, "run_environment", _raise(ValueError("bad environment")))
    with caplog.at_level(logging.INFO, logger="push_pools"):
        outcome = dispatcher.submit_run(run.id)
    assert outcome.status is SubmissionStatus.CRASHED
    assert "ValueError: bad environment" in (store.get_run(run.id).state.message or "")
    assert backend.calls["submit"] == 0
    assert len(tracebacks(caplog)) == 1


def _raise(exc: Exception) -> Callable[..., Any]:
    def raising(*args: object, **kwargs: object) -> Any:
        raise exc

    return raising


@pytest.fixture
def webhook(dispatcher: Dispatcher) -> Webhook:
    return Webhook(RequestHandler(dispatcher), WebhookAuthenticator(SECRET), max_body_bytes=4096)


def test_the_webhook_answers_500_with_one_json_line_when_something_unexpected_fails(
    webhook: Webhook,
    store: LocalStore,
    schedule_run: ScheduleRun,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = schedule_run()
    monkeypatch.setattr(store, "get_run", _raise(RuntimeError("the store broke")))
    with caplog.at_level(logging.INFO, logger="push_pools"):
        response = webhook.handle(AUTH, json.dumps({"flow_run_id": run.id}).encode())
    assert response.status == 500
    assert response.body == {"error": "internal error: RuntimeError: the store broke"}
    assert "\n" not in response.text()
    assert len(tracebacks(caplog)) == 1


def test_a_webhook_tick_answers_with_the_faulty_pools_error_and_the_healthy_pools_submissions(
    webhook: Webhook, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    schedule_run()
    faulty_run(store, "ecs")
    store.save_pool(WorkPool(name="faulty", type="nonsense-type", base_job_template=MEMORY_TEMPLATE), overwrite=True)
    response = webhook.handle(AUTH, json.dumps({"action": "tick"}).encode())
    assert response.status == 200
    assert "1 submitted" in response.body["tick"]
    assert len(response.body["errors"]) == 1
    assert "unknown pool type 'nonsense-type'" in response.body["errors"][0]
    assert backend.calls["submit"] == 1

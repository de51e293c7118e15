"""The dispatcher's guarantees, counted on the in-memory backend: one infrastructure per run, nothing lost,
permanent failures CRASHED with their reason, terminal states sticky."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from push_pools.backends.base import RunContext
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.errors import PermanentSubmissionError, TransientSubmissionError
from push_pools.models import (
    Deployment,
    InfrastructureState,
    InfrastructureStatus,
    StateType,
    SubmissionStatus,
    WorkPool,
)
from push_pools.orchestrators.base import ClaimResult
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend
from tests.conftest import ScheduleRun


def test_a_due_run_is_submitted_and_recorded(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    run = schedule_run(job_variables={"env": {"EXTRA": "1"}})
    outcome = dispatcher.submit_run(run.id)
    assert outcome.status is SubmissionStatus.SUBMITTED
    stored = store.get_run(run.id)
    assert stored.state.type is StateType.PENDING
    assert stored.infrastructure_pid == outcome.infrastructure_pid
    (request,) = backend.started.values()
    configuration = request["configuration"]
    assert configuration["command"] == "echo hi"
    assert configuration["cpu"] == 256, "schema default"
    assert configuration["image"] == "python:3.11"
    assert configuration["env"]["EXTRA"] == "1"
    assert configuration["env"]["PUSH_POOL_FLOW_RUN_ID"] == run.id, "orchestrator env comes with every job"
    assert configuration["labels"]["push-pools.io/flow-run-id"] == run.id
    assert configuration["name"] == run.name
    assert request["idempotency_key"] == run.idempotency_key


def test_a_run_not_yet_due_is_left_alone(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    run = schedule_run(in_seconds=120)
    outcome = dispatcher.submit_run(run.id)
    assert outcome.status is SubmissionStatus.NOT_DUE
    assert outcome.due_in_seconds is not None
    assert 100 < outcome.due_in_seconds <= 120
    assert store.get_run(run.id).state.type is StateType.SCHEDULED
    assert backend.calls["submit"] == 0


def test_a_paused_pool_defers(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, pool: WorkPool, schedule_run: ScheduleRun
) -> None:
    store.save_pool(pool.model_copy(update={"is_paused": True}), overwrite=True)
    run = schedule_run()
    assert dispatcher.submit_run(run.id).status is SubmissionStatus.DEFERRED
    assert store.get_run(run.id).state.type is StateType.SCHEDULED
    assert backend.calls["submit"] == 0


def test_the_concurrency_limit_defers(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, pool: WorkPool, schedule_run: ScheduleRun
) -> None:
    store.save_pool(pool.model_copy(update={"concurrency_limit": 1}), overwrite=True)
    first, second = schedule_run(), schedule_run()
    assert dispatcher.submit_run(first.id).status is SubmissionStatus.SUBMITTED
    outcome = dispatcher.submit_run(second.id)
    assert outcome.status is SubmissionStatus.DEFERRED
    assert "concurrency limit" in (outcome.message or "")
    assert backend.calls["submit"] == 1


def test_submitting_twice_starts_one_infrastructure(
    dispatcher: Dispatcher, backend: InMemoryBackend, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()
    outcomes = [dispatcher.submit_run(run.id) for _ in range(5)]
    assert [o.status for o in outcomes] == [SubmissionStatus.SUBMITTED] + [SubmissionStatus.SKIPPED] * 4
    assert backend.calls["submit"] == 1


def test_a_run_held_by_another_dispatcher_is_not_touched(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()
    assert store.claim_run(run, datetime.now(UTC), None) is ClaimResult.CLAIMED
    outcome = dispatcher.submit_run(run.id)
    assert outcome.status is SubmissionStatus.SKIPPED
    assert "being submitted by another dispatcher" in (outcome.message or "")
    assert backend.calls["submit"] == 0


def test_an_orphan_is_resubmitted_under_the_same_key_and_adopts_what_was_started(
    store: LocalStore, backend: InMemoryBackend, settings: Settings, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()
    store.claim_run(run, datetime.now(UTC), None)
    # The first dispatcher started the infrastructure, then died before recording it.
    backend.submit({}, RunContext(run.id, run.name, run.pool_name, run.idempotency_key))
    later = datetime.now(UTC) + settings.orphan_timeout + timedelta(seconds=1)
    dispatcher = Dispatcher(store, Backends(settings, {"process": backend}), settings, clock=lambda: later)
    outcome = dispatcher.submit_run(run.id)
    assert outcome.status is SubmissionStatus.SUBMITTED
    assert outcome.message == "adopted infrastructure already started for this run"
    assert len(backend.started) == 1
    assert store.get_run(run.id).infrastructure_pid == outcome.infrastructure_pid


def failing(times: int, error: Exception, seen: list[RunContext] | None = None) -> InMemoryBackend:
    """A backend whose first `times` submissions raise `error`; it records each submission's context."""
    remaining = [times]

    def fail(operation: str, run: RunContext | None) -> None:
        if operation == "submit" and seen is not None and run is not None:
            seen.append(run)
        if operation == "submit" and remaining[0] > 0:
            remaining[0] -= 1
            raise error

    return InMemoryBackend(fail=fail)


def dispatcher_with(store: LocalStore, settings: Settings, backend: InMemoryBackend, waits: list[float]) -> Dispatcher:
    return Dispatcher(store, Backends(settings, {"process": backend}), settings, sleep=waits.append)


def test_transient_failures_are_retried_with_backoff(
    store: LocalStore, settings: Settings, schedule_run: ScheduleRun
) -> None:
    seen: list[RunContext] = []
    backend = failing(2, TransientSubmissionError("throttled"), seen)
    waits: list[float] = []
    outcome = dispatcher_with(store, settings, backend, waits).submit_run(schedule_run().id)
    assert outcome.status is SubmissionStatus.SUBMITTED
    assert backend.calls["submit"] == 3
    assert len(waits) == 2
    assert [context.resubmission for context in seen] == [False, True, True]


def test_retry_after_is_honoured(store: LocalStore, settings: Settings, schedule_run: ScheduleRun) -> None:
    backend = failing(1, TransientSubmissionError("slow down", retry_after=2.5))
    waits: list[float] = []
    dispatcher_with(store, settings, backend, waits).submit_run(schedule_run().id)
    assert waits
    assert waits[0] >= 2.5


def test_when_retries_run_out_the_run_goes_back_to_scheduled(
    store: LocalStore, settings: Settings, schedule_run: ScheduleRun
) -> None:
    seen: list[RunContext] = []
    backend = failing(settings.submit_attempts, TransientSubmissionError("503"), seen)
    run = schedule_run()
    dispatcher = dispatcher_with(store, settings, backend, [])
    outcome = dispatcher.submit_run(run.id)
    assert outcome.status is SubmissionStatus.REQUEUED
    stored = store.get_run(run.id)
    assert stored.state.type is StateType.SCHEDULED
    assert "submission kept failing (503)" in (stored.state.message or "")
    assert backend.calls["submit"] == settings.submit_attempts
    # The redelivered message gets it through, under the same key, marked as a resubmission.
    assert dispatcher.submit_run(run.id).status is SubmissionStatus.SUBMITTED
    assert {context.idempotency_key for context in seen} == {run.idempotency_key}
    assert seen[-1].resubmission


def test_a_permanent_failure_crashes_the_run_without_retrying(
    store: LocalStore, settings: Settings, schedule_run: ScheduleRun
) -> None:
    backend = failing(99, PermanentSubmissionError("cluster 'prod' not found"))
    run = schedule_run()
    outcome = dispatcher_with(store, settings, backend, []).submit_run(run.id)
    assert outcome.status is SubmissionStatus.CRASHED
    assert backend.calls["submit"] == 1
    stored = store.get_run(run.id)
    assert stored.state.type is StateType.CRASHED
    assert stored.state.message == "Submission to process pool 'pool' failed: cluster 'prod' not found"


def test_invalid_job_variables_crash_the_run_before_any_cloud_call(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    run = schedule_run(job_variables={"cpu": 1})
    outcome = dispatcher.submit_run(run.id)
    assert outcome.status is SubmissionStatus.CRASHED
    assert "job variable 'cpu': 1 is less than the minimum of 256" in (store.get_run(run.id).state.message or "")
    assert backend.calls["submit"] == 0


def test_a_prefect_block_reference_crashes_the_run_with_the_reason(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    run = schedule_run(job_variables={"env": {"TOKEN": "{{ prefect.blocks.secret.token }}"}})
    assert dispatcher.submit_run(run.id).status is SubmissionStatus.CRASHED
    assert "job variable 'env.TOKEN' refers to a Prefect block" in (store.get_run(run.id).state.message or "")
    assert backend.calls["submit"] == 0


def test_unused_job_variables_are_warned_about(dispatcher: Dispatcher, schedule_run: ScheduleRun) -> None:
    outcome = dispatcher.submit_run(schedule_run(job_variables={"memroy": 4096}).id)
    assert outcome.status is SubmissionStatus.SUBMITTED
    assert outcome.warnings == (
        "job variable 'memroy' is not used by any placeholder of the base job template of pool 'pool'",
    )


def test_a_run_cancelled_while_being_submitted_has_its_infrastructure_stopped(
    store: LocalStore, settings: Settings, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()

    def cancel_meanwhile(operation: str, _context: RunContext | None) -> None:
        if operation == "submit":
            store.set_state(store.get_run(run.id), StateType.CANCELLED, "cancelled by a person")

    backend = InMemoryBackend(fail=cancel_meanwhile)
    outcome = dispatcher_with(store, settings, backend, []).submit_run(run.id)
    assert outcome.status is SubmissionStatus.CANCELLED
    assert backend.cancelled == {outcome.infrastructure_pid}


@pytest.mark.parametrize(
    ("start", "status", "expected", "message"),
    [
        (StateType.PENDING, InfrastructureStatus(state=InfrastructureState.RUNNING), StateType.RUNNING, None),
        (StateType.PENDING, InfrastructureStatus(state=InfrastructureState.STARTING), StateType.PENDING, None),
        (
            StateType.RUNNING,
            InfrastructureStatus(state=InfrastructureState.SUCCEEDED, exit_code=0),
            StateType.COMPLETED,
            "Infrastructure exited with code 0",
        ),
        (
            StateType.RUNNING,
            InfrastructureStatus(state=InfrastructureState.FAILED, exit_code=3, message="OutOfMemory"),
            StateType.CRASHED,
            "Infrastructure exited with code 3: OutOfMemory",
        ),
        (
            StateType.PENDING,
            InfrastructureStatus(state=InfrastructureState.FAILED, message="CannotPullContainerError"),
            StateType.CRASHED,
            "CannotPullContainerError",
        ),
        (StateType.RUNNING, InfrastructureStatus(state=InfrastructureState.GONE), StateType.CRASHED, None),
        (StateType.RUNNING, InfrastructureStatus(state=InfrastructureState.CANCELLED), StateType.CANCELLED, None),
        (StateType.CANCELLING, InfrastructureStatus(state=InfrastructureState.GONE), StateType.CANCELLED, None),
        (StateType.CANCELLING, InfrastructureStatus(state=InfrastructureState.RUNNING), StateType.CANCELLING, None),
        # terminal states are sticky: a late or duplicated event changes nothing
        (
            StateType.COMPLETED,
            InfrastructureStatus(state=InfrastructureState.FAILED, exit_code=1),
            StateType.COMPLETED,
            None,
        ),
        (StateType.CRASHED, InfrastructureStatus(state=InfrastructureState.SUCCEEDED), StateType.CRASHED, None),
        (StateType.CANCELLED, InfrastructureStatus(state=InfrastructureState.RUNNING), StateType.CANCELLED, None),
        (StateType.FAILED, InfrastructureStatus(state=InfrastructureState.CANCELLED), StateType.FAILED, None),
    ],
)
def test_infrastructure_reports(
    dispatcher: Dispatcher,
    store: LocalStore,
    schedule_run: ScheduleRun,
    start: StateType,
    status: InfrastructureStatus,
    expected: StateType,
    message: str | None,
) -> None:
    run = schedule_run()
    store.claim_run(run, datetime.now(UTC), None)
    if start is not StateType.PENDING:
        store.set_state(run, start)
    changed = dispatcher.report_infrastructure(store.get_run(run.id), status)
    stored = store.get_run(run.id)
    assert stored.state.type is expected
    assert changed is (expected is not start)
    if message is not None:
        assert stored.state.message == message


class FlowReportingStore(LocalStore):
    """A store whose flows report their own states, as Prefect's do."""

    reports_flow_states = True


def test_with_a_reporting_orchestrator_only_crashes_are_reported(
    settings: Settings, backend: InMemoryBackend, deployment: Deployment
) -> None:
    store = FlowReportingStore(settings.store_path)
    dispatcher = Dispatcher(store, Backends(settings, {"process": backend}), settings)
    now = datetime.now(UTC)
    ok, crashed = (store.create_run(deployment, now, now=now) for _ in range(2))
    for run in (ok, crashed):
        store.claim_run(run, now, None)
    assert not dispatcher.report_infrastructure(store.get_run(ok.id), InfrastructureStatus(state="RUNNING"))
    assert not dispatcher.report_infrastructure(store.get_run(ok.id), InfrastructureStatus(state="SUCCEEDED"))
    assert dispatcher.report_infrastructure(
        store.get_run(crashed.id), InfrastructureStatus(state="FAILED", exit_code=1)
    )
    assert store.get_run(ok.id).state.type is StateType.PENDING
    assert store.get_run(crashed.id).state.type is StateType.CRASHED


def test_cancel_stops_the_infrastructure_once(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()
    pid = dispatcher.submit_run(run.id).infrastructure_pid
    store.request_cancellation(run.id)
    assert dispatcher.cancel_run(run.id).status is SubmissionStatus.CANCELLED
    assert dispatcher.cancel_run(run.id).status is SubmissionStatus.SKIPPED
    assert backend.cancelled == {pid}
    assert backend.calls["cancel"] == 1
    assert store.get_run(run.id).state.type is StateType.CANCELLED


def test_preview_builds_the_request_without_submitting(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, pool: WorkPool, schedule_run: ScheduleRun
) -> None:
    """Preview uses the pool type's registered module (the real process backend's builder), and submits nothing."""
    run = schedule_run()
    request = dispatcher.preview(store.get_run(run.id), pool)
    assert request["argv"] == ["echo", "hi"]
    assert backend.calls["submit"] == 0
    assert store.get_run(run.id).state.type is StateType.SCHEDULED


def test_a_submission_logs_one_line_with_the_run_fields(
    dispatcher: Dispatcher, schedule_run: ScheduleRun, caplog: pytest.LogCaptureFixture
) -> None:
    run = schedule_run()
    with caplog.at_level("INFO", logger="push_pools.dispatcher"):
        outcome = dispatcher.submit_run(run.id)
    (record,) = [r for r in caplog.records if getattr(r, "flow_run_id", None) == run.id]
    assert record.levelname == "INFO"
    assert (record.pool, record.attempt, record.outcome) == (run.pool_name, run.attempt, "submitted")
    assert record.infrastructure_pid == outcome.infrastructure_pid

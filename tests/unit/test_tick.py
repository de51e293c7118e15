"""The tick: submissions within limits, reconciliation, orphan recovery, cancellation, and that one failure does
not stop the rest."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from push_pools.backends.base import RunContext
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.errors import ConfigurationError
from push_pools.models import Deployment, StateType, SubmissionStatus, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend
from push_pools.tick import tick
from tests.conftest import MEMORY_TEMPLATE, ScheduleRun


def test_tick_submits_due_runs_and_records_itself(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    due = [schedule_run() for _ in range(3)]
    later = schedule_run(in_seconds=300)
    report = tick(dispatcher)
    assert report.counts() == {"submitted": 3}
    assert {o.flow_run_id for o in report.outcomes} == {r.id for r in due}
    assert store.get_run(later.id).state.type is StateType.SCHEDULED
    assert store.get_pool("pool").last_tick_at is not None
    assert backend.calls["submit"] == 3
    assert report.errors == []


def test_tick_respects_the_concurrency_limit(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, pool: WorkPool, schedule_run: ScheduleRun
) -> None:
    store.save_pool(pool.model_copy(update={"concurrency_limit": 2}), overwrite=True)
    for _ in range(5):
        schedule_run()
    tick(dispatcher)
    tick(dispatcher)
    assert backend.calls["submit"] == 2
    assert len(store.list_runs(states=[StateType.SCHEDULED])) == 3


def test_tick_leaves_paused_pools_alone_but_still_records_them(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, pool: WorkPool, schedule_run: ScheduleRun
) -> None:
    store.save_pool(pool.model_copy(update={"is_paused": True}), overwrite=True)
    schedule_run()
    report = tick(dispatcher)
    assert report.outcomes == []
    assert backend.calls["submit"] == 0
    assert store.get_pool("pool").last_tick_at is not None


def test_tick_reconciles_infrastructure_into_run_states(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    ok, bad, running = schedule_run(), schedule_run(), schedule_run()
    tick(dispatcher)
    backend.finish(store.get_run(ok.id).infrastructure_pid or "", 0)
    backend.finish(store.get_run(bad.id).infrastructure_pid or "", 2)
    report = tick(dispatcher)
    assert report.state_changes == 3
    assert store.get_run(ok.id).state.type is StateType.COMPLETED
    assert store.get_run(bad.id).state.type is StateType.CRASHED
    assert store.get_run(bad.id).state.message == "Infrastructure exited with code 2"
    assert store.get_run(running.id).state.type is StateType.RUNNING
    assert tick(dispatcher).state_changes == 0, "nothing changes twice"


def test_tick_recovers_orphans_with_their_idempotency_key(
    store: LocalStore, backend: InMemoryBackend, settings: Settings, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()
    store.claim_run(run, datetime.now(UTC), None)
    backend.submit({}, RunContext(run.id, run.name, run.pool_name, run.idempotency_key))  # then the function died
    later = datetime.now(UTC) + settings.orphan_timeout + timedelta(seconds=1)
    dispatcher = Dispatcher(store, Backends(settings, {"process": backend}), settings, clock=lambda: later)
    report = tick(dispatcher)
    assert report.counts() == {"submitted": 1}
    assert len(backend.started) == 1
    assert store.get_run(run.id).infrastructure_pid is not None


def test_tick_does_not_recover_runs_that_are_still_being_submitted(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()
    store.claim_run(run, datetime.now(UTC), None)
    assert tick(dispatcher).outcomes == []
    assert backend.calls["submit"] == 0


def test_tick_stops_cancelling_runs(
    dispatcher: Dispatcher, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    submitted, unsubmitted = schedule_run(), schedule_run(in_seconds=-1)
    dispatcher.submit_run(submitted.id)
    store.claim_run(unsubmitted, datetime.now(UTC), None)
    store.request_cancellation(submitted.id)
    store.request_cancellation(unsubmitted.id)
    report = tick(dispatcher)
    assert report.cancelled == 2
    assert backend.calls["cancel"] == 1
    assert store.get_run(submitted.id).state.type is StateType.CANCELLED
    assert store.get_run(unsubmitted.id).state.type is StateType.CANCELLED


def test_one_failing_run_does_not_stop_the_tick(
    store: LocalStore, settings: Settings, schedule_run: ScheduleRun
) -> None:
    def status_fails_for_the_first(operation: str, _context: RunContext | None) -> None:
        if operation == "status" and backend.calls["status"] == 1:
            raise ConfigurationError("process runs on another host")

    backend = InMemoryBackend(fail=status_fails_for_the_first)
    dispatcher = Dispatcher(store, Backends(settings, {"process": backend}), settings)
    for _ in range(3):
        schedule_run()
    tick(dispatcher)
    report = tick(dispatcher)
    assert len(report.errors) == 1
    assert "process runs on another host" in report.errors[0]
    assert report.state_changes == 2


def test_tick_serves_every_pool_or_the_one_named(
    dispatcher: Dispatcher, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    other = store.save_pool(WorkPool(name="other", type="process", base_job_template=MEMORY_TEMPLATE))
    deployment = store.save_deployment(Deployment(id=str(uuid.uuid4()), name="o", pool_name=other.name))
    now = datetime.now(UTC)
    store.create_run(deployment, now, now=now)
    schedule_run()
    assert tick(dispatcher, "other").pools == ["other"]
    assert store.get_pool("pool").last_tick_at is None
    report = tick(dispatcher)
    assert sorted(report.pools) == ["other", "pool"]
    assert report.counts() == {str(SubmissionStatus.SUBMITTED): 1}
    assert "1 submitted" in report.summary()


class EventReportingBackend(InMemoryBackend):
    """Like ECS: the cloud pushes state changes, so the tick polls only what has been silent for long."""

    reports_infrastructure_events = True


def test_runs_of_event_backends_are_read_only_after_a_long_silence(
    store: LocalStore, settings: Settings, schedule_run: ScheduleRun
) -> None:
    backend = EventReportingBackend()
    run = schedule_run()
    Dispatcher(store, Backends(settings, {"process": backend}), settings).submit_run(run.id)
    backend.finish(store.get_run(run.id).infrastructure_pid or "", 137)  # and its event was lost

    soon = Dispatcher(store, Backends(settings, {"process": backend}), settings)
    assert tick(soon).state_changes == 0
    assert backend.calls["status"] == 0

    later = datetime.now(UTC) + settings.event_silence_timeout + timedelta(seconds=1)
    silent = Dispatcher(store, Backends(settings, {"process": backend}), settings, clock=lambda: later)
    assert tick(silent).state_changes == 1
    assert store.get_run(run.id).state.message == "Infrastructure exited with code 137"

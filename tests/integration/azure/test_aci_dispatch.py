"""The whole path on ACI: embedded store → dispatcher and tick → real SDK client → fake ARM. Counted, not timed:
one container group per run under redelivery storms and throttling, exit codes to states, cancellation, sweep."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import StateType, SubmissionStatus, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.azure.backend import AciBackend
from push_pools.settings import Settings
from push_pools.tick import tick
from push_pools.triggers.handling import RequestHandler
from push_pools.triggers.payloads import RunRequest
from tests.fakes.arm import FakeArm, Faults, fake_clients
from tests.integration.azure.conftest import POOL_VARIABLES, ScheduleAciRun
from tests.unit.azure.helpers import fixture


def group_name(pid: str | None) -> str:
    assert pid is not None
    return pid.rsplit("/", 1)[1]


def test_a_run_goes_from_scheduled_to_completed_and_its_group_is_swept(
    aci_dispatcher: Dispatcher, store: LocalStore, arm: FakeArm, schedule_aci_run: ScheduleAciRun
) -> None:
    run = schedule_aci_run()
    assert aci_dispatcher.submit_run(run.id).status is SubmissionStatus.SUBMITTED
    pid = store.get_run(run.id).infrastructure_pid
    tick(aci_dispatcher)
    assert store.get_run(run.id).state.type is StateType.RUNNING
    arm.finish(group_name(pid), 0, at=datetime.now(UTC) - timedelta(hours=1))
    report = tick(aci_dispatcher)
    assert store.get_run(run.id).state.type is StateType.COMPLETED
    assert report.swept == 1, "finished an hour ago: past the 10-minute retention"
    assert arm.groups == {}


def test_a_non_zero_exit_crashes_the_run_with_its_last_log_lines(
    aci_dispatcher: Dispatcher, store: LocalStore, arm: FakeArm, schedule_aci_run: ScheduleAciRun
) -> None:
    run = schedule_aci_run()
    aci_dispatcher.submit_run(run.id)
    arm.finish(group_name(store.get_run(run.id).infrastructure_pid), 2, logs="loading\nKeyError: 'customer_id'")
    tick(aci_dispatcher)
    state = store.get_run(run.id).state
    assert state.type is StateType.CRASHED
    assert state.message == (
        "Infrastructure exited with code 2: Error; last event: Started container; last log lines:\n"
        "loading\nKeyError: 'customer_id'"
    )


def test_cancelling_deletes_the_group(
    aci_dispatcher: Dispatcher, store: LocalStore, arm: FakeArm, schedule_aci_run: ScheduleAciRun
) -> None:
    run = schedule_aci_run()
    aci_dispatcher.submit_run(run.id)
    store.request_cancellation(run.id)
    report = tick(aci_dispatcher)
    assert report.cancelled == 1
    assert store.get_run(run.id).state.type is StateType.CANCELLED
    assert arm.groups == {}
    assert aci_dispatcher.cancel_run(run.id).status is SubmissionStatus.SKIPPED, "already cancelled: nothing to do"


def test_a_bad_template_crashes_the_run_and_creates_nothing(
    aci_dispatcher: Dispatcher, store: LocalStore, arm: FakeArm, schedule_aci_run: ScheduleAciRun
) -> None:
    run = schedule_aci_run(job_variables={"gpu_count": 1})
    outcome = aci_dispatcher.submit_run(run.id)
    assert outcome.status is SubmissionStatus.CRASHED
    assert "gpu_count and gpu_sku go together" in (outcome.message or "")
    assert arm.calls == {}


def test_a_prefect_template_submits_with_the_resource_groups_region(
    store: LocalStore, aci_dispatcher: Dispatcher, arm: FakeArm, schedule_aci_run: ScheduleAciRun
) -> None:
    template = fixture("prefect_aci_template.json")
    for name, value in POOL_VARIABLES.items():
        template["variables"]["properties"][name]["default"] = value
    store.save_pool(WorkPool(name="azure", type="aci", base_job_template=template), overwrite=True)
    run = schedule_aci_run()
    assert aci_dispatcher.submit_run(run.id).status is SubmissionStatus.SUBMITTED
    (body,) = arm.bodies
    assert body["location"] == "westeurope"
    assert body["properties"]["containers"][0]["properties"]["command"][0] == "/opt/prefect/entrypoint.sh"


def test_a_redelivery_storm_makes_exactly_one_group_per_run(
    store: LocalStore, settings: Settings, arm: FakeArm, schedule_aci_run: ScheduleAciRun
) -> None:
    runs = [schedule_aci_run() for _ in range(12)]
    deliveries = [RunRequest(flow_run_id=run.id).to_message() for run in runs for _ in range(5)]
    faults = Faults(seed=11, throttle=0.2, server_error=0.1, lost_response=0.2)
    backends = [AciBackend(fake_clients(arm)) for _ in range(3)]  # three function instances
    handlers = [
        RequestHandler(Dispatcher(store, Backends(settings, {"aci": b}), settings, sleep=lambda _: None))
        for b in backends
    ]
    with arm.faulty(faults), ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: handlers[i % 3].handle_message(deliveries[i]), range(len(deliveries))))
    for _ in range(10):
        if all(store.get_run(run.id).infrastructure_pid for run in runs):
            break
        # A run whose submission kept failing is SCHEDULED again, or PENDING until the orphan timeout: age it.
        for run in runs:
            current = store.get_run(run.id)
            if current.state.type is StateType.PENDING and current.infrastructure_pid is None:
                aged = Dispatcher(
                    store,
                    Backends(settings, {"aci": backends[0]}),
                    settings,
                    sleep=lambda _: None,
                    clock=lambda: datetime.now(UTC) + settings.orphan_timeout * 2,
                )
                aged.submit_run(run.id)
        with arm.faulty(faults):
            tick(handlers[0].dispatcher)
    assert all(store.get_run(run.id).infrastructure_pid for run in runs), "every run submitted"
    assert len(arm.created) == len(runs)
    assert set(arm.created.values()) == {1}, "no run has two container groups"
    assert arm.responses["PUT group 500"] > 0, "lost answers happened: adoption was exercised"


def test_with_30_percent_of_calls_throttled_every_run_is_submitted_once(
    store: LocalStore, settings: Settings, arm: FakeArm, schedule_aci_run: ScheduleAciRun
) -> None:
    runs = [schedule_aci_run() for _ in range(40)]
    dispatcher = Dispatcher(
        store, Backends(settings, {"aci": AciBackend(fake_clients(arm))}), settings, sleep=lambda _: None
    )
    ticks = 0
    with arm.faulty(Faults(seed=3, throttle=0.3)):
        while ticks < 20 and not all(store.get_run(run.id).infrastructure_pid for run in runs):
            tick(dispatcher)
            ticks += 1
    assert all(store.get_run(run.id).infrastructure_pid for run in runs)
    assert len(arm.created) == len(runs)
    assert set(arm.created.values()) == {1}
    throttled = arm.responses["PUT group 429"]
    assert throttled > 0
    assert arm.calls["PUT group"] == len(runs) + throttled, "every extra write was a throttled one"


def test_no_secret_reaches_the_logs(
    aci_dispatcher: Dispatcher,
    store: LocalStore,
    arm: FakeArm,
    schedule_aci_run: ScheduleAciRun,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "pnu_do-not-log-this-key-42"
    caplog.set_level(logging.DEBUG)
    ok = schedule_aci_run(job_variables={"env": {"PREFECT_API_KEY": secret}})
    failing = schedule_aci_run(job_variables={"env": {"PREFECT_API_KEY": secret}, "gpu_count": 1})
    aci_dispatcher.submit_run(ok.id)
    aci_dispatcher.submit_run(failing.id)
    with arm.faulty(Faults(server_error=1.0)):
        tick(aci_dispatcher)
    assert any(r.name.startswith("azure") for r in caplog.records), "the SDK's own logs were captured too"
    assert secret not in caplog.text
    assert all(secret not in (store.get_run(r.id).state.message or "") for r in (ok, failing))

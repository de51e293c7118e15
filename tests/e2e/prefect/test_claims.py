"""Claims against a real Prefect server: exactly one submission per run among 20 concurrent dispatchers, the
answers CLAIMED / HELD / REFUSED / AT_LIMIT from Prefect's own orchestration rules, and runs given back (release)
and recovered (orphans) under the same idempotency key."""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from push_pools.dispatcher import Backends, Dispatcher
from push_pools.errors import OrchestratorError, TransientSubmissionError
from push_pools.models import StateType, SubmissionOutcome, SubmissionStatus, WorkPool
from push_pools.orchestrators.base import ClaimResult
from push_pools.orchestrators.prefect import PrefectOrchestrator
from push_pools.orchestrators.prefect.schema import state_request
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend
from push_pools.tick import tick
from tests.e2e.prefect.conftest import ScheduleRun, make_orchestrator
from tests.e2e.prefect.server import PrefectServer
from tests.e2e.prefect.transport import RecordingTransport, endpoint_is, lose_first

DISPATCHERS = 20
RUNS = 10


@pytest.mark.slow  # 200 deliveries by 20 threads against the SQLite-backed server: about 5 s
def test_twenty_concurrent_dispatchers_submit_each_run_once(
    prefect_server: PrefectServer, settings: Settings, backend: InMemoryBackend, schedule_run: ScheduleRun
) -> None:
    run_ids = [schedule_run().id for _ in range(RUNS)]
    orchestrators = [make_orchestrator(prefect_server) for _ in range(DISPATCHERS)]
    dispatchers = [Dispatcher(o, Backends(settings, {"process": backend}), settings) for o in orchestrators]

    def deliver_all(dispatcher: Dispatcher) -> list[SubmissionOutcome]:
        order = random.Random(id(dispatcher)).sample(run_ids, len(run_ids))
        return [dispatcher.submit_run(run_id) for run_id in order]

    with ThreadPoolExecutor(max_workers=DISPATCHERS) as executor:
        outcomes = [o for batch in executor.map(deliver_all, dispatchers) for o in batch]

    submitted = Counter(o.flow_run_id for o in outcomes if o.status is SubmissionStatus.SUBMITTED)
    assert submitted == Counter(run_ids), "every run submitted exactly once"
    assert {o.status for o in outcomes} == {SubmissionStatus.SUBMITTED, SubmissionStatus.SKIPPED}
    assert backend.calls["submit"] == RUNS, "no second cloud call for any run"
    for run_id in run_ids:
        run = orchestrators[0].get_run(run_id)
        assert run.state.type is StateType.PENDING
        assert run.infrastructure_pid == f"memory::{run_id}-1"
    for orchestrator in orchestrators:
        orchestrator.close()


def test_claim_answers_follow_prefects_rules(orchestrator: PrefectOrchestrator, schedule_run: ScheduleRun) -> None:
    now = datetime.now(UTC)
    run = orchestrator.get_run(schedule_run().id)

    assert orchestrator.claim_run(run, now, None) is ClaimResult.CLAIMED
    assert orchestrator.claim_run(run, now, None) is ClaimResult.HELD, "our own transition id: an earlier claim"

    rival = orchestrator.get_run(schedule_run().id)
    result = orchestrator.api.post(f"flow_runs/{rival.id}/set_state", state_request(StateType.PENDING))
    assert result["status"] == "ACCEPT"  # a Prefect worker's claim: no transition id of ours
    assert orchestrator.claim_run(rival, now, None) is ClaimResult.REFUSED


def test_bulk_claim_answers_follow_prefects_rules(orchestrator: PrefectOrchestrator, schedule_run: ScheduleRun) -> None:
    now = datetime.now(UTC)
    fresh, ours, rivals = (orchestrator.get_run(schedule_run().id) for _ in range(3))
    assert orchestrator.claim_run(ours, now, None) is ClaimResult.CLAIMED
    assert orchestrator.api.post(f"flow_runs/{rivals.id}/set_state", state_request(StateType.PENDING))["status"] == (
        "ACCEPT"
    )

    answers = orchestrator.claim_runs([fresh, ours, rivals], now, None)

    assert answers == [ClaimResult.CLAIMED, ClaimResult.HELD, ClaimResult.REFUSED]
    first, second = (orchestrator.get_run(schedule_run().id) for _ in range(2))
    assert orchestrator.claim_runs([first, second], now, 4) == [ClaimResult.CLAIMED, ClaimResult.AT_LIMIT], (
        "three runs already active of the four the limit allows"
    )


def test_twenty_concurrent_ticks_submit_each_run_once(
    prefect_server: PrefectServer,
    settings: Settings,
    backend: InMemoryBackend,
    pool: WorkPool,
    schedule_run: ScheduleRun,
) -> None:
    run_ids = [schedule_run().id for _ in range(RUNS)]
    orchestrators = [make_orchestrator(prefect_server) for _ in range(DISPATCHERS)]
    dispatchers = [Dispatcher(o, Backends(settings, {"process": backend}), settings) for o in orchestrators]

    with ThreadPoolExecutor(max_workers=DISPATCHERS) as executor:
        outcomes = [o for report in executor.map(lambda d: tick(d, pool.name), dispatchers) for o in report.outcomes]

    submitted = Counter(o.flow_run_id for o in outcomes if o.status is SubmissionStatus.SUBMITTED)
    assert submitted == Counter(run_ids), "every run submitted exactly once"
    assert backend.calls["submit"] == RUNS, "no second cloud call for any run"
    for orchestrator in orchestrators:
        orchestrator.close()


def test_a_full_pool_is_at_its_limit(orchestrator: PrefectOrchestrator, schedule_run: ScheduleRun) -> None:
    now = datetime.now(UTC)
    first, second = (orchestrator.get_run(schedule_run().id) for _ in range(2))
    assert orchestrator.claim_run(first, now, 1) is ClaimResult.CLAIMED
    assert orchestrator.claim_run(second, now, 1) is ClaimResult.AT_LIMIT
    assert orchestrator.get_run(second.id).state.type is StateType.SCHEDULED


def test_a_deployment_concurrency_limit_defers_the_run(
    orchestrator: PrefectOrchestrator, dispatcher: Dispatcher, schedule_run: ScheduleRun, backend: InMemoryBackend
) -> None:
    first = schedule_run()
    orchestrator.api.patch(f"deployments/{first.deployment_id}", {"concurrency_limit": 1})
    second = schedule_run()

    assert dispatcher.submit_run(first.id).status is SubmissionStatus.SUBMITTED
    outcome = dispatcher.submit_run(second.id)

    assert outcome.status is SubmissionStatus.DEFERRED
    waiting = orchestrator.get_run(second.id)
    assert (waiting.state.type, waiting.state.name) == (StateType.SCHEDULED, "AwaitingConcurrencySlot")
    assert backend.calls["submit"] == 1


def test_a_transient_failure_gives_the_run_back_and_the_next_try_reuses_its_key(
    orchestrator: PrefectOrchestrator, settings: Settings, schedule_run: ScheduleRun
) -> None:
    failures = iter([True, True, True])

    def flaky(operation: str, _run: object) -> None:
        if operation == "submit" and next(failures, False):
            raise TransientSubmissionError("throttled", retry_after=0)

    backend = InMemoryBackend(fail=flaky)
    dispatcher = Dispatcher(orchestrator, Backends(settings, {"process": backend}), settings, sleep=lambda _: None)
    run = schedule_run()

    assert dispatcher.submit_run(run.id).status is SubmissionStatus.REQUEUED
    released = orchestrator.get_run(run.id)
    assert released.state.type is StateType.SCHEDULED
    assert released.expected_start_time == run.expected_start_time, "given back at its own time, still due"
    assert "scheduled again" in (released.state.message or "")

    outcome = dispatcher.submit_run(run.id)

    assert outcome.status is SubmissionStatus.SUBMITTED
    assert outcome.infrastructure_pid == f"memory::{run.id}-1", "the same idempotency key as the first tries"


def test_an_orphan_is_recovered_with_the_same_key(
    orchestrator: PrefectOrchestrator,
    settings: Settings,
    backend: InMemoryBackend,
    pool: WorkPool,
    schedule_run: ScheduleRun,
) -> None:
    run = orchestrator.get_run(schedule_run().id)
    assert orchestrator.claim_run(run, datetime.now(UTC), None) is ClaimResult.CLAIMED  # then the function died
    later = Dispatcher(
        orchestrator,
        Backends(settings, {"process": backend}),
        settings,
        clock=lambda: datetime.now(UTC) + timedelta(seconds=settings.orphan_timeout_seconds + 1),
    )

    report = tick(later, pool.name)

    assert [(o.flow_run_id, o.status) for o in report.outcomes] == [(run.id, SubmissionStatus.SUBMITTED)]
    recovered = orchestrator.get_run(run.id)
    assert recovered.infrastructure_pid == f"memory::{run.id}-1"
    assert [s.type for s in recovered.state_history] == [
        StateType.SCHEDULED,
        StateType.PENDING,
        StateType.SCHEDULED,
        StateType.PENDING,
    ]
    assert tick(later, pool.name).outcomes == [], "recovered once"


def test_a_release_is_made_once_by_racing_dispatchers(
    prefect_server: PrefectServer, orchestrator: PrefectOrchestrator, schedule_run: ScheduleRun
) -> None:
    run = orchestrator.get_run(schedule_run().id)
    assert orchestrator.claim_run(run, datetime.now(UTC), None) is ClaimResult.CLAIMED
    others = [orchestrator] + [make_orchestrator(prefect_server) for _ in range(4)]

    with ThreadPoolExecutor(max_workers=len(others)) as executor:
        released = list(executor.map(lambda o: o.release_run(run, "orphaned"), others))

    assert released.count(True) == 1
    assert orchestrator.get_run(run.id).state.type is StateType.SCHEDULED
    for other in others[1:]:
        other.close()


def test_the_job_gets_what_a_prefect_worker_gives_it(
    prefect_server: PrefectServer,
    orchestrator: PrefectOrchestrator,
    dispatcher: Dispatcher,
    pool: WorkPool,
    schedule_run: ScheduleRun,
) -> None:
    run = orchestrator.get_run(schedule_run().id)
    raw = orchestrator.api.get(f"flow_runs/{run.id}")

    job = dispatcher.prepare(run, pool).configuration

    assert job["env"] | {"PREFECT_API_AUTH_STRING": "…"} == {
        "PREFECT_API_URL": prefect_server.api_url,
        "PREFECT_API_AUTH_STRING": "…",
        "PREFECT__FLOW_RUN_ID": run.id,
        "PREFECT__FLOW_ID": raw["flow_id"],
        "PREFECT__FLOW_NAME": run.flow_name,
        "PREFECT__DEPLOYMENT_ID": run.deployment_id,
        "PREFECT__DEPLOYMENT_NAME": "deployment",
        "PREFECT__WORKER_NAME": "push-pools",
    }
    assert job["env"]["PREFECT_API_AUTH_STRING"] == orchestrator.api.connection.auth_string
    assert job["labels"] == {
        "prefect.io/flow-run-id": run.id,
        "prefect.io/flow-run-name": run.name,
        "prefect.io/version": orchestrator.api.get("admin/version"),
        "prefect.io/flow-id": raw["flow_id"],
        "prefect.io/flow-name": run.flow_name,
        "prefect.io/deployment-id": run.deployment_id,
        "prefect.io/deployment-name": "deployment",
        "prefect.io/work-pool-name": pool.name,
        "prefect.io/work-pool-id": raw["work_pool_id"],
        "prefect.io/worker-name": "push-pools",
    }
    assert job["command"] == "echo hello", "the deployment's command; `prefect flow-run execute` when it has none"


def test_a_claim_whose_first_answer_is_lost_is_still_ours(
    prefect_server: PrefectServer, settings: Settings, backend: InMemoryBackend, schedule_run: ScheduleRun
) -> None:
    transport = RecordingTransport(lose=lose_first("POST", "/set_state"))
    orchestrator = make_orchestrator(prefect_server, transport=transport)
    dispatcher = Dispatcher(orchestrator, Backends(settings, {"process": backend}), settings)
    run = schedule_run()

    outcome = dispatcher.submit_run(run.id)

    assert transport.lost == Counter({"POST flow_runs/{id}/set_state": 1})
    assert transport.calls["POST flow_runs/{id}/set_state"] == 2, "retried, and Prefect REJECTs the same transition"
    assert (outcome.status, outcome.infrastructure_pid) == (SubmissionStatus.SUBMITTED, f"memory::{run.id}-1")
    assert [s.type for s in orchestrator.get_run(run.id).state_history] == [StateType.SCHEDULED, StateType.PENDING]
    orchestrator.close()


def test_a_tick_makes_two_prefect_calls_per_due_run_and_claims_them_together(
    prefect_server: PrefectServer,
    settings: Settings,
    backend: InMemoryBackend,
    pool: WorkPool,
    schedule_run: ScheduleRun,
) -> None:
    transport = RecordingTransport()
    orchestrator = make_orchestrator(prefect_server, transport=transport)
    dispatcher = Dispatcher(orchestrator, Backends(settings, {"process": backend}), settings)
    schedule_run()
    tick(dispatcher, pool.name)  # warms the server version; the first tick reads the deployment as well
    transport.clear()
    runs = [schedule_run() for _ in range(RUNS)]

    report = tick(dispatcher, pool.name)

    assert sorted(o.flow_run_id for o in report.outcomes if o.status is SubmissionStatus.SUBMITTED) == sorted(
        run.id for run in runs
    )
    per_run = {call: count / RUNS for call, count in transport.answered.items() if count >= RUNS}
    assert per_run == {"PATCH flow_runs/{id}": 1, "PATCH flow_runs/{id}/labels": 1}, "no history, no read-back"
    per_tick = transport.answered - Counter({call: RUNS for call in per_run})
    assert per_tick["POST flow_runs/bulk_set_state"] == 1, f"{RUNS} runs claimed in one call (up to 50 are)"
    assert per_tick["GET deployments/{id}"] == 1, "the deployment read once in the tick"
    assert per_tick.total() == 8, f"the pool, a heartbeat, 3 listings, the due runs, claims, deployment: {per_tick}"
    assert set(transport.busy) <= set(per_run), "only those writes meet a busy database (and are sent again)"
    orchestrator.close()


def test_a_server_without_bulk_claims_gets_one_claim_per_run(
    prefect_server: PrefectServer,
    settings: Settings,
    backend: InMemoryBackend,
    pool: WorkPool,
    schedule_run: ScheduleRun,
) -> None:
    transport = RecordingTransport(absent=endpoint_is("POST", "/bulk_set_state"))  # as before Prefect 3.6.16
    orchestrator = make_orchestrator(prefect_server, transport=transport)
    dispatcher = Dispatcher(orchestrator, Backends(settings, {"process": backend}), settings)
    runs = [schedule_run() for _ in range(3)]

    report = tick(dispatcher, pool.name)

    assert sorted(o.flow_run_id for o in report.outcomes) == sorted(run.id for run in runs)
    assert {o.status for o in report.outcomes} == {SubmissionStatus.SUBMITTED}
    assert transport.answered["POST flow_runs/{id}/set_state"] == 3
    assert orchestrator.claims_per_call == 1, "not asked again"
    orchestrator.close()


def test_a_bulk_claim_whose_answer_is_lost_submits_each_run_once(
    prefect_server: PrefectServer,
    settings: Settings,
    backend: InMemoryBackend,
    pool: WorkPool,
    schedule_run: ScheduleRun,
) -> None:
    transport = RecordingTransport(lose=lose_first("POST", "/bulk_set_state"))
    orchestrator = make_orchestrator(prefect_server, transport=transport)
    dispatcher = Dispatcher(orchestrator, Backends(settings, {"process": backend}), settings)
    runs = [schedule_run() for _ in range(3)]

    report = tick(dispatcher, pool.name)

    assert transport.calls["POST flow_runs/bulk_set_state"] == 2, "sent again; Prefect REJECTs the same transition"
    assert sorted(o.flow_run_id for o in report.outcomes if o.status is SubmissionStatus.SUBMITTED) == sorted(
        run.id for run in runs
    )
    assert backend.calls["submit"] == 3
    orchestrator.close()


def test_a_webhook_submission_reads_the_run_and_its_pool_then_makes_the_same_three_calls(
    prefect_server: PrefectServer,
    settings: Settings,
    backend: InMemoryBackend,
    pool: WorkPool,
    schedule_run: ScheduleRun,
) -> None:
    transport = RecordingTransport()
    orchestrator = make_orchestrator(prefect_server, transport=transport)
    dispatcher = Dispatcher(orchestrator, Backends(settings, {"process": backend}), settings)
    dispatcher.submit_run(schedule_run().id)  # warms the server version and the deployment
    transport.clear()
    run = schedule_run()

    assert dispatcher.submit_run(run.id).status is SubmissionStatus.SUBMITTED

    assert transport.answered == Counter(
        {
            "GET flow_runs/{id}": 1,
            f"GET work_pools/{pool.name}": 1,
            "POST flow_runs/{id}/set_state": 1,
            "PATCH flow_runs/{id}": 1,
            "PATCH flow_runs/{id}/labels": 1,
        }
    ), "no history: the claim tells a resubmission"
    orchestrator.close()


def test_prefect_takes_a_runs_labels_only_in_a_call_of_their_own(
    orchestrator: PrefectOrchestrator, schedule_run: ScheduleRun
) -> None:
    """Why recording a submission takes two calls: `PATCH flow_runs/{id}` refuses labels (Prefect's `FlowRunUpdate`
    forbids unknown fields); labels have an endpoint of their own, `PATCH flow_runs/{id}/labels`."""
    run = schedule_run()

    with pytest.raises(OrchestratorError, match=r"HTTP 422.*Extra inputs are not permitted"):
        orchestrator.api.patch(f"flow_runs/{run.id}", {"infrastructure_pid": "x", "labels": {"a": "b"}})


def test_a_run_given_back_is_reclaimed_as_a_resubmission_without_its_history(
    prefect_server: PrefectServer, settings: Settings, pool: WorkPool, schedule_run: ScheduleRun
) -> None:
    failures = iter([True, True, True])

    def flaky(operation: str, _run: object) -> None:
        if operation == "submit" and next(failures, False):
            raise TransientSubmissionError("throttled", retry_after=0)

    backend = InMemoryBackend(fail=flaky)
    transport = RecordingTransport()
    orchestrator = make_orchestrator(prefect_server, transport=transport)
    dispatcher = Dispatcher(orchestrator, Backends(settings, {"process": backend}), settings, sleep=lambda _: None)
    run = schedule_run()
    assert [o.status for o in tick(dispatcher, pool.name).outcomes] == [SubmissionStatus.REQUEUED]
    listed = orchestrator.scheduled_runs(pool.name, datetime.now(UTC), 10)
    assert [r.id for r in listed] == [run.id]

    assert orchestrator.claim_run(listed[0], datetime.now(UTC), None) is ClaimResult.RECLAIMED
    assert transport.calls["GET flow_run_states/"] == 0, "the label says it, not the history"
    orchestrator.close()

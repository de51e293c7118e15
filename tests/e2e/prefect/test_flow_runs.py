"""A real flow, deployed with `flow.deploy` to a push-pools `process` pool of a real Prefect server, dispatched by
push-pools onto the process backend running `prefect flow-run execute`: once by the tick, once by the Prefect
automation calling push-pools' webhook over HTTP. Prefect itself must see the run COMPLETED."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import InfrastructureState, StateType, SubmissionStatus, WorkPool
from push_pools.orchestrators.prefect.automation import install_automation
from push_pools.orchestrators.prefect.orchestrator import WORKER_NAME, PrefectOrchestrator
from push_pools.settings import Settings
from push_pools.tick import tick
from push_pools.triggers.http_server import LocalFunction
from push_pools.triggers.webhook import HttpResponse
from tests.e2e.prefect.conftest import NOT_A_POOL, MakeDeployment, make_orchestrator, wait_for_state
from tests.e2e.prefect.server import PrefectServer

SECRET = "e2e-webhook-secret"
DONE = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}


def _hello_run(orchestrator: PrefectOrchestrator, pool: str, in_seconds: float) -> str:
    deployment = orchestrator.get_deployment_by_name("hello/hello")
    assert deployment.pool_name == pool
    now = datetime.now(UTC)
    return orchestrator.create_run(deployment, now + timedelta(seconds=in_seconds), now=now).id


@pytest.mark.slow  # runs a real flow process (about 7 s of Prefect imports and engine)
def test_the_tick_runs_a_real_flow_to_completion(
    orchestrator: PrefectOrchestrator, settings: Settings, hello_pool: str
) -> None:
    flow_run_id = _hello_run(orchestrator, hello_pool, in_seconds=-1)
    dispatcher = Dispatcher(orchestrator, Backends(settings), settings)

    report = tick(dispatcher, hello_pool)

    assert [(o.flow_run_id, o.status) for o in report.outcomes] == [(flow_run_id, SubmissionStatus.SUBMITTED)]
    run = wait_for_state(orchestrator, flow_run_id, DONE)
    assert run.state.type is StateType.COMPLETED, run.state.message
    assert run.infrastructure_pid == report.outcomes[0].infrastructure_pid
    assert [s.type for s in run.state_history][:2] == [StateType.SCHEDULED, StateType.PENDING]
    raw = orchestrator.api.get(f"flow_runs/{flow_run_id}")
    assert raw["labels"]["prefect.worker.name"] == WORKER_NAME
    assert raw["run_count"] == 1


def test_the_tick_heartbeat_makes_the_pool_ready(
    prefect_server: PrefectServer, orchestrator: PrefectOrchestrator, dispatcher: Dispatcher, pool: WorkPool
) -> None:
    assert orchestrator.api.get(f"work_pools/{pool.name}")["status"] == "NOT_READY"

    tick(dispatcher, pool.name)

    workers = orchestrator.api.post(f"work_pools/{pool.name}/workers/filter", {})
    assert [(w["name"], w["status"]) for w in workers] == [(WORKER_NAME, "ONLINE")]
    beat = datetime.fromisoformat(workers[0]["last_heartbeat_time"])
    assert datetime.now(UTC) - beat < timedelta(minutes=1)
    assert orchestrator.api.get(f"work_pools/{pool.name}")["status"] == "READY"
    serving = make_orchestrator(prefect_server, served_pools=[pool.name])
    assert [(p.name, p.last_tick_at) for p in serving.list_pools()] == [(pool.name, beat)]
    serving.close()


class _CountingFunction:
    """`push-pool serve`'s server, counting the webhook requests it answers."""

    def __init__(self, function: LocalFunction) -> None:
        self.function = function
        self.responses: list[HttpResponse] = []
        self.handled_between: list[tuple[datetime, datetime]] = []
        self.answered = threading.Event()
        handle = function.webhook.handle

        def counting(headers: dict[str, str], body: bytes) -> HttpResponse:
            received = datetime.now(UTC)
            response = handle(headers, body)
            self.responses.append(response)
            self.handled_between.append((received, datetime.now(UTC)))
            self.answered.set()
            return response

        function.webhook.handle = counting  # type: ignore[method-assign]

    @property
    def url(self) -> str:
        host, port = self.function.address
        return f"http://{host}:{port}/"


@pytest.fixture
def served_function(prefect_server: PrefectServer, settings: Settings) -> Iterator[_CountingFunction]:
    """push-pools' function on 127.0.0.1 over Prefect. Its own tick serves no pool (the test's pool is not listed
    in PUSH_POOL_PREFECT_WORK_POOLS), so every submission here comes from the webhook."""
    settings = Settings(
        home=settings.home, webhook_secret=SECRET, tick_interval_seconds=3600, prefect_work_pools=[NOT_A_POOL]
    )
    orchestrator = make_orchestrator(prefect_server)
    function = LocalFunction(Dispatcher(orchestrator, Backends(settings), settings), host="127.0.0.1", port=0)
    counting = _CountingFunction(function)
    function.start()
    yield counting
    function.stop()
    orchestrator.close()


@pytest.mark.slow  # runs a real flow process (about 7 s of Prefect imports and engine)
def test_the_automation_webhook_runs_a_real_flow_to_completion(
    orchestrator: PrefectOrchestrator, hello_pool: str, served_function: _CountingFunction
) -> None:
    installed = install_automation(orchestrator.api, hello_pool, served_function.url, SECRET)
    try:
        # Due in 5 s: Prefect's Scheduled event calls the webhook, usually before the run is due, and the function
        # queues the run until due. A loaded machine can deliver the event late; a run already due is submitted.
        flow_run_id = _hello_run(orchestrator, hello_pool, in_seconds=5)
        assert served_function.answered.wait(timeout=30), "Prefect's automation never called the webhook"
        first = served_function.responses[0]
        due = orchestrator.get_run(flow_run_id).expected_start_time
        received, answered = served_function.handled_between[0]
        expected = {"queued"} if answered < due else {"submitted"} if received >= due else {"queued", "submitted"}
        assert (first.status, first.body["flow_run_id"]) == (202, flow_run_id)
        assert first.body["status"] in expected

        run = wait_for_state(orchestrator, flow_run_id, DONE)
    finally:
        orchestrator.api.delete(f"automations/{installed.automation_id}")

    assert run.state.type is StateType.COMPLETED, run.state.message
    assert run.infrastructure_pid is not None
    pending = next(s for s in run.state_history if s.type is StateType.PENDING)
    assert pending.timestamp >= run.expected_start_time, "submitted before it was due"


def test_the_automation_webhook_stops_a_cancelled_run(
    orchestrator: PrefectOrchestrator,
    settings: Settings,
    pool: WorkPool,
    make_deployment: MakeDeployment,
    served_function: _CountingFunction,
) -> None:
    deployment = make_deployment(pool.name, {"command": "sleep 120"})
    now = datetime.now(UTC)
    run = orchestrator.create_run(deployment, now, now=now)
    submitter = Dispatcher(orchestrator, Backends(settings), settings)
    outcome = submitter.submit_run(run.id)
    assert outcome.status is SubmissionStatus.SUBMITTED
    assert outcome.infrastructure_pid is not None
    installed = install_automation(orchestrator.api, pool.name, served_function.url, SECRET)
    try:
        orchestrator.request_cancellation(run.id)  # Prefect's Cancelling event calls the webhook

        cancelled = wait_for_state(orchestrator, run.id, DONE, timeout=30)
    finally:
        orchestrator.api.delete(f"automations/{installed.automation_id}")

    assert cancelled.state.type is StateType.CANCELLED
    answered = [r.body for r in served_function.responses]
    assert {"flow_run_id": run.id, "status": "cancelled", "infrastructure_pid": outcome.infrastructure_pid} in answered
    process = submitter.backends.for_type("process").status(outcome.infrastructure_pid)
    assert process.state is InfrastructureState.FAILED, "the sleeping process was stopped"
    assert process.exit_code is not None

"""What goes wrong, against a real Prefect server: a failed submission (CRASHED with our message), a template that
cannot render, cancellations, an unreachable server, wrong credentials, unknown pools and runs. Each is a clear
error, and no run is left in a state it cannot leave."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from push_pools.backends import default_base_job_template
from push_pools.dispatcher import Backends, Dispatcher
from push_pools.errors import (
    AlreadyExistsError,
    ConfigurationError,
    NotFoundError,
    OrchestratorError,
    OrchestratorUnavailableError,
)
from push_pools.models import Deployment, StateType, SubmissionOutcome, SubmissionStatus, WorkPool
from push_pools.orchestrators.base import ClaimResult
from push_pools.orchestrators.prefect import PrefectOrchestrator
from push_pools.orchestrators.prefect.api import PrefectApi, PrefectConnection
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend
from push_pools.tick import tick
from push_pools.triggers.handling import ReplyKind, RequestHandler
from push_pools.triggers.payloads import RunRequest
from tests.e2e.prefect.conftest import MakeDeployment, ScheduleRun, make_orchestrator, process_template
from tests.e2e.prefect.server import PrefectServer, free_port


def test_a_failed_submission_crashes_the_run_with_our_message(
    orchestrator: PrefectOrchestrator, settings: Settings, pool: WorkPool, make_deployment: MakeDeployment
) -> None:
    missing = f"/nonexistent/{uuid.uuid4()}"
    deployment = make_deployment(pool.name, {"command": "echo hi", "working_dir": missing})
    dispatcher = Dispatcher(orchestrator, Backends(settings), settings)  # the real process backend
    run = orchestrator.create_run(deployment, _now(), now=_now())

    outcome = dispatcher.submit_run(run.id)

    assert outcome.status is SubmissionStatus.CRASHED
    crashed = orchestrator.api.get(f"flow_runs/{run.id}")
    assert crashed["state_type"] == "CRASHED"
    assert (
        crashed["state"]["message"]
        == f"Submission to process pool {pool.name!r} failed: working directory {missing!r} does not exist"
    )
    assert crashed["infrastructure_pid"] is None


def test_a_pool_whose_template_cannot_render_crashes_its_runs_not_the_dispatcher(
    orchestrator: PrefectOrchestrator,
    dispatcher: Dispatcher,
    backend: InMemoryBackend,
    make_deployment: MakeDeployment,
) -> None:
    name = f"e2e-bare-{uuid.uuid4().hex[:8]}"
    orchestrator.api.post(
        "work_pools/", {"name": name, "type": "process", "base_job_template": {}}
    )  # Prefect's API allows it
    run = orchestrator.create_run(make_deployment(name), _now(), now=_now())

    report = tick(dispatcher, name)

    assert [o.status for o in report.outcomes] == [SubmissionStatus.CRASHED]
    crashed = orchestrator.get_run(run.id)
    assert crashed.state.type is StateType.CRASHED
    assert "has no 'job_configuration'" in (crashed.state.message or "")
    assert backend.calls["submit"] == 0


def test_job_variables_the_template_no_longer_accepts_crash_the_run_with_the_rule_broken(
    orchestrator: PrefectOrchestrator, dispatcher: Dispatcher, pool: WorkPool, make_deployment: MakeDeployment
) -> None:
    deployment = make_deployment(pool.name, {"command": "echo a long command"})
    run = orchestrator.create_run(deployment, _now(), now=_now())  # Prefect checks job variables here, not later
    stricter = process_template()
    stricter["variables"]["properties"]["command"]["maxLength"] = 4
    orchestrator.save_pool(pool.model_copy(update={"base_job_template": stricter}), overwrite=True)

    assert dispatcher.submit_run(run.id).status is SubmissionStatus.CRASHED
    message = orchestrator.get_run(run.id).state.message or ""
    assert "job variable 'command'" in message
    assert "maxLength" in message


def test_cancelling_a_pending_run_stops_its_infrastructure(
    orchestrator: PrefectOrchestrator,
    dispatcher: Dispatcher,
    backend: InMemoryBackend,
    pool: WorkPool,
    schedule_run: ScheduleRun,
) -> None:
    run = schedule_run()
    pid = dispatcher.submit_run(run.id).infrastructure_pid
    assert pid is not None

    assert orchestrator.request_cancellation(run.id).state.type is StateType.CANCELLING
    report = tick(dispatcher, pool.name)

    assert report.cancelled == 1
    assert backend.cancelled == {pid}
    assert orchestrator.get_run(run.id).state.type is StateType.CANCELLED
    assert tick(dispatcher, pool.name).cancelled == 0, "cancelled once"


def test_cancelling_a_scheduled_run_needs_no_infrastructure(
    orchestrator: PrefectOrchestrator, dispatcher: Dispatcher, backend: InMemoryBackend, schedule_run: ScheduleRun
) -> None:
    run = schedule_run(in_seconds=600)

    assert orchestrator.request_cancellation(run.id).state.type is StateType.CANCELLED
    with pytest.raises(OrchestratorError, match="already CANCELLED"):
        orchestrator.request_cancellation(run.id)
    assert dispatcher.submit_run(run.id).status is SubmissionStatus.SKIPPED
    assert backend.calls["submit"] == 0


def test_a_run_cancelled_while_being_submitted_has_its_infrastructure_stopped(
    orchestrator: PrefectOrchestrator, settings: Settings, pool: WorkPool, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()
    early: list[SubmissionOutcome] = []

    def cancel_meanwhile(operation: str, _run: object) -> None:
        if operation == "submit":
            orchestrator.request_cancellation(run.id)
            early.append(dispatcher.cancel_run(run.id))  # the Cancelling webhook, before anything is recorded

    backend = InMemoryBackend(fail=cancel_meanwhile)
    dispatcher = Dispatcher(orchestrator, Backends(settings, {"process": backend}), settings)

    outcome = dispatcher.submit_run(run.id)

    assert [o.status for o in early] == [SubmissionStatus.SKIPPED], "kept CANCELLING: no infrastructure to stop yet"
    assert outcome.status is SubmissionStatus.SUBMITTED, "recorded with no read-back"
    assert orchestrator.get_run(run.id).infrastructure_pid == outcome.infrastructure_pid
    assert tick(dispatcher, pool.name).cancelled == 1
    assert backend.cancelled == {outcome.infrastructure_pid}
    assert orchestrator.get_run(run.id).state.type is StateType.CANCELLED


def test_a_cancelled_run_with_no_infrastructure_is_cancelled_after_the_orphan_timeout(
    orchestrator: PrefectOrchestrator, settings: Settings, backend: InMemoryBackend, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()
    assert orchestrator.claim_run(run, datetime.now(UTC), None) is ClaimResult.CLAIMED  # its dispatcher then died
    assert orchestrator.request_cancellation(run.id).state.type is StateType.CANCELLING
    backends = Backends(settings, {"process": backend})

    assert Dispatcher(orchestrator, backends, settings).cancel_run(run.id).status is SubmissionStatus.SKIPPED
    later = Dispatcher(orchestrator, backends, settings, clock=lambda: datetime.now(UTC) + settings.orphan_timeout)
    assert later.cancel_run(run.id).status is SubmissionStatus.CANCELLED
    assert orchestrator.get_run(run.id).state.type is StateType.CANCELLED
    assert backend.cancelled == set(), "nothing was started"


def test_an_unreachable_server_is_an_error_to_retry(settings: Settings) -> None:
    api = PrefectApi(PrefectConnection(f"http://127.0.0.1:{free_port()}/api"), attempts=2, sleep=lambda _: None)
    orchestrator = PrefectOrchestrator(api)
    dispatcher = Dispatcher(orchestrator, Backends(settings, {"process": InMemoryBackend()}), settings)

    with pytest.raises(OrchestratorUnavailableError, match=r"unavailable: ConnectError.*after 2 tries"):
        orchestrator.get_pool("anything")
    reply = RequestHandler(dispatcher).handle(RunRequest(flow_run_id=str(uuid.uuid4())))
    assert reply.kind is ReplyKind.RETRY, "a webhook answers 503 and a queue keeps the message"


def test_wrong_credentials_are_named(prefect_server: PrefectServer, schedule_run: ScheduleRun) -> None:
    run = schedule_run()
    wrong = make_orchestrator(prefect_server, auth_string="push-pools:wrong")

    with pytest.raises(OrchestratorError, match=r"refused the credentials.*PREFECT_API_AUTH_STRING"):
        wrong.get_run(run.id)
    with pytest.raises(OrchestratorError, match="HTTP 401"):
        wrong.record_tick("anything", _now())
    wrong.close()


def test_unknown_pools_and_runs_are_not_found(orchestrator: PrefectOrchestrator, dispatcher: Dispatcher) -> None:
    with pytest.raises(NotFoundError, match="no work pool named 'nope' in Prefect"):
        orchestrator.get_pool("nope")
    with pytest.raises(NotFoundError, match="no work pool named 'nope' in Prefect"):
        tick(dispatcher, "nope")
    with pytest.raises(NotFoundError, match="no flow run with id"):
        orchestrator.get_run(str(uuid.uuid4()))
    with pytest.raises(NotFoundError, match="not a Prefect id"):
        orchestrator.get_run("../work_pools/nope")
    reply = RequestHandler(dispatcher).handle(RunRequest(flow_run_id=str(uuid.uuid4())))
    assert reply.kind is ReplyKind.NOT_FOUND


def test_deployments_are_made_with_prefect(orchestrator: PrefectOrchestrator) -> None:
    with pytest.raises(ConfigurationError, match="prefect deploy"):
        orchestrator.save_deployment(Deployment(id=str(uuid.uuid4()), name="mine", pool_name="pool", command="echo"))


def test_a_pools_type_cannot_change(orchestrator: PrefectOrchestrator, pool: WorkPool) -> None:
    ecs_like = WorkPool(name=pool.name, type="aci", base_job_template=default_base_job_template("aci"))
    with pytest.raises(AlreadyExistsError, match="already exists"):
        orchestrator.save_pool(ecs_like)
    with pytest.raises(ConfigurationError, match="cannot change a pool's type"):
        orchestrator.save_pool(ecs_like, overwrite=True)


def _now() -> datetime:
    return datetime.now(UTC)

"""Prefect's API objects in push-pools' models: pool types both ways, flow runs (attempts, states, due times),
deployments, transition ids and state proposals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from push_pools.errors import OrchestratorError
from push_pools.models import StateType
from push_pools.orchestrators.prefect.schema import (
    deployment_from_api,
    flow_run_from_api,
    history_from_api,
    our_pool_type,
    pool_from_api,
    prefect_pool_type,
    release_transition_id,
    state_request,
)

RUN_ID = "6c1f1e54-7e43-4f1e-9a55-3f1b8a2c9d10"


@pytest.mark.parametrize(
    ("prefect_type", "ours"),
    [
        ("ecs:push", "ecs"),
        ("ecs", "ecs"),
        ("cloud-run-v2:push", "cloud-run"),
        ("cloud-run-v2", "cloud-run"),
        ("azure-container-instance:push", "aci"),
        ("azure-container-instance", "aci"),
        ("process", "process"),
        ("cloud-run", "prefect:cloud-run"),
        ("kubernetes", "prefect:kubernetes"),
        ("modal:push", "prefect:modal:push"),
    ],
)
def test_prefect_pool_types_read_as_ours(prefect_type: str, ours: str) -> None:
    assert our_pool_type(prefect_type) == ours


@pytest.mark.parametrize(
    ("ours", "self_hosted", "cloud"),
    [
        ("ecs", "ecs:push", "ecs"),
        ("cloud-run", "cloud-run-v2:push", "cloud-run-v2"),
        ("aci", "azure-container-instance:push", "azure-container-instance"),
        ("process", "process", "process"),
    ],
)
def test_new_pools_are_push_pools_except_on_prefect_cloud(ours: str, self_hosted: str, cloud: str) -> None:
    assert prefect_pool_type(ours, cloud=False) == self_hosted
    assert prefect_pool_type(ours, cloud=True) == cloud
    assert our_pool_type(self_hosted) == our_pool_type(cloud) == ours


def test_release_transition_ids_are_the_same_for_every_dispatcher_and_differ_per_pending_state() -> None:
    pending_state = str(uuid.uuid4())
    assert release_transition_id(pending_state) == release_transition_id(pending_state)
    assert release_transition_id(pending_state) != release_transition_id(str(uuid.uuid4()))
    assert uuid.UUID(release_transition_id(pending_state)).version == 5


def test_a_state_proposal_is_never_forced() -> None:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    body = state_request(StateType.SCHEDULED, "back", transition_id="t", scheduled_time=when)
    assert body == {
        "state": {
            "type": "SCHEDULED",
            "name": "Scheduled",
            "message": "back",
            "state_details": {"transition_id": "t", "scheduled_time": "2030-01-01T00:00:00+00:00"},
        }
    }
    assert "force" not in body
    assert state_request(StateType.CRASHED)["state"] == {"type": "CRASHED", "name": "Crashed", "state_details": {}}


def prefect_run(**overrides: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "id": RUN_ID,
        "name": "brave-otter",
        "deployment_id": "d5e1b2c3-0000-4000-8000-000000000001",
        "work_pool_name": "etl",
        "state_type": "SCHEDULED",
        "state_name": "Scheduled",
        "state": {
            "id": "s1",
            "type": "SCHEDULED",
            "name": "Scheduled",
            "timestamp": "2030-01-01T00:00:00Z",
            "message": None,
        },
        "run_count": 0,
        "expected_start_time": "2030-01-01T00:05:00Z",
        "next_scheduled_start_time": "2030-01-01T00:05:00Z",
        "parameters": {"day": "monday"},
        "job_variables": {"cpu": 512},
        "infrastructure_pid": None,
        "empirical_policy": {"retry_type": None},
    }
    return run | overrides


@pytest.mark.parametrize(
    ("state_type", "run_count", "attempt"),
    [
        ("SCHEDULED", 0, 1),
        ("PENDING", 0, 1),
        ("RUNNING", 1, 1),
        ("COMPLETED", 1, 1),
        ("SCHEDULED", 1, 2),  # rescheduled after a run: a real re-run
        ("PENDING", 2, 3),
        ("CRASHED", 0, 1),  # crashed before it ever ran
        ("FAILED", 3, 3),
    ],
)
def test_the_attempt_follows_prefects_run_count(state_type: str, run_count: int, attempt: int) -> None:
    data = prefect_run(state_type=state_type, state=None, run_count=run_count, updated="2030-01-01T00:00:00Z")
    run = flow_run_from_api(data)
    assert run.attempt == attempt
    assert run.idempotency_key == f"{RUN_ID}-{attempt}"


def test_a_run_reads_as_ours() -> None:
    run = flow_run_from_api(prefect_run(), deployment_name="daily", flow_name="etl-flow")
    assert (run.id, run.name, run.pool_name, run.deployment_name, run.flow_name) == (
        RUN_ID,
        "brave-otter",
        "etl",
        "daily",
        "etl-flow",
    )
    assert run.state.type is StateType.SCHEDULED
    assert run.expected_start_time == datetime(2030, 1, 1, 0, 5, tzinfo=UTC)
    assert (run.parameters, run.job_variables, run.infrastructure_pid) == ({"day": "monday"}, {"cpu": 512}, None)


def test_a_scheduled_run_is_due_at_its_current_schedule() -> None:
    waiting = prefect_run(next_scheduled_start_time="2030-01-01T00:09:00Z")  # e.g. AwaitingConcurrencySlot
    assert flow_run_from_api(waiting).expected_start_time == datetime(2030, 1, 1, 0, 9, tzinfo=UTC)
    running = prefect_run(state_type="RUNNING", state=None, updated="2030-01-01T00:06:00Z")
    assert flow_run_from_api(running).expected_start_time == datetime(2030, 1, 1, 0, 5, tzinfo=UTC)


def test_a_worker_reads_runs_without_a_state_object() -> None:
    run = flow_run_from_api(prefect_run(state=None, updated="2030-01-01T00:01:00Z"), pool_name="etl")
    assert (run.state.type, run.state.name) == (StateType.SCHEDULED, "Scheduled")
    assert run.state.timestamp == datetime(2030, 1, 1, 0, 1, tzinfo=UTC)


def test_an_in_process_retry_is_not_submittable() -> None:
    retrying = prefect_run(
        state_name="AwaitingRetry",
        state={**prefect_run()["state"], "name": "AwaitingRetry"},
        empirical_policy={"retry_type": "in_process"},
        run_count=1,
    )
    run = flow_run_from_api(retrying)
    assert (run.state.type, run.state.name) == (StateType.RUNNING, "AwaitingRetry")
    rescheduled = prefect_run(empirical_policy={"retry_type": "reschedule"}, run_count=1)
    assert flow_run_from_api(rescheduled).state.type is StateType.SCHEDULED


def test_a_paused_run_keeps_its_name_and_is_not_submittable() -> None:
    paused = prefect_run(
        state_type="PAUSED",
        state={"type": "PAUSED", "name": "Suspended", "timestamp": "2030-01-01T00:00:00Z"},
    )
    run = flow_run_from_api(paused)
    assert (run.state.type, run.state.name) == (StateType.RUNNING, "Suspended")


def test_an_unknown_state_type_is_an_orchestrator_error() -> None:
    with pytest.raises(OrchestratorError, match="unknown state type 'LIMBO'"):
        flow_run_from_api(prefect_run(state=None, state_type="LIMBO"))


def test_history_is_oldest_first() -> None:
    entries = [
        {"type": "PENDING", "name": "Pending", "timestamp": "2030-01-01T00:00:02Z"},
        {"type": "SCHEDULED", "name": "Scheduled", "timestamp": "2030-01-01T00:00:01Z"},
    ]
    assert [s.type for s in history_from_api(entries)] == [StateType.SCHEDULED, StateType.PENDING]


def test_pools_and_deployments_keep_prefects_names() -> None:
    pool = pool_from_api(
        {
            "name": "Team ETL pool",
            "type": "ecs:push",
            "base_job_template": {},
            "is_paused": True,
            "concurrency_limit": 4,
        }
    )
    assert (pool.name, pool.type, pool.is_paused, pool.concurrency_limit) == ("Team ETL pool", "ecs", True, 4)
    deployment = deployment_from_api(
        {"id": "d", "name": "daily etl", "work_pool_name": "etl", "job_variables": {"image": "repo/etl:1"}}, "etl"
    )
    assert (deployment.name, deployment.image, deployment.flow_name) == ("daily etl", "repo/etl:1", "etl")
    assert deployment.template_values() == {"image": "repo/etl:1"}

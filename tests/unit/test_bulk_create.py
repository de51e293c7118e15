"""Bulk writes to the embedded store: many runs or deployments in one transaction, all or none."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from push_pools.errors import NotFoundError, OrchestratorError
from push_pools.models import Deployment, StateType
from push_pools.orchestrators.local import LocalStore, NewRun


def transactions(store: LocalStore) -> list[str]:
    """The transactions the store begins from now on (on this thread)."""
    begun: list[str] = []
    store._db().set_trace_callback(lambda sql: begun.append(sql) if sql == "BEGIN IMMEDIATE" else None)
    return begun


def count(store: LocalStore, table: str) -> int:
    return int(store._db().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_many_runs_are_scheduled_in_one_transaction(store: LocalStore, deployment: Deployment) -> None:
    now = datetime.now(UTC)
    new_runs = [
        NewRun(deployment, now + timedelta(minutes=i), parameters={"i": i}, tags=("t", "t", f"n{i}"))
        for i in range(500)
    ]
    begun = transactions(store)
    ids = store.create_runs(new_runs, now=now)
    assert len(begun) == 1
    assert len(set(ids)) == 500
    assert (count(store, "flow_runs"), count(store, "flow_run_states")) == (500, 500)
    run = store.get_run(ids[7])
    assert run.expected_start_time == now + timedelta(minutes=7)
    assert run.parameters == {"i": 7}
    assert run.tags == ["t", "n7"]
    assert [s.type for s in run.state_history] == [StateType.SCHEDULED]
    assert run.name == f"deploy-{ids[7][:8]}"


def test_a_batch_with_one_time_the_store_cannot_hold_writes_nothing(store: LocalStore, deployment: Deployment) -> None:
    now = datetime.now(UTC)
    batch = [NewRun(deployment, now), NewRun(deployment, datetime.max.replace(tzinfo=UTC)), NewRun(deployment, now)]
    with pytest.raises(OrchestratorError, match="outside the years 1 to 9999"):
        store.create_runs(batch, now=now)
    assert count(store, "flow_runs") == 0


def test_deployments_are_saved_all_or_none(store: LocalStore, deployment: Deployment) -> None:
    fresh = Deployment(id=str(uuid.uuid4()), name="fresh", pool_name="pool", command="echo")
    lost = Deployment(id=str(uuid.uuid4()), name="lost", pool_name="nowhere")
    with pytest.raises(NotFoundError, match="no work pool named 'nowhere'"):
        store.save_deployments([fresh, lost])
    assert [d.name for d in store.list_deployments()] == ["deploy"]

    begun = transactions(store)
    renamed_id = deployment.model_copy(update={"id": str(uuid.uuid4()), "command": "echo bye"})
    saved = store.save_deployments([fresh, renamed_id])
    assert len(begun) == 1
    assert [d.name for d in saved] == ["fresh", "deploy"]
    assert saved[1].id == deployment.id, "an update keeps the stored id"
    assert saved[1].command == "echo bye"

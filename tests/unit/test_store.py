"""The embedded store: pools, deployments, runs, claims and sticky states."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from push_pools.errors import AlreadyExistsError, NotFoundError, OrchestratorError
from push_pools.models import Deployment, StateType, WorkPool, WorkPoolStatus
from push_pools.orchestrators.base import ClaimResult
from push_pools.orchestrators.local import LocalStore
from tests.conftest import MEMORY_TEMPLATE, ScheduleRun


def now() -> datetime:
    return datetime.now(UTC)


def test_pools_round_trip(store: LocalStore) -> None:
    pool = WorkPool(name="a", type="process", base_job_template=MEMORY_TEMPLATE, concurrency_limit=3, is_paused=True)
    assert store.save_pool(pool) == pool
    assert store.get_pool("a") == pool
    assert [p.name for p in store.list_pools()] == ["a"]


def test_creating_a_pool_twice_needs_overwrite(store: LocalStore, pool: WorkPool) -> None:
    with pytest.raises(AlreadyExistsError, match="already exists"):
        store.save_pool(pool)
    store.record_tick(pool.name, now())
    replaced = store.save_pool(pool.model_copy(update={"concurrency_limit": 1}), overwrite=True)
    assert replaced.concurrency_limit == 1
    assert replaced.last_tick_at is not None, "replacing a pool keeps its last tick"


def test_unknown_names_are_not_found(store: LocalStore) -> None:
    with pytest.raises(NotFoundError, match="no work pool named 'x'"):
        store.get_pool("x")
    with pytest.raises(NotFoundError):
        store.get_deployment_by_name("x")
    with pytest.raises(NotFoundError):
        store.get_run(str(uuid.uuid4()))
    with pytest.raises(NotFoundError):
        store.delete_pool("x")
    with pytest.raises(NotFoundError):
        store.delete_deployment("x")
    with pytest.raises(NotFoundError, match="no work pool named 'nope'"):
        store.save_deployment(Deployment(id=str(uuid.uuid4()), name="d", pool_name="nope"))


def test_a_pool_with_deployments_cannot_be_deleted(store: LocalStore, deployment: Deployment) -> None:
    with pytest.raises(OrchestratorError, match="still has deployments \\(deploy\\)"):
        store.delete_pool(deployment.pool_name)
    store.delete_deployment(deployment.name)
    store.delete_pool(deployment.pool_name)
    assert store.list_pools() == []


def test_saving_a_deployment_by_name_keeps_its_id(store: LocalStore, deployment: Deployment) -> None:
    updated = store.save_deployment(deployment.model_copy(update={"id": str(uuid.uuid4()), "image": "new"}))
    assert updated.id == deployment.id
    assert updated.image == "new"
    assert len(store.list_deployments()) == 1


def test_runs_keep_their_state_history(store: LocalStore, schedule_run: ScheduleRun) -> None:
    run = schedule_run(job_variables={"cpu": 512})
    assert store.claim_run(run, now(), None) is ClaimResult.CLAIMED
    assert store.set_state(run, StateType.RUNNING)
    assert store.set_state(run, StateType.COMPLETED, "done")
    stored = store.get_run(run.id)
    assert [s.type for s in stored.state_history] == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
    assert stored.state.message == "done"
    assert stored.job_variables == {"cpu": 512}


def test_only_one_claim_wins(store: LocalStore, schedule_run: ScheduleRun) -> None:
    run = schedule_run()
    results = [store.claim_run(run, now(), None) for _ in range(5)]
    assert results.count(ClaimResult.CLAIMED) == 1
    assert results[1:] == [ClaimResult.HELD] * 4


def test_runs_that_are_not_due_cannot_be_claimed(store: LocalStore, schedule_run: ScheduleRun) -> None:
    run = schedule_run(in_seconds=60)
    assert store.claim_run(run, now(), None) is ClaimResult.REFUSED
    assert store.claim_run(run, now() + timedelta(seconds=61), None) is ClaimResult.CLAIMED


def test_claims_respect_the_concurrency_limit(store: LocalStore, schedule_run: ScheduleRun) -> None:
    runs = [schedule_run() for _ in range(3)]
    results = [store.claim_run(run, now(), 2) for run in runs]
    assert results == [ClaimResult.CLAIMED, ClaimResult.CLAIMED, ClaimResult.AT_LIMIT]
    store.set_state(runs[0], StateType.COMPLETED)
    assert store.claim_run(runs[2], now(), 2) is ClaimResult.CLAIMED


def test_a_limit_of_zero_holds_everything(store: LocalStore, schedule_run: ScheduleRun) -> None:
    assert store.claim_run(schedule_run(), now(), 0) is ClaimResult.AT_LIMIT


def test_terminal_states_are_sticky(store: LocalStore, schedule_run: ScheduleRun) -> None:
    run = schedule_run()
    store.claim_run(run, now(), None)
    assert store.set_state(run, StateType.COMPLETED)
    for later in (StateType.CRASHED, StateType.RUNNING, StateType.FAILED, StateType.CANCELLED, StateType.SCHEDULED):
        assert not store.set_state(run, later, "late event")
    stored = store.get_run(run.id)
    assert stored.state.type is StateType.COMPLETED
    assert len(stored.state_history) == 3


def test_only_from_refuses_a_stale_reading(store: LocalStore, schedule_run: ScheduleRun) -> None:
    run = schedule_run()
    store.claim_run(run, now(), None)
    store.request_cancellation(run.id)
    assert not store.set_state(run, StateType.RUNNING, only_from={StateType.PENDING})
    assert store.get_run(run.id).state.type is StateType.CANCELLING


def test_release_gives_a_pending_run_back_with_its_attempt(store: LocalStore, schedule_run: ScheduleRun) -> None:
    run = schedule_run()
    store.claim_run(run, now(), None)
    assert store.release_run(run, "throttled")
    released = store.get_run(run.id)
    assert released.state.type is StateType.SCHEDULED
    assert released.state.message == "throttled"
    assert released.idempotency_key == run.idempotency_key
    assert store.claim_run(run, now(), None) is ClaimResult.CLAIMED


def test_release_leaves_submitted_runs_alone(store: LocalStore, schedule_run: ScheduleRun) -> None:
    run = schedule_run()
    store.claim_run(run, now(), None)
    assert store.record_submission(run, "infra-1", None)
    assert not store.release_run(run, "too late")
    assert store.get_run(run.id).infrastructure_pid == "infra-1"


def test_record_submission_refuses_a_run_that_moved_on(store: LocalStore, schedule_run: ScheduleRun) -> None:
    run = schedule_run()
    store.claim_run(run, now(), None)
    store.set_state(run, StateType.CANCELLED)
    assert not store.record_submission(run, "infra-1", None)


def test_cancellation_requests(store: LocalStore, schedule_run: ScheduleRun) -> None:
    scheduled, submitted = schedule_run(), schedule_run()
    assert store.request_cancellation(scheduled.id).state.type is StateType.CANCELLED
    store.claim_run(submitted, now(), None)
    assert store.request_cancellation(submitted.id).state.type is StateType.CANCELLING
    with pytest.raises(OrchestratorError, match="already CANCELLED"):
        store.request_cancellation(scheduled.id)


def test_queries(store: LocalStore, schedule_run: ScheduleRun) -> None:
    due, later = schedule_run(-10), schedule_run(3600)
    assert [r.id for r in store.scheduled_runs("pool", now(), 10)] == [due.id]
    store.claim_run(due, now(), None)
    assert [r.id for r in store.runs_in_state("pool", StateType.PENDING, 10)] == [due.id]
    assert {r.id for r in store.list_runs(pool_name="pool")} == {due.id, later.id}
    assert [r.id for r in store.list_runs(states=[StateType.SCHEDULED])] == [later.id]
    assert {r.id for r in store.list_runs(states=[StateType.SCHEDULED, StateType.PENDING])} == {due.id, later.id}
    assert [r.id for r in store.list_runs(states=[StateType.RUNNING])] == []
    assert len(store.list_runs(limit=1)) == 1


def test_run_environment(store: LocalStore, schedule_run: ScheduleRun) -> None:
    run = schedule_run()
    environment = store.run_environment(run)
    assert environment.env["PUSH_POOL_FLOW_RUN_ID"] == run.id
    assert environment.env["PUSH_POOL_DEPLOYMENT_NAME"] == "deploy"
    assert environment.labels["push-pools.io/flow-run-id"] == run.id


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(OrchestratorError, match="newer push-pools"):
        LocalStore(path)


def test_a_store_of_schema_1_gains_run_tags(tmp_path: Path, schedule_run: ScheduleRun) -> None:
    path = tmp_path / "old.db"
    LocalStore(path).close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE flow_runs DROP COLUMN tags")
    db.execute("ALTER TABLE work_pools DROP COLUMN not_ready_reason")
    db.execute("INSERT INTO work_pools (name, type, base_job_template) VALUES ('p', 'process', '{}')")
    db.execute(
        "INSERT INTO flow_runs (id, name, pool_name, state_type, state_name, state_timestamp, expected_start_time, "
        "parameters, job_variables) VALUES ('r', 'old', 'p', 'SCHEDULED', 'Scheduled', 0, 0, '{}', '{}')"
    )
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    store = LocalStore(path)
    assert store.get_run("r").tags == []
    deployment = store.save_deployment(Deployment(id="d", name="d", pool_name="p"))
    assert store.create_run(deployment, now(), tags=["a", "b", "a"], now=now()).tags == ["a", "b"]
    store.close()


def test_a_store_of_schema_3_gains_the_pools_not_ready_reason(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    LocalStore(path).close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE work_pools DROP COLUMN not_ready_reason")
    db.execute("INSERT INTO work_pools (name, type, base_job_template) VALUES ('p', 'process', '{}')")
    db.execute("PRAGMA user_version=3")
    db.commit()
    db.close()
    store = LocalStore(path)
    assert store.get_pool("p").not_ready_reason is None
    store.record_tick("p", now(), "pool type 'aci' needs 'azure'")
    assert store.get_pool("p").status(now(), timedelta(minutes=1)) is WorkPoolStatus.NOT_READY
    store.record_tick("p", now())
    assert store.get_pool("p").status(now(), timedelta(minutes=1)) is WorkPoolStatus.READY
    store.close()


@pytest.mark.parametrize(("mode", "expected"), [("wal", "wal"), ("delete", "delete")])
def test_the_journal_mode_is_configurable(tmp_path: Path, mode: str, expected: str) -> None:
    store = LocalStore(tmp_path / "store.db", journal_mode=mode)
    assert store._db().execute("PRAGMA journal_mode").fetchone()[0] == expected
    store.close()

"""The embedded store at scale: every query a tick or a listing makes is read from an index in the order it asks
for (no table scan, no temporary B-tree to sort), seen in SQLite's own query plans of the statements the store
really executes; and a store of schema 2 gains the indexes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from push_pools.dispatcher import Dispatcher
from push_pools.models import Deployment, StateType
from push_pools.orchestrators.local import LocalStore
from push_pools.orchestrators.local.schema import SCHEMA_VERSION
from push_pools.tick import tick
from tests.conftest import ScheduleRun

Plans = Callable[[], dict[str, list[str]]]

LISTINGS: list[dict[str, object]] = [
    {},
    {"pool_name": "pool"},
    {"states": [StateType.RUNNING]},
    {"states": [StateType.SCHEDULED, StateType.PENDING, StateType.COMPLETED]},
    {"pool_name": "pool", "states": [StateType.COMPLETED]},
    {"pool_name": "pool", "states": [StateType.FAILED, StateType.CRASHED]},
]


@pytest.fixture
def plans(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plans]:
    """Records every statement the store executes, on any thread; `plans()` gives each one's query plan."""
    statements: list[str] = []
    lock = threading.Lock()
    connect = store._db

    def record(sql: str) -> None:
        with lock:
            statements.append(sql)

    def traced() -> sqlite3.Connection:
        db = connect()
        db.set_trace_callback(record)
        return db

    monkeypatch.setattr(store, "_db", traced)
    explainer = sqlite3.connect(store.path)

    def explain() -> dict[str, list[str]]:
        with lock:
            queries = [s for s in statements if s.split(None, 1)[0].upper() in {"SELECT", "UPDATE", "DELETE", "WITH"}]
            statements.clear()
        return {sql: [row[3] for row in explainer.execute(f"EXPLAIN QUERY PLAN {sql}")] for sql in queries}

    yield explain
    explainer.close()


def slow_steps(plans: dict[str, list[str]]) -> list[str]:
    """Plan steps whose cost grows with the number of runs: a sort, or a scan of runs not bounded by a LIMIT
    (listing every pool or deployment reads them all: there are few)."""
    slow = []
    for sql, steps in plans.items():
        for step in steps:
            of_runs = step.startswith(("SCAN flow_runs", "SCAN flow_run_states"))
            unbounded_scan = of_runs and ("LIMIT" not in sql or "INDEX" not in step)
            if "TEMP B-TREE" in step or unbounded_scan:
                slow.append(f"{step}  <-  {sql}")
    return slow


def test_a_tick_reads_every_run_through_an_index(
    dispatcher: Dispatcher, store: LocalStore, schedule_run: ScheduleRun, plans: Plans
) -> None:
    now = datetime.now(UTC)
    runs = [schedule_run() for _ in range(6)]
    for run in runs[:4]:
        store.claim_run(run, now, None)
    store.record_submission(runs[0], "infra-0", None)
    store.set_state(runs[1], StateType.RUNNING)
    store.request_cancellation(runs[2].id)
    store.set_state(runs[3], StateType.COMPLETED)
    plans()
    tick(dispatcher)
    seen = plans()
    assert any("state_type = 'SCHEDULED'" in sql for sql in seen), "the tick's own queries were recorded"
    assert slow_steps(seen) == []
    assert [step for steps in seen.values() for step in steps if "flow_run" in step and "SEARCH" not in step] == []


@pytest.mark.parametrize("filters", LISTINGS, ids=lambda f: ",".join(f) or "all")
def test_every_listing_is_read_from_an_index_newest_first(
    store: LocalStore, schedule_run: ScheduleRun, plans: Plans, filters: dict[str, object]
) -> None:
    schedule_run()
    plans()
    store.list_runs(limit=10, **filters)  # type: ignore[arg-type]
    seen = plans()
    assert len(seen) == 1
    assert slow_steps(seen) == []


def test_a_pool_s_deployments_are_read_from_an_index(store: LocalStore, deployment: Deployment, plans: Plans) -> None:
    store.list_deployments(deployment.pool_name)
    assert [step for steps in plans().values() for step in steps] == [
        "SEARCH deployments USING INDEX deployments_by_pool (pool_name=?)"
    ]


def test_listings_merge_states_newest_first_and_stop_at_the_limit(store: LocalStore, schedule_run: ScheduleRun) -> None:
    runs = [schedule_run(in_seconds=-100 + i) for i in range(6)]
    now = datetime.now(UTC)
    for run in runs[::2]:
        store.claim_run(run, now, None)
    newest_first = [r.id for r in reversed(runs)]
    assert [r.id for r in store.list_runs(states=[StateType.PENDING, StateType.SCHEDULED])] == newest_first
    assert [r.id for r in store.list_runs(pool_name="pool", limit=4)] == newest_first[:4]
    assert [r.id for r in store.list_runs(pool_name="pool", states=[StateType.PENDING], limit=2)] == [
        runs[4].id,
        runs[2].id,
    ]
    assert store.list_runs(pool_name="other") == []


def test_a_store_of_schema_2_gains_the_indexes(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    LocalStore(path).close()
    db = sqlite3.connect(path)
    v2_indexes = {"flow_runs_by_pool_state", "flow_run_states_by_run"}
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall():
        if name not in v2_indexes:
            db.execute(f"DROP INDEX {name}")
    db.execute(
        "INSERT INTO flow_runs (id, name, pool_name, state_type, state_name, state_timestamp, expected_start_time, "
        "parameters, job_variables) VALUES ('r', 'old', 'p', 'COMPLETED', 'Completed', 0, 0, '{}', '{}')"
    )
    db.execute("ALTER TABLE work_pools DROP COLUMN not_ready_reason")
    db.execute("PRAGMA user_version=2")
    db.commit()
    store = LocalStore(path)
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"flow_runs_by_start", "flow_runs_by_pool_state_change", "deployments_by_pool"} <= indexes
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [r.id for r in store.list_runs(states=[StateType.COMPLETED])] == ["r"]
    store.close()
    db.close()

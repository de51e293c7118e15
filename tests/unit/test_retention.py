"""Retention: the tick deletes runs that ended longer ago than `run_retention_seconds`, with their state history,
a bounded number per tick and in small transactions; unfinished runs are kept however old."""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime, timedelta

import pytest

from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import FlowRun, StateType
from push_pools.orchestrators.local import LocalStore
from push_pools.settings import Settings
from push_pools.testing import InMemoryBackend
from push_pools.tick import tick
from tests.conftest import ScheduleRun


def ended(store: LocalStore, schedule_run: ScheduleRun, state: StateType, days_ago: float) -> FlowRun:
    """A run that went SCHEDULED → PENDING → `state`, its last change `days_ago` days back."""
    run = schedule_run()
    store.claim_run(run, datetime.now(UTC), None)
    store.set_state(run, state)
    backdate(store, run, days_ago)
    return run


def backdate(store: LocalStore, run: FlowRun, days_ago: float) -> None:
    at = (datetime.now(UTC) - timedelta(days=days_ago)).timestamp()
    with store._write() as db:
        db.execute("UPDATE flow_runs SET state_timestamp = ? WHERE id = ?", (at, run.id))


def rows(store: LocalStore) -> tuple[int, int]:
    db = store._db()
    return (
        db.execute("SELECT COUNT(*) FROM flow_runs").fetchone()[0],
        db.execute("SELECT COUNT(*) FROM flow_run_states").fetchone()[0],
    )


def test_runs_that_ended_before_the_cutoff_go_with_their_history(store: LocalStore, schedule_run: ScheduleRun) -> None:
    old = [ended(store, schedule_run, state, days_ago=40) for state in StateType if state.is_terminal]
    recent = ended(store, schedule_run, StateType.COMPLETED, days_ago=20)
    stuck = schedule_run()
    store.claim_run(stuck, datetime.now(UTC), None)
    store.set_state(stuck, StateType.RUNNING)
    backdate(store, stuck, days_ago=90)
    waiting = schedule_run()
    backdate(store, waiting, days_ago=90)
    assert rows(store) == (7, 3 * 5 + 3 + 1)

    assert store.prune_runs(datetime.now(UTC) - timedelta(days=30), limit=100) == len(old) == 4
    assert rows(store) == (3, 3 + 3 + 1)
    assert {r.id for r in store.list_runs()} == {recent.id, stuck.id, waiting.id}
    assert store.prune_runs(datetime.now(UTC) - timedelta(days=30), limit=100) == 0


def test_pruning_deletes_at_most_its_limit_a_small_transaction_at_a_time(
    store: LocalStore, schedule_run: ScheduleRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("push_pools.orchestrators.local.store.PRUNE_CHUNK", 3)
    for _ in range(8):
        ended(store, schedule_run, StateType.COMPLETED, days_ago=40)
    transactions: list[str] = []
    db = store._db()
    db.set_trace_callback(lambda sql: transactions.append(sql) if sql == "BEGIN IMMEDIATE" else None)
    cutoff = datetime.now(UTC) - timedelta(days=30)
    assert store.prune_runs(cutoff, limit=7) == 7
    assert len(transactions) == 3, "7 runs in chunks of 3: 3 + 3 + 1"
    assert rows(store)[0] == 1
    assert store.prune_runs(cutoff, limit=7) == 1
    assert len(transactions) == 4
    assert rows(store) == (0, 0)
    db.set_trace_callback(None)


def test_the_tick_prunes_a_bounded_number_and_says_so(
    store: LocalStore,
    settings: Settings,
    backend: InMemoryBackend,
    schedule_run: ScheduleRun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.modules["push_pools.tick"], "PRUNE_PER_TICK", 5)
    dispatcher = Dispatcher(store, Backends(settings, {"process": backend}), settings)
    for _ in range(7):
        ended(store, schedule_run, StateType.COMPLETED, days_ago=31)
    kept = ended(store, schedule_run, StateType.FAILED, days_ago=29)
    report = tick(dispatcher)
    assert report.pruned == 5
    assert "5 pruned" in report.summary()
    assert tick(dispatcher).pruned == 2
    assert tick(dispatcher).pruned == 0
    assert [r.id for r in store.list_runs()] == [kept.id]


def test_a_retention_of_never_keeps_everything(
    store: LocalStore,
    settings: Settings,
    backend: InMemoryBackend,
    schedule_run: ScheduleRun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PUSH_POOL_RUN_RETENTION_SECONDS", "never")
    forever = Settings(home=settings.home)
    ended(store, schedule_run, StateType.COMPLETED, days_ago=3650)
    assert tick(Dispatcher(store, Backends(forever, {"process": backend}), forever)).pruned == 0
    assert rows(store)[0] == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, timedelta(days=30)), ("never", None), ("NEVER", None), ("0", None), ("3600", timedelta(hours=1))],
)
def test_the_retention_setting(monkeypatch: pytest.MonkeyPatch, value: str | None, expected: timedelta | None) -> None:
    if value is None:
        monkeypatch.delenv("PUSH_POOL_RUN_RETENTION_SECONDS", raising=False)
    else:
        monkeypatch.setenv("PUSH_POOL_RUN_RETENTION_SECONDS", value)
    assert Settings().run_retention == expected


@pytest.mark.parametrize("value", ["-1", "soon"])
def test_a_bad_retention_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PUSH_POOL_RUN_RETENTION_SECONDS", value)
    with pytest.raises(ValueError, match="run_retention_seconds"):
        Settings()


def test_pruning_reads_an_index(store: LocalStore) -> None:
    db = sqlite3.connect(store.path)
    plan = [
        row[3]
        for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM flow_runs WHERE state_type IN ('COMPLETED', 'FAILED') "
            "AND state_timestamp < 0 LIMIT 100"
        )
    ]
    assert plan == ["SEARCH flow_runs USING INDEX flow_runs_by_state_change (state_type=? AND state_timestamp<?)"]
    db.close()

"""The embedded store's SQLite schema, how its rows become models, and how a new run becomes a row."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from push_pools.errors import OrchestratorError
from push_pools.models import Deployment, FlowRun, State, WorkPool

SCHEMA_VERSION = 4
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE flow_runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'",),
    3: (),  # the listing and retention indexes: SCHEMA's CREATE INDEX IF NOT EXISTS adds them to any older store
    4: ("ALTER TABLE work_pools ADD COLUMN not_ready_reason TEXT",),
}
"""What turns a store of the version before each key into one of that version (SCHEMA runs after them)."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS work_pools (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    base_job_template TEXT NOT NULL,
    description TEXT,
    is_paused INTEGER NOT NULL DEFAULT 0,
    concurrency_limit INTEGER,
    last_tick_at REAL,
    not_ready_reason TEXT
);
CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    pool_name TEXT NOT NULL REFERENCES work_pools(name),
    flow_name TEXT,
    image TEXT,
    command TEXT,
    parameters TEXT NOT NULL,
    job_variables TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flow_runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    pool_name TEXT NOT NULL,
    deployment_id TEXT REFERENCES deployments(id) ON DELETE SET NULL,
    deployment_name TEXT,
    flow_name TEXT,
    state_type TEXT NOT NULL,
    state_name TEXT NOT NULL,
    state_message TEXT,
    state_timestamp REAL NOT NULL,
    expected_start_time REAL NOT NULL,
    parameters TEXT NOT NULL,
    job_variables TEXT NOT NULL,
    infrastructure_pid TEXT,
    attempt INTEGER NOT NULL DEFAULT 1,
    tags TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS deployments_by_pool ON deployments (pool_name, name);
-- Every listing and every tick query is one index range read in its own order: no table scan, no sort.
CREATE INDEX IF NOT EXISTS flow_runs_by_pool_state
    ON flow_runs (pool_name, state_type, expected_start_time);
CREATE INDEX IF NOT EXISTS flow_runs_by_start ON flow_runs (expected_start_time);
CREATE INDEX IF NOT EXISTS flow_runs_by_pool_start ON flow_runs (pool_name, expected_start_time);
CREATE INDEX IF NOT EXISTS flow_runs_by_state_start ON flow_runs (state_type, expected_start_time);
CREATE INDEX IF NOT EXISTS flow_runs_by_pool_state_change ON flow_runs (pool_name, state_type, state_timestamp);
CREATE INDEX IF NOT EXISTS flow_runs_by_deployment ON flow_runs (deployment_id);
CREATE INDEX IF NOT EXISTS flow_runs_by_state_change ON flow_runs (state_type, state_timestamp);
CREATE TABLE IF NOT EXISTS flow_run_states (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_run_id TEXT NOT NULL REFERENCES flow_runs(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    message TEXT,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_run_states_by_run ON flow_run_states (flow_run_id, id);
"""


_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def timestamp(moment: datetime) -> float:
    """How a time is stored: seconds since the epoch, refused (ValueError) unless it reads back as a datetime."""
    seconds = moment.timestamp()
    datetime.fromtimestamp(seconds, UTC)  # ValueError or OverflowError beyond the year 9999 (or before 1)
    return seconds


def _time(value: float | None) -> datetime | None:
    return None if value is None else _moment(value)


def _moment(value: float) -> datetime:
    """A stored time; one out of a datetime's range (written by an older version) reads as its nearest end, so
    that run can still be listed, inspected and cancelled."""
    try:
        return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        return _LATEST if value > 0 else _EARLIEST


def pool_from_row(row: sqlite3.Row) -> WorkPool:
    return WorkPool(
        name=row["name"],
        type=row["type"],
        base_job_template=json.loads(row["base_job_template"]),
        description=row["description"],
        is_paused=bool(row["is_paused"]),
        concurrency_limit=row["concurrency_limit"],
        last_tick_at=_time(row["last_tick_at"]),
        not_ready_reason=row["not_ready_reason"],
    )


def deployment_from_row(row: sqlite3.Row) -> Deployment:
    return Deployment(
        id=row["id"],
        name=row["name"],
        pool_name=row["pool_name"],
        flow_name=row["flow_name"],
        image=row["image"],
        command=row["command"],
        parameters=json.loads(row["parameters"]),
        job_variables=json.loads(row["job_variables"]),
    )


def run_from_row(row: sqlite3.Row, history: Sequence[sqlite3.Row] = ()) -> FlowRun:
    return FlowRun(
        id=row["id"],
        name=row["name"],
        pool_name=row["pool_name"],
        deployment_id=row["deployment_id"],
        deployment_name=row["deployment_name"],
        flow_name=row["flow_name"],
        state=State(
            type=row["state_type"],
            name=row["state_name"],
            message=row["state_message"],
            timestamp=_moment(row["state_timestamp"]),
        ),
        expected_start_time=_moment(row["expected_start_time"]),
        parameters=json.loads(row["parameters"]),
        job_variables=json.loads(row["job_variables"]),
        tags=json.loads(row["tags"]),
        infrastructure_pid=row["infrastructure_pid"],
        attempt=row["attempt"],
        state_history=[
            State(
                type=h["type"],
                name=h["name"],
                message=h["message"],
                timestamp=_moment(h["timestamp"]),
            )
            for h in history
        ],
    )


@dataclass(frozen=True)
class NewRun:
    """A run for `create_runs` to schedule: the deployment's, due at `expected_start_time`, with the deployment's
    parameters overridden by `parameters`."""

    deployment: Deployment
    expected_start_time: datetime
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: Sequence[str] = ()
    job_variables: dict[str, Any] = field(default_factory=dict)


def run_row(run_id: str, new_run: NewRun, now: datetime) -> tuple[Any, ...]:
    """The `flow_runs` row of a new SCHEDULED run, in `create_runs`' column order."""
    try:
        start = timestamp(new_run.expected_start_time)
    except (ValueError, OverflowError):
        raise OrchestratorError(
            f"cannot store a run due at {new_run.expected_start_time}: outside the years 1 to 9999"
        ) from None
    deployment = new_run.deployment
    return (
        run_id,
        f"{deployment.name}-{run_id[:8]}",
        deployment.pool_name,
        deployment.id,
        deployment.name,
        deployment.flow_name,
        now.timestamp(),
        start,
        json.dumps(deployment.parameters | new_run.parameters),
        json.dumps(new_run.job_variables),
        json.dumps(list(dict.fromkeys(new_run.tags))),
    )

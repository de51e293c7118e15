"""The embedded store: pools, deployments and flow runs in one SQLite file under `PUSH_POOL_HOME`.

Safe across threads and processes: every write is one short `BEGIN IMMEDIATE` transaction (SQLite serialises
writers, WAL lets readers go on), and claiming a run is a single conditional UPDATE, so of any number of
dispatchers exactly one moves a run from SCHEDULED to PENDING.

Fast at a million runs: each listing and each query of a tick is one read of an index in the order it wants
(`schema.py` lists them), so its cost follows the rows it returns, not the rows stored.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from push_pools.errors import AlreadyExistsError, NotFoundError, OrchestratorError, OrchestratorUnavailableError
from push_pools.models import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    Deployment,
    FlowRun,
    StateType,
    WorkPool,
)
from push_pools.orchestrators.base import ClaimResult, RunEnvironment
from push_pools.orchestrators.local.schema import (
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    NewRun,
    deployment_from_row,
    pool_from_row,
    run_from_row,
    run_row,
)

_ACTIVE_SQL = "(" + ", ".join(f"'{state}'" for state in sorted(ACTIVE_STATES)) + ")"
_TERMINAL_SQL = "(" + ", ".join(f"'{state}'" for state in sorted(TERMINAL_STATES)) + ")"
PRUNE_CHUNK = 100
"""Most runs one pruning transaction deletes: other writers never wait behind a long delete."""


class LocalStore:
    """The embedded orchestrator. One instance per process; connections are per thread."""

    reports_flow_states = False
    max_page_size = 10_000
    checks_state_on_record = True
    claims_per_call = 1

    def __init__(self, path: Path, *, journal_mode: str = "wal", read_only: bool = False) -> None:
        """`read_only` opens an existing, current store for reading only (SQLite's mode=ro): its reads never wait
        for the write lock, and a write fails. A missing or older store is opened (created, migrated) as usual."""
        self.path = path
        self.journal_mode = journal_mode
        self._local = threading.local()
        self.read_only = read_only and path.is_file()
        if self.read_only and self._db().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        self.close()
        self.read_only = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OrchestratorError(f"cannot make the store's directory {path.parent}: {exc.strerror}") from None
        self._migrate()

    # ---- connection handling -------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db: _Connection | None = getattr(self._local, "db", None)
        if db is None:
            if self.read_only:
                target, uri = f"{self.path.resolve().as_uri()}?mode=ro", True
            else:
                target, uri = str(self.path), False
            db = sqlite3.connect(target, timeout=60, isolation_level=None, factory=_Connection, uri=uri)
            db.store_path = str(self.path)
            db.row_factory = sqlite3.Row
            if not self.read_only:
                db.execute(f"PRAGMA journal_mode={'WAL' if self.journal_mode == 'wal' else 'DELETE'}")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Make every write of this thread inside the block one transaction: all committed when the block ends,
        none if it raises."""
        with self._write():
            self._local.atomic = True
            try:
                yield
            finally:
                self._local.atomic = False

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        if getattr(self._local, "atomic", False):  # inside `atomic`: part of its transaction
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:  # SQLite has already rolled back after some errors (a full disk)
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise OrchestratorError(f"{self.path} was written by a newer push-pools (schema {version})")
            for older in range(version + 1, SCHEMA_VERSION + 1) if version else ():
                for statement in MIGRATIONS[older]:
                    db.execute(statement)
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # ---- work pools ------------------------------------------------------------------------------------------

    def list_pools(self) -> list[WorkPool]:
        rows = self._db().execute("SELECT * FROM work_pools ORDER BY name").fetchall()
        return [pool_from_row(row) for row in rows]

    def get_pool(self, name: str) -> WorkPool:
        row = self._db().execute("SELECT * FROM work_pools WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no work pool named {name!r}")
        return pool_from_row(row)

    def inspect_pool(self, name: str) -> WorkPool:
        return self.get_pool(name)

    def save_pool(self, pool: WorkPool, *, overwrite: bool = False) -> WorkPool:
        """Create a pool, or replace it when `overwrite` (keeping its last tick and what it said)."""
        verb = "INSERT OR REPLACE" if overwrite else "INSERT"
        with self._write() as db:
            last_tick = db.execute(
                "SELECT last_tick_at, not_ready_reason FROM work_pools WHERE name = ?", (pool.name,)
            ).fetchone()
            try:
                db.execute(
                    f"{verb} INTO work_pools (name, type, base_job_template, description, is_paused, "
                    "concurrency_limit, last_tick_at, not_ready_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        pool.name,
                        pool.type,
                        json.dumps(pool.base_job_template),
                        pool.description,
                        int(pool.is_paused),
                        pool.concurrency_limit,
                        last_tick[0] if last_tick else None,
                        last_tick[1] if last_tick else None,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise AlreadyExistsError(f"work pool {pool.name!r} already exists (use --overwrite)") from exc
        return self.get_pool(pool.name)

    def delete_pool(self, name: str) -> None:
        """Delete a pool that has no deployments and no unfinished runs."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM work_pools WHERE name = ?", (name,)).fetchone() is None:
                raise NotFoundError(f"no work pool named {name!r}")
            deployments = [r[0] for r in db.execute("SELECT name FROM deployments WHERE pool_name = ?", (name,))]
            if deployments:
                raise OrchestratorError(
                    f"work pool {name!r} still has deployments ({', '.join(deployments)}); delete them first"
                )
            db.execute("DELETE FROM work_pools WHERE name = ?", (name,))

    def record_tick(self, pool_name: str, now: datetime, problem: str | None = None) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE work_pools SET last_tick_at = ?, not_ready_reason = ? WHERE name = ?",
                (now.timestamp(), problem, pool_name),
            )

    # ---- deployments ----------------------------------------------------------------------------------------

    def save_deployment(self, deployment: Deployment) -> Deployment:
        """Create a deployment, or update the one with the same name (keeping its id)."""
        return self.save_deployments([deployment])[0]

    def save_deployments(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        """`save_deployment` for many, in one transaction: all are saved, or none (the first whose pool is
        unknown raises NotFoundError)."""
        with self._write() as db:
            ids = [_put_deployment(db, deployment) for deployment in deployments]
        return [self.get_deployment(deployment_id) for deployment_id in ids]

    def get_deployment(self, deployment_id: str) -> Deployment:
        row = self._db().execute("SELECT * FROM deployments WHERE id = ?", (deployment_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no deployment with id {deployment_id!r}")
        return deployment_from_row(row)

    def get_deployment_by_name(self, name: str) -> Deployment:
        row = self._db().execute("SELECT * FROM deployments WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFoundError(f"no deployment named {name!r}")
        return deployment_from_row(row)

    def list_deployments(self, pool_name: str | None = None) -> list[Deployment]:
        where, params = ("WHERE pool_name = ?", (pool_name,)) if pool_name is not None else ("", ())
        rows = self._db().execute(f"SELECT * FROM deployments {where} ORDER BY name", params)
        return [deployment_from_row(row) for row in rows]

    def delete_deployment(self, name: str) -> None:
        with self._write() as db:
            if db.execute("DELETE FROM deployments WHERE name = ?", (name,)).rowcount == 0:
                raise NotFoundError(f"no deployment named {name!r}")

    # ---- flow runs ------------------------------------------------------------------------------------------

    def create_run(
        self,
        deployment: Deployment,
        expected_start_time: datetime,
        *,
        parameters: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        job_variables: dict[str, Any] | None = None,
        now: datetime,
    ) -> FlowRun:
        new_run = NewRun(deployment, expected_start_time, parameters or {}, tuple(tags), job_variables or {})
        return self.get_run(self.create_runs([new_run], now=now)[0])

    def create_runs(self, new_runs: Sequence[NewRun], *, now: datetime) -> list[str]:
        """Schedule many runs in one transaction (all or none, one commit, each statement prepared once); their
        ids, in order. A time the store cannot hold refuses the whole batch before anything is written."""
        rows = [run_row(str(uuid.uuid4()), new_run, now) for new_run in new_runs]
        with self._write() as db:
            db.executemany(
                "INSERT INTO flow_runs (id, name, pool_name, deployment_id, deployment_name, flow_name, state_type, "
                "state_name, state_timestamp, expected_start_time, parameters, job_variables, tags) "
                "VALUES (?, ?, ?, ?, ?, ?, 'SCHEDULED', 'Scheduled', ?, ?, ?, ?, ?)",
                rows,
            )
            db.executemany(
                "INSERT INTO flow_run_states (flow_run_id, type, name, message, timestamp) "
                "VALUES (?, 'SCHEDULED', 'Scheduled', NULL, ?)",
                [(row[0], row[6]) for row in rows],
            )
        return [row[0] for row in rows]

    def get_run(self, flow_run_id: str, *, with_history: bool = True) -> FlowRun:
        """The run with its state history, always (one indexed query more)."""
        db = self._db()
        row = db.execute("SELECT * FROM flow_runs WHERE id = ?", (flow_run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no flow run with id {flow_run_id!r}")
        history = db.execute(
            "SELECT * FROM flow_run_states WHERE flow_run_id = ? ORDER BY id", (flow_run_id,)
        ).fetchall()
        return run_from_row(row, history)

    def list_runs(
        self, *, pool_name: str | None = None, states: Collection[StateType] = (), limit: int = 100
    ) -> list[FlowRun]:
        sql, params = _listing_query(pool_name, states, limit)
        return [run_from_row(row) for row in self._db().execute(sql, params)]

    def scheduled_runs(self, pool_name: str, before: datetime, limit: int) -> list[FlowRun]:
        rows = self._db().execute(
            "SELECT * FROM flow_runs WHERE pool_name = ? AND state_type = 'SCHEDULED' "
            "AND expected_start_time <= ? ORDER BY expected_start_time LIMIT ?",
            (pool_name, before.timestamp(), limit),
        )
        return [run_from_row(row) for row in rows]

    def runs_in_state(self, pool_name: str, state: StateType, limit: int) -> list[FlowRun]:
        rows = self._db().execute(
            "SELECT * FROM flow_runs WHERE pool_name = ? AND state_type = ? ORDER BY state_timestamp LIMIT ?",
            (pool_name, state, limit),
        )
        return [run_from_row(row) for row in rows]

    def claim_runs(self, runs: Sequence[FlowRun], now: datetime, concurrency_limit: int | None) -> list[ClaimResult]:
        return [self.claim_run(run, now, concurrency_limit) for run in runs]

    def claim_run(self, run: FlowRun, now: datetime, concurrency_limit: int | None) -> ClaimResult:
        with self._write() as db:
            claimed = db.execute(
                "UPDATE flow_runs SET state_type = 'PENDING', state_name = 'Pending', state_message = NULL, "
                "state_timestamp = :now WHERE id = :id AND state_type = 'SCHEDULED' "
                "AND expected_start_time <= :now AND (:limit IS NULL OR (SELECT COUNT(*) FROM flow_runs "
                f"WHERE pool_name = :pool AND state_type IN {_ACTIVE_SQL}) < :limit)",
                {"now": now.timestamp(), "id": run.id, "limit": concurrency_limit, "pool": run.pool_name},
            ).rowcount
            if claimed:
                _add_history(db, run.id, StateType.PENDING, None, now)
                return ClaimResult.CLAIMED
            row = db.execute(
                "SELECT state_type, infrastructure_pid, expected_start_time FROM flow_runs WHERE id = ?",
                (run.id,),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no flow run with id {run.id!r}")
        if row["state_type"] == StateType.PENDING and row["infrastructure_pid"] is None:
            return ClaimResult.HELD
        if row["state_type"] == StateType.SCHEDULED and row["expected_start_time"] <= now.timestamp():
            return ClaimResult.AT_LIMIT
        return ClaimResult.REFUSED

    def release_run(self, run: FlowRun, message: str) -> bool:
        now = datetime.now(UTC)
        with self._write() as db:
            released = db.execute(
                "UPDATE flow_runs SET state_type = 'SCHEDULED', state_name = 'Scheduled', state_message = ?, "
                "state_timestamp = ? WHERE id = ? AND state_type = 'PENDING' AND infrastructure_pid IS NULL",
                (message, now.timestamp(), run.id),
            ).rowcount
            if released:
                _add_history(db, run.id, StateType.SCHEDULED, message, now)
        return bool(released)

    def record_submission(self, run: FlowRun, infrastructure_pid: str, message: str | None) -> bool:
        with self._write() as db:
            recorded = db.execute(
                "UPDATE flow_runs SET infrastructure_pid = ?, state_message = COALESCE(?, state_message) "
                "WHERE id = ? AND state_type IN ('PENDING', 'CANCELLING')",
                (infrastructure_pid, message, run.id),
            ).rowcount
        return bool(recorded)

    def set_state(
        self,
        run: FlowRun,
        state: StateType,
        message: str | None = None,
        *,
        only_from: Collection[StateType] | None = None,
    ) -> bool:
        allowed: Sequence[str] = (
            [str(s) for s in only_from if s not in TERMINAL_STATES]
            if only_from is not None
            else [str(s) for s in StateType if s not in TERMINAL_STATES]
        )
        if not allowed:
            return False
        now = datetime.now(UTC)
        marks = ", ".join("?" for _ in allowed)
        with self._write() as db:
            moved = db.execute(
                "UPDATE flow_runs SET state_type = ?, state_name = ?, state_message = ?, state_timestamp = ? "
                f"WHERE id = ? AND state_type IN ({marks})",
                (state, state.display_name, message, now.timestamp(), run.id, *allowed),
            ).rowcount
            if moved:
                _add_history(db, run.id, state, message, now)
        return bool(moved)

    def request_cancellation(self, flow_run_id: str) -> FlowRun:
        run = self.get_run(flow_run_id)
        if run.state.type.is_terminal:
            raise OrchestratorError(f"flow run {flow_run_id} is already {run.state.type}")
        if not self.set_state(run, StateType.CANCELLED, "Cancelled before it started", only_from={StateType.SCHEDULED}):
            self.set_state(
                run,
                StateType.CANCELLING,
                "Cancellation requested",
                only_from={StateType.PENDING, StateType.RUNNING},
            )
        return self.get_run(flow_run_id)

    def prune_runs(self, ended_before: datetime, limit: int) -> int:
        """Delete at most `limit` runs that ended before `ended_before`, with their state history (the foreign
        key cascades), `PRUNE_CHUNK` runs per transaction; how many were deleted."""
        pruned = 0
        while pruned < limit:
            chunk = min(PRUNE_CHUNK, limit - pruned)
            with self._write() as db:
                deleted = db.execute(
                    "DELETE FROM flow_runs WHERE id IN (SELECT id FROM flow_runs "
                    f"WHERE state_type IN {_TERMINAL_SQL} AND state_timestamp < ? LIMIT ?)",
                    (ended_before.timestamp(), chunk),
                ).rowcount
            pruned += deleted
            if deleted < chunk:
                break
        return pruned

    def run_environment(self, run: FlowRun) -> RunEnvironment:
        env = {
            "PUSH_POOL_FLOW_RUN_ID": run.id,
            "PUSH_POOL_FLOW_RUN_NAME": run.name,
            "PUSH_POOL_POOL_NAME": run.pool_name,
            "PUSH_POOL_ATTEMPT": str(run.attempt),
            "PUSH_POOL_PARAMETERS": json.dumps(run.parameters),
        }
        labels = {"push-pools.io/flow-run-id": run.id, "push-pools.io/pool-name": run.pool_name}
        if run.deployment_name:
            env["PUSH_POOL_DEPLOYMENT_NAME"] = run.deployment_name
            labels["push-pools.io/deployment-name"] = run.deployment_name
        return RunEnvironment(env=env, labels=labels)


class _Connection(sqlite3.Connection):
    """A store connection whose faults are the orchestrator's errors, in one line naming the file: a full disk or
    a lock held too long (`OrchestratorUnavailableError`: retry later), a read-only or corrupt file
    (`OrchestratorError`). Integrity errors stay as they are, for the store to explain."""

    store_path = ""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        with self._faults_translated():
            return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        with self._faults_translated():
            return super().executemany(sql, parameters)

    @contextmanager
    def _faults_translated(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise _fault(self, exc) from exc


_PASSING_FAULTS = (sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR)


def _fault(db: _Connection, exc: sqlite3.Error) -> OrchestratorError:
    message = f"the store at {db.store_path} failed: {exc}"
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _PASSING_FAULTS:
        return OrchestratorUnavailableError(message)
    return OrchestratorError(message)


def _put_deployment(db: sqlite3.Connection, deployment: Deployment) -> str:
    """Insert or replace a deployment by name (keeping the stored one's id); its id."""
    if db.execute("SELECT 1 FROM work_pools WHERE name = ?", (deployment.pool_name,)).fetchone() is None:
        raise NotFoundError(f"no work pool named {deployment.pool_name!r}")
    existing = db.execute("SELECT id FROM deployments WHERE name = ?", (deployment.name,)).fetchone()
    deployment_id: str = existing[0] if existing else deployment.id
    db.execute(
        "INSERT OR REPLACE INTO deployments (id, name, pool_name, flow_name, image, command, parameters, "
        "job_variables) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            deployment_id,
            deployment.name,
            deployment.pool_name,
            deployment.flow_name,
            deployment.image,
            deployment.command,
            json.dumps(deployment.parameters),
            json.dumps(deployment.job_variables),
        ),
    )
    return deployment_id


def _listing_query(pool_name: str | None, states: Collection[StateType], limit: int) -> tuple[str, list[Any]]:
    """`list_runs`' query: only the conditions of the filters given, so that each is one index range read
    newest first; several states are one such read per state, merged in order (a UNION ALL, with no sort)."""
    by_pool: list[Any] = [] if pool_name is None else [pool_name]
    pool_condition = ["pool_name = ?"] if by_pool else []
    arms = [([*pool_condition, "state_type = ?"], [*by_pool, str(state)]) for state in sorted(set(states))] or [
        (pool_condition, by_pool)
    ]
    selects, params = [], []
    for conditions, arm_params in arms:
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        selects.append(f"SELECT * FROM flow_runs{where}")
        params += arm_params
    return " UNION ALL ".join(selects) + " ORDER BY expected_start_time DESC LIMIT ?", [*params, limit]


def _add_history(db: sqlite3.Connection, run_id: str, state: StateType, message: str | None, at: datetime) -> None:
    db.execute(
        "INSERT INTO flow_run_states (flow_run_id, type, name, message, timestamp) VALUES (?, ?, ?, ?, ?)",
        (run_id, state, state.display_name, message, at.timestamp()),
    )

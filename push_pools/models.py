"""The vocabulary of push-pools, shared with Prefect: work pools, deployments, flow runs and their states."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
"""Pool and deployment names: usable in cloud resource names, URLs and file names."""


class StateType(StrEnum):
    """A flow run's state, as Prefect names them."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def display_name(self) -> str:
        """The state's default name, as Prefect gives it: `Scheduled`, `Cancelling`."""
        return self.value.capitalize()


TERMINAL_STATES = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED})
"""Sticky: once a run is in one of these, no infrastructure event changes it."""

ACTIVE_STATES = frozenset({StateType.PENDING, StateType.RUNNING, StateType.CANCELLING})
"""States that count against a pool's concurrency limit."""


class State(BaseModel):
    """One entry of a flow run's state history."""

    model_config = ConfigDict(frozen=True)

    type: StateType
    name: str
    message: str | None = None
    timestamp: datetime


class WorkPoolStatus(StrEnum):
    """READY when the executor ticked recently and can serve the pool, as Prefect shows a pool with a live worker."""

    READY = "READY"
    NOT_READY = "NOT_READY"
    PAUSED = "PAUSED"


class WorkPool(BaseModel):
    """Where runs go: a pool type (the backend), its base job template and its limits."""

    name: str = Field(pattern=NAME_PATTERN)
    type: str
    base_job_template: dict[str, Any]
    description: str | None = None
    is_paused: bool = False
    concurrency_limit: int | None = Field(default=None, ge=0)
    last_tick_at: datetime | None = None
    not_ready_reason: str | None = None
    """Why the executor could not serve the pool when it last tried (its extra, credentials, region), if so."""

    def status(self, now: datetime, tick_interval: timedelta) -> WorkPoolStatus:
        """READY if the executor ran within three tick intervals (Prefect's heartbeat rule) and could serve it."""
        if self.is_paused:
            return WorkPoolStatus.PAUSED
        if self.not_ready_reason is not None:
            return WorkPoolStatus.NOT_READY
        if self.last_tick_at is not None and now - self.last_tick_at <= 3 * tick_interval:
            return WorkPoolStatus.READY
        return WorkPoolStatus.NOT_READY


class Deployment(BaseModel):
    """What to run, in which pool, with which job variables."""

    id: str
    name: str = Field(pattern=NAME_PATTERN)
    pool_name: str
    flow_name: str | None = None
    image: str | None = None
    command: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    job_variables: dict[str, Any] = Field(default_factory=dict)

    def template_values(self) -> dict[str, Any]:
        """The deployment's contribution to job variables: its image and command, then its job variables."""
        values: dict[str, Any] = {}
        if self.image is not None:
            values["image"] = self.image
        if self.command is not None:
            values["command"] = self.command
        return values | self.job_variables


class FlowRun(BaseModel):
    """One scheduled execution of a deployment."""

    id: str
    name: str
    pool_name: str
    deployment_id: str | None = None
    deployment_name: str | None = None
    flow_id: str | None = None
    flow_name: str | None = None
    state: State
    expected_start_time: datetime
    parameters: dict[str, Any] = Field(default_factory=dict)
    job_variables: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    infrastructure_pid: str | None = None
    attempt: int = Field(default=1, ge=1)
    """Changes only when the run is legitimately run again, never when a submission is retried."""
    state_history: list[State] = Field(default_factory=list)

    @property
    def idempotency_key(self) -> str:
        """Identifies one submission of this run to a cloud: the same key means the same infrastructure."""
        return f"{self.id}-{self.attempt}"

    def is_due(self, now: datetime) -> bool:
        return self.expected_start_time <= now


class InfrastructureRef(BaseModel):
    """The cloud's handle of a submitted run, e.g. ECS `cluster::taskArn`."""

    model_config = ConfigDict(frozen=True)

    infrastructure_pid: str
    adopted: bool = False
    """True when the submission found infrastructure already started for this run instead of making more."""


class InfrastructureState(StrEnum):
    """What a backend can say about submitted infrastructure."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    GONE = "GONE"
    """The cloud no longer knows it (deleted, expired); its outcome cannot be read any more."""


FINISHED_STATES = frozenset(
    {InfrastructureState.SUCCEEDED, InfrastructureState.FAILED, InfrastructureState.CANCELLED, InfrastructureState.GONE}
)
"""The one definition of "finished": nothing runs there any more, so stopping it again is already done."""


class InfrastructureStatus(BaseModel):
    """A backend's reading of one infrastructure id."""

    model_config = ConfigDict(frozen=True)

    state: InfrastructureState
    exit_code: int | None = None
    message: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


class SubmissionStatus(StrEnum):
    """What the dispatcher did with one run."""

    SUBMITTED = "submitted"
    """Infrastructure started (or an earlier start of ours adopted) and recorded."""
    NOT_DUE = "not-due"
    """Scheduled for later; nothing was done."""
    DEFERRED = "deferred"
    """Due, but the pool is paused or at its concurrency limit; it stays SCHEDULED."""
    NOT_READY = "not-ready"
    """Due, but the executor cannot serve the pool (its extra, credentials, region): it stays SCHEDULED, and the
    pool shows NOT_READY with the reason until the executor is fixed."""
    SKIPPED = "skipped"
    """Another dispatcher has it, or it is past submission (running, finished, cancelling)."""
    CRASHED = "crashed"
    """A permanent failure; the run is CRASHED with the reason."""
    REQUEUED = "requeued"
    """A transient failure outlasted the retries; the run is SCHEDULED again and its message should be retried."""
    CANCELLED = "cancelled"
    """A cancellation request completed."""


class SubmissionOutcome(BaseModel):
    """The dispatcher's answer for one run, returned to entry points and shown by the CLI."""

    model_config = ConfigDict(frozen=True)

    flow_run_id: str
    status: SubmissionStatus
    infrastructure_pid: str | None = None
    message: str | None = None
    due_in_seconds: float | None = None
    """For NOT_DUE: how long until the run is due, so an entry point can enqueue it with that delay."""
    warnings: tuple[str, ...] = ()

"""What the dispatcher needs from the place where pools, deployments and runs live.

Two orchestrators implement it: the embedded SQLite store (`local`) and Prefect's REST API (`prefect`). The
dispatcher only ever calls this protocol, so it cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from push_pools.models import Deployment, FlowRun, StateType, WorkPool

if TYPE_CHECKING:
    from typing import Any


class ClaimResult(StrEnum):
    """The answer to "may I submit this run?"."""

    CLAIMED = "claimed"
    """We moved it SCHEDULED → PENDING just now: submit it."""
    RECLAIMED = "reclaimed"
    """As CLAIMED, for a run claimed before at this attempt and given back: an earlier try may have reached the
    cloud, so the submission looks for it under the run's idempotency key."""
    HELD = "held"
    """It is PENDING from an earlier claim of ours with no infrastructure recorded yet (in flight, or orphaned)."""
    AT_LIMIT = "at-limit"
    """The pool is at its concurrency limit; it stays SCHEDULED."""
    REFUSED = "refused"
    """Another dispatcher has it, or its state does not allow submission."""


@dataclass(frozen=True)
class RunEnvironment:
    """What the orchestrator adds to every job: env for the container, labels, the default command, and the
    image for a job that names none (Prefect's own image in Prefect mode; the embedded store has none)."""

    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    default_image: str | None = None


class Orchestrator(Protocol):
    """Reads pools and runs, claims runs and records what happened to them."""

    max_page_size: int
    """The most runs one listing call may ask for (Prefect refuses a `limit` over 200)."""

    reports_flow_states: bool
    """True when the flow itself reports RUNNING/COMPLETED/FAILED (Prefect). When False the dispatcher's tick
    derives them from the infrastructure (exit 0 → COMPLETED, non-zero → CRASHED)."""
    claims_per_call: int
    """How many runs `claim_runs` claims in one call: a tick claims its due runs in groups of this size before
    submitting them (Prefect). 1 when claims cost no call (the embedded store): each run is claimed as it is
    submitted."""
    checks_state_on_record: bool
    """True when `record_submission` answers False for a run cancelled while it was being submitted (the embedded
    store checks the state in the same write). When False (Prefect: its update takes no condition, and reading the
    run back would cost a call per run), the dispatcher leaves a CANCELLING run with no infrastructure recorded as
    it is for the orphan timeout, so that a submission in flight records its infrastructure and is then stopped."""

    def list_pools(self) -> list[WorkPool]: ...

    def get_pool(self, name: str) -> WorkPool: ...

    def get_deployment(self, deployment_id: str) -> Deployment: ...

    def get_run(self, flow_run_id: str, *, with_history: bool = True) -> FlowRun:
        """A run by id; `with_history=False` lets an orchestrator leave out its state history where reading it
        costs a call (Prefect): the dispatcher needs only the run's state, and its claim tells a resubmission."""
        ...

    def scheduled_runs(self, pool_name: str, before: datetime, limit: int) -> list[FlowRun]:
        """SCHEDULED runs of the pool expected to start no later than `before`, oldest first."""
        ...

    def runs_in_state(self, pool_name: str, state: StateType, limit: int) -> list[FlowRun]:
        """Runs of the pool in one state (PENDING, RUNNING, CANCELLING), oldest first."""
        ...

    def claim_run(self, run: FlowRun, now: datetime, concurrency_limit: int | None) -> ClaimResult:
        """Move a due SCHEDULED run to PENDING, atomically, unless someone else did or the pool is full."""
        ...

    def claim_runs(self, runs: Sequence[FlowRun], now: datetime, concurrency_limit: int | None) -> list[ClaimResult]:
        """`claim_run` for due runs of one pool, their answers in order, in one call per `claims_per_call` runs."""
        ...

    def release_run(self, run: FlowRun, message: str) -> bool:
        """Give a PENDING run with no infrastructure back to SCHEDULED (keeping its attempt) so it is retried."""
        ...

    def record_submission(self, run: FlowRun, infrastructure_pid: str, message: str | None) -> bool:
        """Store the infrastructure id of a PENDING (or CANCELLING) run.

        False when the run has left those states meanwhile (cancelled while it was being submitted) and the
        orchestrator can tell (`checks_state_on_record`): the caller then stops the infrastructure it just started.
        """
        ...

    def set_state(
        self,
        run: FlowRun,
        state: StateType,
        message: str | None = None,
        *,
        only_from: Collection[StateType] | None = None,
    ) -> bool:
        """Move a run to a state; True if it moved.

        Never out of a terminal state (they are sticky), and, given `only_from`, only out of one of those states,
        so that a decision taken on a stale reading (RUNNING, while someone asked to cancel) is refused.
        """
        ...

    def record_tick(self, pool_name: str, now: datetime, problem: str | None = None) -> None:
        """Remember that the executor served this pool now (a worker heartbeat, in Prefect's words), or, with a
        `problem`, that it tried and cannot serve it (the pool shows NOT_READY and why)."""
        ...

    def prune_runs(self, ended_before: datetime, limit: int) -> int:
        """Delete at most `limit` runs that ended before `ended_before`, with their history; how many.

        Only a store that keeps runs for push-pools alone prunes them: Prefect's server keeps its own (its
        db_vacuum service prunes them there), so the Prefect orchestrator deletes nothing.
        """
        ...

    def run_environment(self, run: FlowRun) -> RunEnvironment:
        """Env, labels and default command the run's job gets from its orchestrator."""
        ...


class Catalog(Orchestrator, Protocol):
    """What the CLI manages: pools, deployments and runs. An orchestrator that cannot do one of these (Prefect's
    deployments are made with `prefect deploy`) raises ConfigurationError saying what to use instead."""

    def save_pool(self, pool: WorkPool, *, overwrite: bool = False) -> WorkPool:
        """Create a pool, or replace it when `overwrite`; AlreadyExistsError otherwise."""
        ...

    def delete_pool(self, name: str) -> None: ...

    def inspect_pool(self, name: str) -> WorkPool:
        """The pool with when the executor last served it: for people, so it may cost more than `get_pool`."""
        ...

    def save_deployment(self, deployment: Deployment) -> Deployment:
        """Create a deployment, or update the one with the same name."""
        ...

    def get_deployment_by_name(self, name: str) -> Deployment: ...

    def list_deployments(self, pool_name: str | None = None) -> list[Deployment]: ...

    def delete_deployment(self, name: str) -> None: ...

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
        """A SCHEDULED run of the deployment, with its parameters overridden by `parameters`, and `tags`."""
        ...

    def list_runs(
        self, *, pool_name: str | None = None, states: Collection[StateType] = (), limit: int = 100
    ) -> list[FlowRun]:
        """Runs, newest expected start first; only those in `states` when some are given."""
        ...

    def request_cancellation(self, flow_run_id: str) -> FlowRun:
        """Cancel a run: SCHEDULED → CANCELLED at once; PENDING or RUNNING → CANCELLING, for the tick to stop."""
        ...

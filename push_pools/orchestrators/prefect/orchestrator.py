"""Prefect as the orchestrator: a self-hosted Prefect server or Prefect Cloud, through its REST API.

Set `PUSH_POOL_ORCHESTRATOR=prefect` and Prefect's own `PREFECT_API_URL` (plus `PREFECT_API_KEY` for Prefect
Cloud, or `PREFECT_API_AUTH_STRING` for a self-hosted server behind basic auth). push-pools then does what a
Prefect worker does, from a function, with nothing to host:

- due runs come from `POST /work_pools/{name}/get_scheduled_flow_runs` (which honours Prefect's pool and queue
  concurrency limits, pauses and in-process retries); push-pools checks each run's start time itself, because
  Prefect accepts PENDING before it;
- a run is claimed by proposing PENDING with a transition id of this claim's own. ACCEPT is a claim, and so is
  Prefect's REJECT of that same id ("already made this state transition"): the claim was retried after its first
  answer was lost. A PENDING state with push-pools' claim message is another push-pools dispatcher's claim (HELD,
  in flight or orphaned); any other refusal means a rival (a Prefect worker) has the run, or a deployment
  concurrency limit sent it back to wait (AT_LIMIT);
- after the submission the run gets its `infrastructure_pid` (in Prefect's format) and worker labels, with no
  read-back, as a Prefect worker does; a permanent failure makes it CRASHED with the reason; the flow itself reports
  RUNNING and how it ended. A run cancelled while it is being submitted is CANCELLING with no infrastructure id:
  the dispatcher leaves such a run CANCELLING for the orphan timeout, so the submission in flight records its id
  and the next cancellation (webhook or tick) stops what it started;
- a run given back (a transient failure outlasting the retries, an orphan being recovered) is first labelled
  `push-pools.claimed-attempt` with its attempt, then goes PENDING → SCHEDULED at its original time; its next
  claim sees the label and is RECLAIMED, so the submission looks for what an earlier try started. Due runs are
  thus claimed without reading their state history;
- a tick claims its due runs 50 at a time in one `POST flow_runs/bulk_set_state` (the same rules and answers run
  by run; one `set_state` per run on a server older than Prefect 3.6.16), so it makes two calls per run
  (infrastructure id and labels: Prefect's `FlowRunUpdate` takes no labels) besides one per 50 claims and its own
  few; deployments are read once per tick;
- every tick sends a heartbeat of the worker `push-pools` to each pool, so Prefect shows the pool READY.

Which pools are served: those named in `PUSH_POOL_PREFECT_WORK_POOLS`, or, when it is empty, every push pool
(`ecs:push`, `cloud-run-v2:push`, `azure-container-instance:push`) whose backend this build has. On Prefect Cloud
the list is required: Prefect Cloud serves `:push` pools itself, so push-pools creates worker-type pools there.
Deployments are Prefect's: make them with `prefect deploy` or `flow.deploy(work_pool_name=...)`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from push_pools.errors import NotFoundError
from push_pools.models import TERMINAL_STATES, Deployment, FlowRun, StateType
from push_pools.orchestrators.base import ClaimResult, RunEnvironment
from push_pools.orchestrators.prefect.api import PrefectApi, PrefectConnection
from push_pools.orchestrators.prefect.catalog import (
    CLAIMED_ATTEMPT_LABEL,
    WORKER_NAME,
    PrefectCatalog,
    no_pool,
    no_run,
    pool_path,
)
from push_pools.orchestrators.prefect.schema import FLOW_RUN_COMMAND, release_transition_id, state_request
from push_pools.settings import Settings

__all__ = ["FLOW_RUN_COMMAND", "WORKER_NAME", "PrefectOrchestrator"]

logger = logging.getLogger(__name__)

CLAIM_MESSAGE = "Submitting: claimed by push-pools"
_TERMINAL = frozenset(str(state) for state in TERMINAL_STATES)
_ACTIVE = ["PENDING", "RUNNING", "CANCELLING"]
_NO_BULK = "this Prefect server has no bulk_set_state"


class PrefectOrchestrator(PrefectCatalog):
    """Prefect's REST API behind the Orchestrator and Catalog protocols."""

    reports_flow_states = True
    max_page_size = 200
    """Prefect's own bound on `limit` (422 "Invalid limit: must be less than or equal to 200")."""
    checks_state_on_record = False
    claims_per_call = 50
    """Prefect's limit for one `bulk_set_state` (its BULK_OPERATION_LIMIT); 1 once a server is found without it."""

    def __init__(
        self, api: PrefectApi, *, served_pools: Collection[str] = (), heartbeat_interval_seconds: float = 60.0
    ) -> None:
        super().__init__(api, served_pools=tuple(served_pools))
        self.heartbeat_interval_seconds = heartbeat_interval_seconds
        self._server_version: str | None = None
        self._deployments: dict[str, tuple[float, Deployment]] = {}
        """Deployments read since the last tick began (or within one tick interval), by id."""
        self._deployment_reads: dict[str, threading.Lock] = {}
        """One lock per deployment id: runs of one deployment submitted at once wait for a single read."""

    @classmethod
    def from_settings(cls, settings: Settings) -> PrefectOrchestrator:
        return cls(
            PrefectApi(PrefectConnection.from_environment()),
            served_pools=settings.prefect_work_pools,
            heartbeat_interval_seconds=settings.tick_interval_seconds,
        )

    # ---- finding work -------------------------------------------------------------------------------------

    def scheduled_runs(self, pool_name: str, before: datetime, limit: int) -> list[FlowRun]:
        """Due runs as a Prefect worker gets them, keeping those whose start time has come (one call; no history:
        the claim tells a run given back from a first claim)."""
        body = {"scheduled_before": before.isoformat(), "limit": limit}
        found = self.api.post(f"{pool_path(pool_name)}/get_scheduled_flow_runs", body, missing=no_pool(pool_name))
        runs = [self.flow_run(item["flow_run"], pool_name=pool_name) for item in found]
        return sorted(
            (run for run in runs if run.state.type is StateType.SCHEDULED and run.is_due(before)),
            key=lambda run: run.expected_start_time,
        )

    def runs_in_state(self, pool_name: str, state: StateType, limit: int) -> list[FlowRun]:
        return self.filter_runs(pool_name, (state,), limit, "EXPECTED_START_TIME_ASC")

    # ---- claiming and recording ---------------------------------------------------------------------------

    def claim_run(self, run: FlowRun, now: datetime, concurrency_limit: int | None) -> ClaimResult:
        """Propose PENDING with a transition id of this claim's own (the API client retries the same request after
        a lost answer); see the module docstring for the answers."""
        if concurrency_limit is not None and self._active_runs(run.pool_name) >= concurrency_limit:
            return ClaimResult.AT_LIMIT
        transition_id = str(uuid.uuid4())
        request = state_request(StateType.PENDING, CLAIM_MESSAGE, transition_id=transition_id)
        result = self.api.post(f"flow_runs/{run.id}/set_state", request, missing=no_run(run.id))
        return self._claim_answer(run, result, transition_id)

    def claim_runs(self, runs: Sequence[FlowRun], now: datetime, concurrency_limit: int | None) -> list[ClaimResult]:
        """Claim runs of one pool, up to `claims_per_call` in one `POST flow_runs/bulk_set_state` (Prefect 3.6.16
        and later), which applies Prefect's orchestration rules to each run as `set_state` does: each answer reads
        as `claim_run` reads its own. A server without that endpoint gets one claim per run, from then on."""
        if self.claims_per_call == 1:
            return [self.claim_run(run, now, concurrency_limit) for run in runs]
        results = [ClaimResult.AT_LIMIT] * len(runs)
        allowed = len(runs)
        if concurrency_limit is not None and runs:
            allowed = max(0, concurrency_limit - self._active_runs(runs[0].pool_name))
        for start in range(0, allowed, self.claims_per_call):
            chunk = runs[start : min(allowed, start + self.claims_per_call)]
            results[start : start + len(chunk)] = self._claim_in_bulk(chunk, now)
        return results

    def _claim_in_bulk(self, runs: Sequence[FlowRun], now: datetime) -> list[ClaimResult]:
        transition_id = str(uuid.uuid4())
        body = {
            **state_request(StateType.PENDING, CLAIM_MESSAGE, transition_id=transition_id),
            "flow_runs": {"id": {"any_": [run.id for run in runs]}},
            "limit": len(runs),
        }
        try:
            answer = self.api.post("flow_runs/bulk_set_state", body, missing=_NO_BULK)
        except NotFoundError as exc:
            if str(exc) != _NO_BULK:
                raise
            logger.info("Prefect at %s has no bulk_set_state: one claim per run", self.api.connection.api_url)
            self.claims_per_call = 1
            return [self.claim_run(run, now, None) for run in runs]
        results = {str(result.get("flow_run_id")): result for result in answer.get("results") or []}
        return [self._claim_answer(run, results.get(run.id) or {}, transition_id) for run in runs]

    def _claim_answer(self, run: FlowRun, result: dict[str, Any], transition_id: str) -> ClaimResult:
        state = result.get("state") or {}
        pending = state.get("type") == "PENDING"
        if result.get("status") == "ACCEPT" or (pending and _transition_id(state) == transition_id):
            claimed_before = self.claimed_attempt(run.id) == str(run.attempt)
            return ClaimResult.RECLAIMED if claimed_before else ClaimResult.CLAIMED
        if pending and state.get("message") == CLAIM_MESSAGE:
            return ClaimResult.HELD
        if result.get("status") == "REJECT" and state.get("type") == "SCHEDULED":
            return ClaimResult.AT_LIMIT
        return ClaimResult.REFUSED

    def release_run(self, run: FlowRun, message: str) -> bool:
        """PENDING → SCHEDULED at the run's scheduled time, if it is still PENDING with no infrastructure; labelled
        first with the attempt claimed, so that its next claim is known as a resubmission whatever befalls it."""
        data = self.read_run(run.id)
        state = data.get("state") or {}
        if data.get("state_type") != "PENDING" or data.get("infrastructure_pid") or not state.get("id"):
            return False
        claimed = {CLAIMED_ATTEMPT_LABEL: str(run.attempt)}
        self.api.patch(f"flow_runs/{run.id}/labels", claimed, missing=no_run(run.id))
        scheduled = (state.get("state_details") or {}).get("scheduled_time") or data.get("expected_start_time")
        request = state_request(StateType.SCHEDULED, message, transition_id=release_transition_id(state["id"]))
        request["state"]["state_details"]["scheduled_time"] = scheduled
        result = self.api.post(f"flow_runs/{run.id}/set_state", request, missing=no_run(run.id))
        return bool(result.get("status") == "ACCEPT")

    def record_submission(self, run: FlowRun, infrastructure_pid: str, message: str | None) -> bool:
        """Store the infrastructure id, then label the run like a worker's: two writes, no read-back (Prefect's
        `FlowRunUpdate` takes no labels). Always True (`checks_state_on_record` is False): a run cancelled meanwhile
        is kept CANCELLING by the dispatcher until its infrastructure is recorded, then stopped by the next cancel.

        The id is written first, so that a cancellation coming after this call finds something to stop.
        """
        self.api.patch(f"flow_runs/{run.id}", {"infrastructure_pid": infrastructure_pid}, missing=no_run(run.id))
        labels = {"prefect.worker.name": WORKER_NAME, "prefect.work-pool.name": run.pool_name}
        work_pool_id = self.run_links(run.id).get("work_pool_id")
        if work_pool_id:
            labels["prefect.work-pool.id"] = work_pool_id
        self.api.patch(f"flow_runs/{run.id}/labels", labels, missing=no_run(run.id))
        if message:
            logger.info("run %s: %s", run.id, message)
        return True

    def set_state(
        self,
        run: FlowRun,
        state: StateType,
        message: str | None = None,
        *,
        only_from: Collection[StateType] | None = None,
    ) -> bool:
        """Best effort, as Prefect has no conditional write: read the run, check its state, then propose."""
        current = self.read_run(run.id).get("state_type")
        if current in _TERMINAL or (only_from is not None and current not in {str(s) for s in only_from}):
            return False
        result = self.api.post(f"flow_runs/{run.id}/set_state", state_request(state, message), missing=no_run(run.id))
        return bool(result.get("status") == "ACCEPT")

    def get_deployment(self, deployment_id: str) -> Deployment:
        """A deployment, read once per tick however many runs ask for it at once: `record_tick` forgets them, and
        so does the tick interval's passing (for a function that only gets webhooks)."""
        with self._lock:
            reading = self._deployment_reads.setdefault(deployment_id, threading.Lock())
        with reading:
            with self._lock:
                cached = self._deployments.get(deployment_id)
            if cached is not None and time.monotonic() - cached[0] < self.heartbeat_interval_seconds:
                return cached[1]
            deployment = super().get_deployment(deployment_id)
            with self._lock:
                self._deployments[deployment_id] = (time.monotonic(), deployment)
            return deployment

    def record_tick(self, pool_name: str, now: datetime, problem: str | None = None) -> None:
        """A heartbeat of push-pools' worker; none while the executor cannot serve the pool, so Prefect shows it
        NOT_READY once the last heartbeat is old (Prefect's API has no place for the reason: it is in the logs)."""
        with self._lock:
            self._deployments.clear()
            self._deployment_reads.clear()
        if problem is not None:
            return
        body = {"name": WORKER_NAME, "heartbeat_interval_seconds": max(1, round(self.heartbeat_interval_seconds))}
        self.api.post(f"{pool_path(pool_name)}/workers/heartbeat", body, missing=no_pool(pool_name))

    def prune_runs(self, ended_before: datetime, limit: int) -> int:
        """Nothing: the runs are the Prefect server's, which prunes them itself (its db_vacuum service)."""
        return 0

    def _active_runs(self, pool_name: str) -> int:
        query = {"work_pools": {"name": {"any_": [pool_name]}}, "flow_runs": {"state": {"type": {"any_": _ACTIVE}}}}
        return int(self.api.post("flow_runs/count", query))

    # ---- the job's environment ----------------------------------------------------------------------------

    @property
    def server_version(self) -> str:
        """The Prefect server's version (`GET /admin/version`), read once: what a worker's own Prefect would be."""
        if self._server_version is None:
            self._server_version = str(self.api.get("admin/version"))
        return self._server_version

    def run_environment(self, run: FlowRun) -> RunEnvironment:
        """What a Prefect worker gives the job: API settings, the run's ids for `prefect flow-run execute` and for
        attribution, `prefect.io/...` labels, the default command, and Prefect's image for a job naming none."""
        connection = self.api.connection
        links = self.run_links(run.id)
        env = {
            "PREFECT_API_URL": connection.api_url,
            "PREFECT__FLOW_RUN_ID": run.id,
            "PREFECT__WORKER_NAME": WORKER_NAME,
        }
        if connection.api_key:
            env["PREFECT_API_KEY"] = connection.api_key
        if connection.auth_string:
            env["PREFECT_API_AUTH_STRING"] = connection.auth_string
        version = self.server_version
        labels = {
            "prefect.io/flow-run-id": run.id,
            "prefect.io/flow-run-name": run.name,
            "prefect.io/version": version,
            "prefect.io/work-pool-name": run.pool_name,
            "prefect.io/worker-name": WORKER_NAME,
        }
        attribution = {
            ("PREFECT__FLOW_ID", "prefect.io/flow-id"): links.get("flow_id"),
            ("PREFECT__FLOW_NAME", "prefect.io/flow-name"): run.flow_name,
            ("PREFECT__DEPLOYMENT_ID", "prefect.io/deployment-id"): run.deployment_id,
            ("PREFECT__DEPLOYMENT_NAME", "prefect.io/deployment-name"): run.deployment_name,
            (None, "prefect.io/work-pool-id"): links.get("work_pool_id"),
        }
        for (variable, label), value in attribution.items():
            if value:
                labels[label] = value
                if variable:
                    env[variable] = value
        return RunEnvironment(
            env=env,
            labels=labels,
            command=FLOW_RUN_COMMAND,
            default_image=prefect_image(version, tuple(sys.version_info[:2])),
        )


def prefect_image(prefect_version: str, python: tuple[int, ...]) -> str:
    """`prefecthq/prefect:<version>-python<X.Y>`, the image a Prefect worker of that version, on that Python,
    gives a job that names none (`prefect.utilities.dockerutils.get_prefect_image_name`)."""
    return f"prefecthq/prefect:{prefect_version}-python{python[0]}.{python[1]}"


def _transition_id(state: dict[str, Any]) -> str | None:
    details = state.get("state_details") or {}
    value = details.get("transition_id")
    return str(value) if value else None

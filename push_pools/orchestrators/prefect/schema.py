"""Prefect's API objects in push-pools' vocabulary, and back. Pure functions, no I/O.

- Pool types: push-pools' `ecs`, `cloud-run`, `aci` are Prefect's push types `ecs:push`, `cloud-run-v2:push`,
  `azure-container-instance:push` on a self-hosted server, and Prefect's worker types `ecs`, `cloud-run-v2`,
  `azure-container-instance` on Prefect Cloud, because Prefect Cloud serves `:push` pools itself and would compete
  for the runs. `process` is `process` everywhere. Reading, every one of these names maps back; a type push-pools
  cannot serve reads as `prefect:<type>`, which no backend claims.
- A flow run's `attempt` is Prefect's `run_count` + 1 while it has not started this attempt (SCHEDULED, PENDING) and
  `run_count` afterwards, so the idempotency key changes only when Prefect really runs the flow again.
- An `AwaitingRetry` run whose flow retries in process (its infrastructure is still alive, sleeping) reads as
  RUNNING: it must not be submitted again, exactly as Prefect's own workers skip it. A PAUSED run (a type
  push-pools has no name for) reads as RUNNING too, keeping Prefect's state name (`Paused`, `Suspended`): neither
  may be submitted, and decisions on them (`set_state(only_from=...)`) are checked against Prefect's own type.
- Releases carry a `transition_id` derived from the PENDING state they end, so that racing dispatchers release a
  run once (Prefect answers the same id again with REJECT, "already made this state transition").
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from push_pools.errors import OrchestratorError
from push_pools.models import Deployment, FlowRun, State, StateType, WorkPool

PUSH_TYPES = {"ecs": "ecs:push", "cloud-run": "cloud-run-v2:push", "aci": "azure-container-instance:push"}
WORKER_TYPES = {"process": "process", "ecs": "ecs", "cloud-run": "cloud-run-v2", "aci": "azure-container-instance"}
_FROM_PREFECT = {prefect: ours for ours, prefect in (*PUSH_TYPES.items(), *WORKER_TYPES.items())}
UNSERVED_PREFIX = "prefect:"
FLOW_RUN_COMMAND = "prefect flow-run execute"
"""What a Prefect worker runs in the container: the flow run is read from `PREFECT__FLOW_RUN_ID`."""
PAUSED = "PAUSED"

_NOT_STARTED = frozenset({StateType.SCHEDULED, StateType.PENDING})
_TRANSITIONS = uuid.UUID("6f1c2a8e-5b7d-4e0a-9c3f-2d8b1e4a7c90")
"""Namespace of push-pools' transition ids (uuid5): fixed, so every dispatcher derives the same ids."""


def our_pool_type(prefect_type: str) -> str:
    """push-pools' name for a Prefect pool type, or `prefect:<type>` for one it cannot serve."""
    return _FROM_PREFECT.get(prefect_type, UNSERVED_PREFIX + prefect_type)


def prefect_pool_type(our_type: str, *, cloud: bool) -> str:
    """The Prefect type of a new pool: the push type on a self-hosted server, the worker type on Prefect Cloud."""
    if not cloud and our_type in PUSH_TYPES:
        return PUSH_TYPES[our_type]
    return WORKER_TYPES.get(our_type, our_type)


def release_transition_id(pending_state_id: str) -> str:
    """One per PENDING state released: two dispatchers releasing the same orphan make one transition."""
    return str(uuid.uuid5(_TRANSITIONS, f"release:{pending_state_id}"))


def state_request(
    state: StateType,
    message: str | None = None,
    *,
    name: str | None = None,
    transition_id: str | None = None,
    scheduled_time: datetime | None = None,
) -> dict[str, Any]:
    """The body of `POST /flow_runs/{id}/set_state` proposing a state (never forced)."""
    details: dict[str, Any] = {}
    if transition_id is not None:
        details["transition_id"] = transition_id
    if scheduled_time is not None:
        details["scheduled_time"] = scheduled_time.isoformat()
    body: dict[str, Any] = {"type": str(state), "name": name or state.display_name, "state_details": details}
    if message is not None:
        body["message"] = message
    return {"state": body}


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def pool_from_api(data: dict[str, Any], last_tick_at: datetime | None = None) -> WorkPool:
    """A work pool read from Prefect. Prefect's names may hold characters push-pools' own pools may not, so the
    (already validated) values are taken as they are."""
    return WorkPool.model_construct(
        name=data["name"],
        type=our_pool_type(data["type"]),
        base_job_template=data.get("base_job_template") or {},
        description=data.get("description"),
        is_paused=bool(data.get("is_paused")),
        concurrency_limit=data.get("concurrency_limit"),
        last_tick_at=last_tick_at,
    )


def pool_update(pool: WorkPool) -> dict[str, Any]:
    """The body of `PATCH /work_pools/{name}`: everything but the name and type, which Prefect cannot change."""
    return {
        "description": pool.description,
        "is_paused": pool.is_paused,
        "base_job_template": pool.base_job_template,
        "concurrency_limit": pool.concurrency_limit,
    }


def deployment_from_api(data: dict[str, Any], flow_name: str | None) -> Deployment:
    """A Prefect deployment: its job variables carry the image (and any command), as `prefect deploy` writes them."""
    job_variables = dict(data.get("job_variables") or {})
    image = job_variables.get("image")
    return Deployment.model_construct(
        id=data["id"],
        name=data["name"],
        pool_name=data.get("work_pool_name") or "",
        flow_name=flow_name,
        image=image if isinstance(image, str) else None,
        command=None,
        parameters=dict(data.get("parameters") or {}),
        job_variables=job_variables,
    )


def our_state_type(prefect_type: str) -> StateType:
    """push-pools' state type for one of Prefect's; PAUSED reads as RUNNING (see the module docstring)."""
    if prefect_type == PAUSED:
        return StateType.RUNNING
    try:
        return StateType(prefect_type)
    except ValueError:
        raise OrchestratorError(f"Prefect reported an unknown state type {prefect_type!r}") from None


def state_from_api(data: dict[str, Any]) -> State:
    state_type = our_state_type(data["type"])
    return State(
        type=state_type,
        name=data.get("name") or str(data["type"]).title(),
        message=data.get("message"),
        timestamp=parse_time(data["timestamp"]) or datetime.now(UTC),
    )


def history_from_api(entries: list[dict[str, Any]]) -> list[State]:
    """A run's states from `GET /flow_run_states/`, oldest first."""
    states = [state_from_api(entry) for entry in entries]
    return sorted(states, key=lambda state: state.timestamp)


def flow_run_from_api(
    data: dict[str, Any],
    *,
    pool_name: str | None = None,
    deployment_name: str | None = None,
    flow_name: str | None = None,
    history: list[dict[str, Any]] | None = None,
) -> FlowRun:
    """A flow run read from Prefect, full (`GET /flow_runs/{id}`) or as a worker reads it (no `state` object)."""
    state = _current_state(data)
    run_count = int(data.get("run_count") or 0)
    attempt = run_count + 1 if state.type in _NOT_STARTED else max(run_count, 1)
    # A SCHEDULED run is due at its current schedule (a retry delay, a concurrency wait), not its first one.
    scheduled = data.get("next_scheduled_start_time") if state.type is StateType.SCHEDULED else None
    expected = parse_time(scheduled or data.get("expected_start_time"))
    return FlowRun(
        id=data["id"],
        name=data["name"],
        pool_name=pool_name or data.get("work_pool_name") or "",
        deployment_id=data.get("deployment_id"),
        deployment_name=deployment_name,
        flow_id=data.get("flow_id"),
        flow_name=flow_name,
        state=state,
        expected_start_time=expected or state.timestamp,
        parameters=dict(data.get("parameters") or {}),
        job_variables=dict(data.get("job_variables") or {}),
        tags=list(data.get("tags") or []),
        infrastructure_pid=data.get("infrastructure_pid") or None,
        attempt=attempt,
        state_history=history_from_api(history or []),
    )


def retrying_in_process(data: dict[str, Any]) -> bool:
    """An AwaitingRetry run whose flow retries inside its still running infrastructure."""
    policy = data.get("empirical_policy") or {}
    return data.get("state_type") == StateType.SCHEDULED and policy.get("retry_type") == "in_process"


def _current_state(data: dict[str, Any]) -> State:
    raw = data.get("state")
    if isinstance(raw, dict) and raw.get("type"):
        state = state_from_api(raw)
    else:
        state_type = our_state_type(str(data.get("state_type")))
        timestamp = parse_time(data.get("updated")) or datetime.now(UTC)
        state = State(type=state_type, name=data.get("state_name") or state_type.display_name, timestamp=timestamp)
    if retrying_in_process(data):
        return state.model_copy(update={"type": StateType.RUNNING})
    return state

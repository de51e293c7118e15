"""ECS task state events, applied to the runs they belong to.

EventBridge sends an "ECS Task State Change" whenever a task of the cluster changes state. push-pools' tasks carry
`startedBy = push-pools-<idempotency key>`, which names the run; other tasks are ignored. For one of ours:

- the run must exist, and the event's task must be the run's recorded infrastructure (same task id): a late
  event from an earlier attempt's task changes nothing;
- a run with no infrastructure recorded yet (its submitter is between RunTask and recording, or died there)
  takes the event only if the task carries the run's current idempotency key and has stopped: ECS starts one
  task per key, so that task is the run's, and its end must not be lost (the tick does not poll ECS);
- the task's state is applied with `Dispatcher.report_infrastructure`: a task that failed to start or exited
  non-zero → CRASHED with the stop reasons (and the last lines of its CloudWatch output); exit 0 → COMPLETED where
  the orchestrator does not report flow states itself; RUNNING → RUNNING likewise. Terminal states are sticky, so
  repeated or late events change nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from push_pools.dispatcher import Dispatcher
from push_pools.errors import ConfigurationError, NotFoundError, PayloadError
from push_pools.models import FlowRun, InfrastructureState, InfrastructureStatus
from push_pools.platforms.aws.backend import EcsBackend
from push_pools.platforms.aws.request import STARTED_BY_PREFIX
from push_pools.platforms.aws.status import parse_infrastructure_id, task_id, task_status

logger = logging.getLogger(__name__)

_UUID_LENGTH = 36
_ENDED = frozenset(
    {InfrastructureState.SUCCEEDED, InfrastructureState.FAILED, InfrastructureState.CANCELLED, InfrastructureState.GONE}
)


@dataclass(frozen=True)
class TaskEvent:
    task_arn: str
    idempotency_key: str
    flow_run_id: str
    status: InfrastructureStatus


def parse_task_event(event: Mapping[str, Any]) -> TaskEvent | None:
    """The event as push-pools reads it; None for a task push-pools did not start."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise PayloadError("an ECS Task State Change needs a `detail` object")
    task_arn, started_by = detail.get("taskArn"), detail.get("startedBy") or ""
    if not isinstance(task_arn, str) or not isinstance(detail.get("lastStatus"), str):
        raise PayloadError("an ECS Task State Change needs `detail.taskArn` and `detail.lastStatus`")
    if not isinstance(started_by, str) or not started_by.startswith(STARTED_BY_PREFIX):
        return None
    key = started_by.removeprefix(STARTED_BY_PREFIX)
    try:
        flow_run_id = str(uuid.UUID(key[:_UUID_LENGTH]))
    except ValueError:
        return None
    return TaskEvent(task_arn, key, flow_run_id, task_status(detail))


def apply_task_event(dispatcher: Dispatcher, event: Mapping[str, Any]) -> dict[str, Any]:
    """Apply one event; the answer says what happened, for the function's log."""
    parsed = parse_task_event(event)
    if parsed is None:
        return {"status": "ignored", "reason": "not a push-pools task"}
    answer: dict[str, Any] = {"flow_run_id": parsed.flow_run_id, "task": parsed.task_arn}
    try:
        run = dispatcher.orchestrator.get_run(parsed.flow_run_id)
    except NotFoundError:
        return answer | {"status": "ignored", "reason": "unknown flow run"}
    reason = _not_the_runs(run, parsed)
    if reason is not None:
        return answer | {"status": "ignored", "reason": reason}
    status = parsed.status
    if status.state is InfrastructureState.FAILED:
        status = _with_output_tail(dispatcher, status, event["detail"])
    changed = dispatcher.report_infrastructure(run, status)
    if changed:
        logger.info("run %s: task %s is %s", run.id, parsed.task_arn, parsed.status.state)
    return answer | {"status": "applied", "infrastructure": str(parsed.status.state), "changed": changed}


def _with_output_tail(
    dispatcher: Dispatcher, status: InfrastructureStatus, task: Mapping[str, Any]
) -> InfrastructureStatus:
    """The failure with the task's last output lines, read by the dispatcher's ECS backend (see `EcsBackend`)."""
    backend = dispatcher.backends.for_type("ecs")
    return backend.with_output_tail(status, task) if isinstance(backend, EcsBackend) else status


def _not_the_runs(run: FlowRun, event: TaskEvent) -> str | None:
    """Why the event's task is not (known to be) this run's infrastructure; None when it is."""
    if run.infrastructure_pid is None:
        if event.idempotency_key != run.idempotency_key:
            return "the task belongs to another attempt of the run"
        if event.status.state not in _ENDED:
            return "the run's infrastructure is not recorded yet"
        return None
    try:
        _, recorded = parse_infrastructure_id(run.infrastructure_pid)
    except ConfigurationError:
        return "the run's infrastructure is not an ECS task"
    if task_id(recorded) != task_id(event.task_arn):
        return "the task is not the run's recorded infrastructure"
    return None

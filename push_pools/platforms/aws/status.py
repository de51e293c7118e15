"""ECS tasks as push-pools reads them: infrastructure ids, and a task's state as an InfrastructureStatus. Pure.

The same reading serves DescribeTasks answers and "ECS Task State Change" events, whose `detail` is a task.

- PROVISIONING, PENDING, ACTIVATING → STARTING; RUNNING and the steps down to STOPPED → RUNNING.
- STOPPED with stop code TaskFailedToStart → FAILED, with ECS's reason (an image that cannot be pulled, a
  secret that cannot be read, no capacity); UserInitiated (StopTask) → CANCELLED; otherwise the exit code of the
  flow's container decides: 0 → SUCCEEDED, anything else (or none) → FAILED with the code, the stop code, ECS's
  reason and the container's (`EssentialContainerExited: Essential container in task exited; container prefect:
  OutOfMemoryError`).
- The flow's container is the one named by the task's first container override (push-pools always puts it
  first), else the only container, else the one named "prefect", else the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from push_pools.errors import ConfigurationError
from push_pools.models import InfrastructureState, InfrastructureStatus

SEPARATOR = "::"
"""Between cluster and task ARN in an infrastructure id: `cluster::taskArn`, Prefect's format (ARNs hold `:`)."""

STARTING_STATES = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
STOPPED = "STOPPED"
FAILED_TO_START = "TaskFailedToStart"
USER_INITIATED = "UserInitiated"


def infrastructure_id(cluster: str, task_arn: str) -> str:
    return f"{cluster}{SEPARATOR}{task_arn}"


def parse_infrastructure_id(infrastructure_pid: str) -> tuple[str, str]:
    """`cluster::taskArn` → (cluster, task ARN); a ConfigurationError for anything else."""
    cluster, separator, task_arn = infrastructure_pid.partition(SEPARATOR)
    if not separator or not cluster or not task_arn.startswith("arn:"):
        raise ConfigurationError(f"{infrastructure_pid!r} is not an ECS infrastructure id (cluster::taskArn)")
    return cluster, task_arn


def task_id(task_arn: str) -> str:
    """The task's id, the last part of its ARN: the same in old and new ARN formats."""
    return task_arn.rsplit("/", 1)[-1]


def task_status(task: Mapping[str, Any]) -> InfrastructureStatus:
    """What a task (from DescribeTasks, or an event's detail) says about the run it carries."""
    last_status = str(task.get("lastStatus", ""))
    if last_status in STARTING_STATES:
        return InfrastructureStatus(state=InfrastructureState.STARTING)
    if last_status != STOPPED:
        return InfrastructureStatus(state=InfrastructureState.RUNNING)
    reason = task.get("stoppedReason")
    if task.get("stopCode") == FAILED_TO_START:
        return InfrastructureStatus(state=InfrastructureState.FAILED, message=f"ECS task failed to start: {reason}")
    if task.get("stopCode") == USER_INITIATED:
        return InfrastructureStatus(state=InfrastructureState.CANCELLED, message=f"ECS task stopped: {reason}")
    container = flow_container(task)
    exit_code = container.get("exitCode") if container else None
    if exit_code == 0:
        return InfrastructureStatus(state=InfrastructureState.SUCCEEDED, exit_code=0)
    return InfrastructureStatus(
        state=InfrastructureState.FAILED,
        exit_code=exit_code if isinstance(exit_code, int) else None,
        message=stop_reasons(task, container) or "ECS task stopped without an exit code",
    )


def stop_reasons(task: Mapping[str, Any], container: Mapping[str, Any] | None) -> str:
    """ECS's account of a stop: `stopCode: stoppedReason; container NAME: reason`, the parts it gave."""
    stop_code, reason = task.get("stopCode"), task.get("stoppedReason")
    parts = [": ".join(str(part) for part in (stop_code, reason) if part)]
    if container and container.get("reason"):
        parts.append(f"container {container.get('name')}: {container['reason']}")
    return "; ".join(part for part in parts if part)


def flow_container(task: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The container the flow ran in (see the module's docstring)."""
    containers: Sequence[Mapping[str, Any]] = [c for c in task.get("containers", []) if isinstance(c, Mapping)]
    overrides = (
        task.get("overrides", {}).get("containerOverrides", []) if isinstance(task.get("overrides"), Mapping) else []
    )
    wanted = [o.get("name") for o in overrides[:1] if isinstance(o, Mapping)]
    if len(containers) == 1 and not wanted:
        return containers[0]
    for name in [*wanted, "prefect"]:
        found = next((c for c in containers if c.get("name") == name), None)
        if found is not None:
            return found
    return containers[0] if containers else None

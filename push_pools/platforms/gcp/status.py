"""Reading Cloud Run resources, pure: an Execution as an InfrastructureStatus, and whether a Job is idle.

Both take the `run_v2` proto messages (or anything with the same attributes), whose unset timestamps are None.
A failed execution's message is Cloud Run's condition message (which names the failed task: "Task J-abc12-task0
failed with message: The container exited with an error."), bounded, and the link to its logs: the failed task's
`log_uri` when the backend read its tasks (it also gives the exit code), else the execution's. The output itself is
in Cloud Logging, which the function does not read.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from push_pools.backends.kit.evidence import TAIL_CHARS
from push_pools.models import InfrastructureState, InfrastructureStatus


def execution_status(execution: Any, failed_task: Any = None) -> InfrastructureStatus:
    """An Execution (proto) read as an InfrastructureStatus; `failed_task`, one of its Tasks whose last attempt
    failed, gives a failure its exit code and log link."""
    if execution.completion_time is not None:
        if execution.cancelled_count > 0:
            return InfrastructureStatus(state=InfrastructureState.CANCELLED, message=_condition_message(execution))
        if execution.failed_count == 0 and execution.succeeded_count >= max(execution.task_count, 1):
            return InfrastructureStatus(state=InfrastructureState.SUCCEEDED)
        message = _condition_message(execution) or f"{execution.failed_count} task(s) failed"
        if len(message) > TAIL_CHARS:
            message = message[: TAIL_CHARS - 1] + "…"
        link = (failed_task.log_uri if failed_task is not None else "") or execution.log_uri
        logs = f"; logs: {link}" if link else ""
        return InfrastructureStatus(
            state=InfrastructureState.FAILED,
            exit_code=failed_task.last_attempt_result.exit_code if failed_task is not None else None,
            message=f"Cloud Run execution failed: {message}{logs}",
        )
    if execution.running_count > 0 or execution.start_time is not None:
        return InfrastructureStatus(state=InfrastructureState.RUNNING)
    return InfrastructureStatus(state=InfrastructureState.STARTING)


def is_idle(job: Any, now: datetime, retention: timedelta) -> bool:
    """No execution of the job started or finished within `retention`, and its latest one is not running."""
    latest = job.latest_created_execution
    if latest.name and latest.completion_time is None:
        return False
    moments = [moment for moment in (job.create_time, latest.create_time, latest.completion_time) if moment is not None]
    return bool(moments) and now - max(moments) >= retention


def _condition_message(execution: Any) -> str | None:
    messages = [condition.message for condition in execution.conditions if condition.message]
    completed = [condition.message for condition in execution.conditions if condition.type_ == "Completed"]
    return (completed[0] if completed and completed[0] else None) or (messages[0] if messages else None)

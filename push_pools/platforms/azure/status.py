"""What a container group's state says about its flow run. Pure.

ACI reports three layers: the group's provisioning state (Pending/Creating → Succeeded, or Failed when it could not
be placed or its image not pulled), the group's instance state, and the job container's current state (Waiting →
Running → Terminated with an exit code). The container's exit code, when there is one, decides; a failed
provisioning is a failure; a group stopped by someone is a cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from push_pools.models import InfrastructureState, InfrastructureStatus

LOG_TAIL_LINES = 20
MAX_MESSAGE_CHARS = 2000
_STARTING_PROVISIONING = {"pending", "creating", "repairing", "updating", "accepted"}


@dataclass(frozen=True)
class GroupReading:
    """The parts of a container group (GET) that tell how its run is going."""

    provisioning_state: str | None = None
    group_state: str | None = None
    container_state: str | None = None
    exit_code: int | None = None
    detail_status: str | None = None
    finish_time: datetime | None = None
    events: tuple[str, ...] = ()
    """Event messages of the group and the job container, oldest first."""
    tags: dict[str, str] = field(default_factory=dict)


def infrastructure_status(reading: GroupReading, logs: str | None = None) -> InfrastructureStatus:
    """The run's infrastructure status; `logs` (the container's last lines) go into a failure's message."""
    provisioning = (reading.provisioning_state or "").lower()
    if (reading.container_state or "").lower() == "terminated":
        if reading.exit_code == 0:
            return InfrastructureStatus(state=InfrastructureState.SUCCEEDED, exit_code=0)
        return InfrastructureStatus(
            state=InfrastructureState.FAILED, exit_code=reading.exit_code, message=_failure_message(reading, logs)
        )
    if provisioning == "failed":
        return InfrastructureStatus(state=InfrastructureState.FAILED, message=_failure_message(reading, logs))
    if provisioning == "deleting":
        return InfrastructureStatus(state=InfrastructureState.GONE, message="the container group is being deleted")
    if (reading.group_state or "").lower() == "stopped":
        return InfrastructureStatus(
            state=InfrastructureState.CANCELLED, message="the container group was stopped before its container ended"
        )
    if (reading.container_state or "").lower() == "running":
        return InfrastructureStatus(state=InfrastructureState.RUNNING)
    detail = reading.detail_status or provisioning or None
    return InfrastructureStatus(state=InfrastructureState.STARTING, message=detail)


def is_finished(reading: GroupReading) -> bool:
    """True when nothing will run in the group any more: it may be deleted once kept long enough."""
    return (
        (reading.container_state or "").lower() == "terminated"
        or (reading.provisioning_state or "").lower() == "failed"
        or (reading.group_state or "").lower() in {"stopped", "succeeded", "failed"}
    )


def is_starting(reading: GroupReading) -> bool:
    return (reading.provisioning_state or "").lower() in _STARTING_PROVISIONING


def last_lines(text: str, lines: int = LOG_TAIL_LINES, limit: int = MAX_MESSAGE_CHARS) -> str:
    """The end of a log: its last lines, and no more than `limit` characters of them."""
    tail = "\n".join(text.rstrip().splitlines()[-lines:])
    return tail if len(tail) <= limit else "…" + tail[-(limit - 1) :]


def _failure_message(reading: GroupReading, logs: str | None) -> str:
    parts = []
    if reading.detail_status:
        parts.append(reading.detail_status)
    if reading.events:
        parts.append(f"last event: {reading.events[-1]}")
    if logs and logs.strip():
        parts.append("last log lines:\n" + last_lines(logs))
    message = "; ".join(parts) if parts else "the container group failed"
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"

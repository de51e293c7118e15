"""What a container group's state says about its flow run. Pure.

ACI reports three layers: the group's provisioning state (Pending/Creating → Succeeded, or Failed when it could not
be placed or its image not pulled), the group's instance state, and the job container's current state (Waiting →
Running → Terminated with an exit code). The container's exit code, when there is one, decides; a failed
provisioning is a failure; a group stopped by someone is a cancellation.

A failure's message is the evidence ACI keeps while the group exists: the container's detail status, its warning
events (the last three: "Failed to pull image ...", "Back-off restarting ...") or else its last event, and the last
lines of its log (read by the backend, masked and bounded by `backends.kit.evidence`), in at most `TAIL_CHARS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from push_pools.backends.kit.evidence import TAIL_CHARS
from push_pools.models import InfrastructureState, InfrastructureStatus

WARNING_EVENTS = 3
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
    warnings: tuple[str, ...] = ()
    """The messages of those events ACI typed "Warning", oldest first."""
    tags: dict[str, str] = field(default_factory=dict)


def infrastructure_status(reading: GroupReading, log_tail: str | None = None) -> InfrastructureStatus:
    """The run's infrastructure status; `log_tail` (the container's last lines, masked) goes into a failure's
    message."""
    provisioning = (reading.provisioning_state or "").lower()
    if (reading.container_state or "").lower() == "terminated":
        if reading.exit_code == 0:
            return InfrastructureStatus(state=InfrastructureState.SUCCEEDED, exit_code=0)
        return InfrastructureStatus(
            state=InfrastructureState.FAILED, exit_code=reading.exit_code, message=_failure_message(reading, log_tail)
        )
    if provisioning == "failed":
        return InfrastructureStatus(state=InfrastructureState.FAILED, message=_failure_message(reading, log_tail))
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


def _failure_message(reading: GroupReading, log_tail: str | None) -> str:
    """ACI's account, then the log's last lines, in at most TAIL_CHARS (the log's end is what is kept)."""
    parts = [reading.detail_status] if reading.detail_status else []
    warnings = list(dict.fromkeys(reversed(reading.warnings)))[:WARNING_EVENTS][::-1]
    if warnings:
        parts.append("events: " + "; ".join(warnings))
    elif reading.events:
        parts.append(f"last event: {reading.events[-1]}")
    account = _cut("; ".join(parts), TAIL_CHARS // 2 if log_tail else TAIL_CHARS)
    if not log_tail:
        return account or "the container group failed"
    prefix = f"{account}; last log lines:\n" if account else "last log lines:\n"
    room = TAIL_CHARS - len(prefix)
    return prefix + (log_tail if len(log_tail) <= room else "…" + log_tail[-(room - 1) :])


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

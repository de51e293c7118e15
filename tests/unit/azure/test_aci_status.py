"""What a container group's reading means for its run, Retry-After parsing, and the error classification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from push_pools.backends.kit.evidence import TAIL_CHARS, output_tail
from push_pools.backends.kit.retry_after import parse_retry_after
from push_pools.models import InfrastructureState
from push_pools.platforms.azure.status import GroupReading, infrastructure_status, is_finished, is_starting

S = InfrastructureState


@pytest.mark.parametrize(
    ("reading", "state", "exit_code"),
    [
        (GroupReading("Pending", None, None), S.STARTING, None),
        (GroupReading("Creating", "Pending", "Waiting", detail_status="Pulling"), S.STARTING, None),
        (GroupReading("Succeeded", "Running", "Running"), S.RUNNING, None),
        (GroupReading("Succeeded", "Succeeded", "Terminated", exit_code=0), S.SUCCEEDED, 0),
        (GroupReading("Succeeded", "Failed", "Terminated", exit_code=2), S.FAILED, 2),
        (GroupReading("Succeeded", "Failed", "Terminated", exit_code=None), S.FAILED, None),
        (GroupReading("Failed", "Failed", "Waiting", events=("Failed to pull image",)), S.FAILED, None),
        (GroupReading("Succeeded", "Stopped", "Running"), S.CANCELLED, None),
        (GroupReading("Succeeded", "Stopped", "Terminated", exit_code=137), S.FAILED, 137),
        (GroupReading("Deleting", None, "Running"), S.GONE, None),
        (GroupReading(None, None, None), S.STARTING, None),
    ],
)
def test_readings_map_to_infrastructure_states(reading: GroupReading, state: S, exit_code: int | None) -> None:
    status = infrastructure_status(reading)
    assert status.state is state
    assert status.exit_code == exit_code


def test_a_failure_message_has_the_detail_the_last_event_and_the_last_log_lines() -> None:
    reading = GroupReading("Succeeded", "Failed", "Terminated", exit_code=1, detail_status="Error", events=("a", "b"))
    tail = output_tail("\n".join(f"line {i}" for i in range(100)) + "\nTraceback: boom\n")
    message = infrastructure_status(reading, tail).message or ""
    assert message == f"Error; last event: b; last log lines:\n{tail}"


def test_warning_events_are_the_evidence_the_last_three_once_each() -> None:
    warnings = ("pull failed", "back-off 1", "back-off 2", "pull failed", "back-off 3")
    reading = GroupReading(
        "Failed", "Failed", "Waiting", detail_status="ErrImagePull", events=("Started", *warnings), warnings=warnings
    )
    message = infrastructure_status(reading).message
    assert message == "ErrImagePull; events: back-off 2; pull failed; back-off 3"


@pytest.mark.parametrize("detail", ["Error", "E" * 5000])
def test_a_failure_message_is_bounded_and_keeps_the_logs_end(detail: str) -> None:
    reading = GroupReading("Succeeded", "Failed", "Terminated", exit_code=1, detail_status=detail)
    message = infrastructure_status(reading, "x" * 10_000 + "END").message or ""
    assert len(message) == TAIL_CHARS
    assert message.startswith(detail[:100])
    assert message.endswith("xEND")
    assert len(infrastructure_status(reading).message or "") <= TAIL_CHARS


def test_a_failure_without_details_still_says_something() -> None:
    assert infrastructure_status(GroupReading("Failed")).message == "the container group failed"


@pytest.mark.parametrize(
    ("reading", "finished", "starting"),
    [
        (GroupReading("Succeeded", "Running", "Running"), False, False),
        (GroupReading("Pending"), False, True),
        (GroupReading("Succeeded", "Succeeded", "Terminated", exit_code=0), True, False),
        (GroupReading("Failed"), True, False),
        (GroupReading("Succeeded", "Stopped"), True, False),
        (GroupReading("Succeeded"), False, False),
    ],
)
def test_finished_and_starting(reading: GroupReading, finished: bool, starting: bool) -> None:
    assert is_finished(reading) is finished
    assert is_starting(reading) is starting


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("0", 0.0), ("17", 17.0), ("2.5", 2.5), ("-3", 0.0), ("soon", None)],
)
def test_retry_after_in_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_as_an_http_date() -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    seconds = parse_retry_after(format_datetime(later, usegmt=True))
    assert seconds is not None
    assert 25 <= seconds <= 31
    assert parse_retry_after(format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)) == 0.0

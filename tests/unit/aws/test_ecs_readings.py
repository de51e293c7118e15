"""Pure readings of ECS: task states, infrastructure ids, AWS errors by code, and the launch pacer's arithmetic."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from push_pools.errors import (
    ConfigurationError,
    ExecutorDeniedError,
    ExecutorNotReadyError,
    PermanentSubmissionError,
    TransientSubmissionError,
)
from push_pools.models import InfrastructureState
from push_pools.platforms.aws.errors import failures_error, translate
from push_pools.platforms.aws.logs import LogStream, awslogs_of, tail_command
from push_pools.platforms.aws.pacing import LaunchPacer
from push_pools.platforms.aws.status import infrastructure_id, parse_infrastructure_id, task_id, task_status
from tests.unit.aws.conftest import fixture

ARN = "arn:aws:ecs:us-east-1:123456789012:task/push-pools/1c4a5c1c2a8f4e6e9a0b3c2d1e0f9a8b"


def task(**fields: Any) -> dict[str, Any]:
    detail: dict[str, Any] = fixture("ecs_task_state_change.json")["detail"]
    return detail | fields


@pytest.mark.parametrize(
    ("fields", "state", "exit_code"),
    [
        ({"lastStatus": "PROVISIONING"}, InfrastructureState.STARTING, None),
        ({"lastStatus": "PENDING"}, InfrastructureState.STARTING, None),
        ({"lastStatus": "RUNNING"}, InfrastructureState.RUNNING, None),
        ({"lastStatus": "DEPROVISIONING"}, InfrastructureState.RUNNING, None),
        ({}, InfrastructureState.FAILED, 1),
        ({"containers": [{"name": "prefect", "exitCode": 0}]}, InfrastructureState.SUCCEEDED, 0),
        ({"stopCode": "TaskFailedToStart", "containers": [{"name": "prefect"}]}, InfrastructureState.FAILED, None),
        ({"stopCode": "UserInitiated"}, InfrastructureState.CANCELLED, None),
        ({"stopCode": "SpotInterruption", "containers": [{"name": "prefect"}]}, InfrastructureState.FAILED, None),
    ],
)
def test_task_states(fields: dict[str, Any], state: InfrastructureState, exit_code: int | None) -> None:
    status = task_status(task(**fields))
    assert (status.state, status.exit_code) == (state, exit_code)


def test_the_flows_container_decides_not_a_sidecar() -> None:
    containers = [{"name": "envoy", "exitCode": 143}, {"name": "prefect", "exitCode": 0}]
    assert task_status(task(containers=containers)).state is InfrastructureState.SUCCEEDED
    overrides = {"containerOverrides": [{"name": "app"}]}
    containers = [{"name": "prefect", "exitCode": 0}, {"name": "app", "exitCode": 2}]
    status = task_status(task(containers=containers, overrides=overrides))
    assert (status.state, status.exit_code) == (InfrastructureState.FAILED, 2)


def test_a_failure_to_start_says_why() -> None:
    status = task_status(
        task(stopCode="TaskFailedToStart", stoppedReason="CannotPullContainerError: pull access denied", containers=[])
    )
    assert status.message == "ECS task failed to start: CannotPullContainerError: pull access denied"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"containers": [{"name": "prefect", "exitCode": 137, "reason": "OutOfMemoryError: Container killed"}]},
            "EssentialContainerExited: Essential container in task exited; container prefect: OutOfMemoryError: "
            "Container killed",
        ),
        (
            {"stopCode": "SpotInterruption", "stoppedReason": "Your Spot Task was interrupted.", "containers": []},
            "SpotInterruption: Your Spot Task was interrupted.",
        ),
        ({"stopCode": None, "stoppedReason": None, "containers": [{"name": "prefect"}]}, "ECS task stopped without"),
    ],
)
def test_a_failure_names_the_stop_code_and_both_reasons(fields: dict[str, Any], message: str) -> None:
    assert (task_status(task(**fields)).message or "").startswith(message)


def test_infrastructure_ids() -> None:
    pid = infrastructure_id("push-pools", ARN)
    assert pid == f"push-pools::{ARN}"
    assert parse_infrastructure_id(pid) == ("push-pools", ARN)
    assert task_id(ARN) == task_id("arn:aws:ecs:us-east-1:123456789012:task/1c4a5c1c2a8f4e6e9a0b3c2d1e0f9a8b")
    for wrong in ("host:123", "::" + ARN, "push-pools::task/abc", ""):
        with pytest.raises(ConfigurationError, match="not an ECS infrastructure id"):
            parse_infrastructure_id(wrong)


def client_error(code: str, status: int = 400, headers: dict[str, str] | None = None) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "message from AWS"},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
    }
    return ClientError(response, "RunTask")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client_error("ThrottlingException"), TransientSubmissionError),
        (client_error("ServerException", 500), TransientSubmissionError),
        (client_error("SomethingNew", 503), TransientSubmissionError),
        (client_error("TooManyRequestsException", 429), TransientSubmissionError),
        (client_error("LimitExceededException"), TransientSubmissionError),
        (client_error("ClusterNotFoundException"), PermanentSubmissionError),
        (client_error("AccessDeniedException"), ExecutorDeniedError),
        (client_error("UnrecognizedClientException"), ExecutorDeniedError),
        (client_error("InvalidParameterException"), PermanentSubmissionError),
        (client_error("ClientException"), PermanentSubmissionError),
        (client_error("PlatformUnknownException"), PermanentSubmissionError),
        (EndpointConnectionError(endpoint_url="https://ecs.us-east-1.amazonaws.com"), TransientSubmissionError),
        (ReadTimeoutError(endpoint_url="https://ecs.us-east-1.amazonaws.com"), TransientSubmissionError),
        (NoCredentialsError(), ExecutorNotReadyError),
        (NoRegionError(), ExecutorNotReadyError),
    ],
)
def test_errors_are_mapped_by_code(error: Exception, kind: type[Exception]) -> None:
    assert type(translate(error, "ecs:RunTask")) is kind


def test_the_message_names_the_action_the_code_and_what_to_do() -> None:
    message = str(translate(client_error("ClusterNotFoundException"), "ecs:RunTask"))
    assert message.startswith("ecs:RunTask: HTTP 400 ClusterNotFoundException: message from AWS")
    assert "create the cluster" in message


def test_retry_after_reaches_the_dispatcher() -> None:
    error = translate(client_error("ThrottlingException", 429, {"retry-after": "2.5"}), "ecs:RunTask")
    assert isinstance(error, TransientSubmissionError)
    assert error.retry_after == 2.5
    unreadable = translate(client_error("ThrottlingException", 429, {"retry-after": "soon"}), "ecs:RunTask")
    assert isinstance(unreadable, TransientSubmissionError)
    assert unreadable.retry_after is None


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (
            "Capacity is unavailable at this time. Please try again later or in a different availability zone",
            TransientSubmissionError,
        ),
        ("RESOURCE:CPU", TransientSubmissionError),
        ("RESOURCE:ENI", TransientSubmissionError),
        ("AGENT", TransientSubmissionError),
        ("MISSING", PermanentSubmissionError),
        ("ATTRIBUTE", PermanentSubmissionError),
    ],
)
def test_run_task_failures(reason: str, kind: type[Exception]) -> None:
    error = failures_error([{"arn": ARN, "reason": reason, "detail": "d"}])
    assert type(error) is kind
    assert reason in str(error)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_the_pacer_stays_out_of_the_way_until_ecs_throttles() -> None:
    time = FakeTime()
    pacer = LaunchPacer(launches_per_second=20, clock=time.clock, sleep=time.sleep)
    assert not any(pacer.wait_for_slot() for _ in range(100))
    assert time.slept == []


def test_after_a_throttle_calls_get_slots_at_the_launch_rate() -> None:
    time = FakeTime()
    pacer = LaunchPacer(launches_per_second=20, clock=time.clock, sleep=time.sleep)
    pacer.throttled(paced=False)
    assert [pacer.wait_for_slot() for _ in range(3)] == [True, True, True]
    assert time.slept == [0.05, 0.05, 0.05]


def test_throttles_of_paced_calls_slow_the_pace_and_launches_restore_it() -> None:
    time = FakeTime()
    pacer = LaunchPacer(launches_per_second=20, clock=time.clock, sleep=time.sleep, max_interval=1.0)
    pacer.throttled(paced=False)
    for _ in range(3):
        pacer.throttled(paced=True)
    assert pacer.interval == pytest.approx(0.05 * LaunchPacer.SLOW_DOWN**3)
    for _ in range(200):
        pacer.launched()
    assert pacer.interval == pytest.approx(0.05)
    for _ in range(100):
        pacer.throttled(paced=True)
    assert pacer.interval == 1.0


def test_pacing_ends_after_a_quiet_spell() -> None:
    time = FakeTime()
    pacer = LaunchPacer(launches_per_second=20, quiet_seconds=2, clock=time.clock, sleep=time.sleep)
    pacer.throttled(paced=False)
    assert pacer.pacing
    time.now += 2.01
    assert not pacer.pacing
    assert pacer.wait_for_slot() is False


def definition(options: dict[str, str] | None, driver: str = "awslogs") -> dict[str, Any]:
    configuration = {"logDriver": driver, "options": options} if options is not None else None
    return {"containerDefinitions": [{"name": "other"}, {"name": "prefect", "logConfiguration": configuration}]}


@pytest.mark.parametrize(
    ("task_definition", "container", "stream"),
    [
        (
            definition({"awslogs-group": "/g", "awslogs-stream-prefix": "p", "awslogs-region": "eu-west-1"}),
            {"name": "prefect"},
            LogStream("/g", "p/prefect/t1", "eu-west-1"),
        ),
        (
            definition({"awslogs-group": "/g", "awslogs-stream-prefix": "p"}),
            {"name": "prefect"},
            LogStream("/g", "p/prefect/t1", "us-east-1"),
        ),
        (
            definition({"awslogs-group": "/g"}),
            {"name": "prefect", "runtimeId": "d0c4e7"},
            LogStream("/g", "d0c4e7", "us-east-1"),
        ),
        (definition({"awslogs-group": "/g"}), {"name": "prefect"}, None),
    ],
)
def test_the_stream_of_a_tasks_container_follows_the_awslogs_driver(
    task_definition: dict[str, Any], container: dict[str, Any], stream: LogStream | None
) -> None:
    awslogs = awslogs_of(task_definition, "prefect")
    assert awslogs is not None
    assert awslogs.stream(container, "t1", "us-east-1") == stream


@pytest.mark.parametrize(
    "task_definition",
    [
        definition(None),
        definition({"awslogs-group": "/g"}, driver="splunk"),
        definition({}),
        {"containerDefinitions": []},
    ],
)
def test_a_container_without_awslogs_has_no_stream(task_definition: dict[str, Any]) -> None:
    assert awslogs_of(task_definition, "prefect") is None


def test_the_tail_command_quotes_what_it_names() -> None:
    assert LogStream("/g", "p/prefect/t1", "us-east-1").tail_command() == (
        "aws logs tail /g --log-stream-names p/prefect/t1 --region us-east-1 --follow"
    )
    assert tail_command("/my group", None) == "aws logs tail '/my group' --follow"

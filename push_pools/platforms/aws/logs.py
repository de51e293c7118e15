"""A task's own output in CloudWatch Logs, where the awslogs driver puts it. Reading is pure but for `read_lines`.

The awslogs driver writes a container's output to the group `awslogs-group`, stream
`<awslogs-stream-prefix>/<container name>/<task id>`, in `awslogs-region`. Without a stream prefix (EC2 launch type
only) the stream is named after the container's Docker id, which DescribeTasks reports as `runtimeId` once the
container exists.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

MAX_PAGES = 100
"""GetLogEvents pages (up to 1 MB each) read for a whole stream: a bound on a runaway job's output, not a limit met."""


class LogsClient(Protocol):
    """The part of boto3's CloudWatch Logs client the backend calls."""

    def get_log_events(self, **request: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LogStream:
    """Where one container's output is in CloudWatch."""

    group: str
    stream: str
    region: str | None

    def tail_command(self) -> str:
        """The AWS CLI command that shows the stream, for whoever cannot read it through push-pools."""
        return tail_command(self.group, self.region, self.stream)


def tail_command(group: str, region: str | None, stream: str | None = None) -> str:
    """`aws logs tail` for the group, or for one of its streams."""
    streams = f" --log-stream-names {shlex.quote(stream)}" if stream else ""
    in_region = f" --region {shlex.quote(region)}" if region else ""
    return f"aws logs tail {shlex.quote(group)}{streams}{in_region} --follow"


@dataclass(frozen=True)
class AwsLogs:
    """A container definition's awslogs configuration: where each of its tasks' output goes."""

    group: str
    stream_prefix: str | None
    region: str | None

    def stream(self, container: Mapping[str, Any], task_id: str, default_region: str | None) -> LogStream | None:
        """The stream of the task's container (as DescribeTasks shows it); None while it cannot be named."""
        region = self.region or default_region
        if self.stream_prefix:
            return LogStream(self.group, f"{self.stream_prefix}/{container.get('name')}/{task_id}", region)
        runtime_id = container.get("runtimeId")
        return LogStream(self.group, str(runtime_id), region) if runtime_id else None


def awslogs_of(task_definition: Mapping[str, Any], container_name: str) -> AwsLogs | None:
    """The container's awslogs configuration in the task definition, if it logs there."""
    definitions = task_definition.get("containerDefinitions") or []
    definition = next((d for d in definitions if d.get("name") == container_name), None)
    configuration = (definition or {}).get("logConfiguration") or {}
    options = configuration.get("options") or {}
    if configuration.get("logDriver") != "awslogs" or not options.get("awslogs-group"):
        return None
    return AwsLogs(options["awslogs-group"], options.get("awslogs-stream-prefix"), options.get("awslogs-region"))


def read_lines(client: LogsClient, stream: LogStream, tail: int | None) -> list[str]:
    """The stream's messages, oldest first: its last `tail` ones, or all of them (page by page) when None."""
    if tail is not None:
        if tail <= 0:
            return []
        answer = client.get_log_events(
            logGroupName=stream.group, logStreamName=stream.stream, startFromHead=False, limit=min(tail, 10_000)
        )
        return [str(event.get("message", "")) for event in answer.get("events", [])][-tail:]
    lines: list[str] = []
    request: dict[str, Any] = {"logGroupName": stream.group, "logStreamName": stream.stream, "startFromHead": True}
    for _ in range(MAX_PAGES):
        answer = client.get_log_events(**request)
        lines += [str(event.get("message", "")) for event in answer.get("events", [])]
        token = answer.get("nextForwardToken")
        if not answer.get("events") or token is None or token == request.get("nextToken"):
            break
        request["nextToken"] = token
    return lines

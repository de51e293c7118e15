"""A task's own output from CloudWatch (moto's logs service, written where the awslogs driver would write it): in
the CRASHED message of a task event, through `logs()`, and the `aws logs tail` command where reading is denied."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from moto.ecs.models import ecs_backends

from push_pools.backends.base import RenderedJob
from push_pools.cli import context, main
from push_pools.errors import ConfigurationError
from push_pools.jobs import run_context
from push_pools.models import StateType
from push_pools.platforms.aws.configuration import DEFAULT_CONTAINER_NAME
from push_pools.platforms.aws.function import LambdaFunction
from push_pools.platforms.aws.status import parse_infrastructure_id, task_id
from tests.fakes.aws_front import Call, PassThrough, error_response
from tests.fakes.ecs_semantics import MOTO_ACCOUNT
from tests.integration.aws.conftest import REGION, EcsPool

GROUP = "/push-pools/test/tasks"
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/push-pools-task-execution"
LOGGED = {
    "configure_cloudwatch_logs": True,
    "execution_role_arn": EXECUTION_ROLE,
    "cloudwatch_logs_options": {"awslogs-group": GROUP, "awslogs-create-group": "false"},
    "env": {"PREFECT_API_AUTH_STRING": "user:run-s3cret"},
}


def submit_logged_run(ecs_pool: EcsPool, lines: list[str]) -> tuple[str, str]:
    """A run whose task logs to CloudWatch; its stream holds `lines`, as the awslogs driver would have written them."""
    run = ecs_pool.schedule(job_variables=LOGGED)
    pid = ecs_pool.dispatcher.submit_run(run.id).infrastructure_pid or ""
    task_arn = parse_infrastructure_id(pid)[1]
    stream = f"prefect-logs_{ecs_pool.pool.name}_{ecs_pool.deployment.id}/{DEFAULT_CONTAINER_NAME}/{task_id(task_arn)}"
    logs = ecs_pool.world.client("logs")
    if GROUP not in [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]:
        logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    now_ms = int(time.time() * 1000)  # CloudWatch drops events older than 14 days (rejectedLogEventsInfo)
    events = [{"timestamp": now_ms - len(lines) + i, "message": line} for i, line in enumerate(lines)]
    if events:
        answer = logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)
        assert "rejectedLogEventsInfo" not in answer
    return run.id, pid


def test_a_crashed_task_shows_its_stop_code_reasons_and_masked_output_tail(
    ecs_pool: EcsPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_KEY", "pnu_function_key")
    output = [f"step {i}" for i in range(30)] + ["key pnu_function_key auth user:run-s3cret", "ValueError: boom"]
    run_id, pid = submit_logged_run(ecs_pool, output)
    event = ecs_pool.stop(parse_infrastructure_id(pid)[1], exit_code=1)
    LambdaFunction(ecs_pool.dispatcher)(event, None)
    state = ecs_pool.store.get_run(run_id).state
    expected_tail = "\n".join([*(f"step {i}" for i in range(12, 30)), "key ******** auth ********", "ValueError: boom"])
    assert state.type is StateType.CRASHED
    assert state.message == (
        "Infrastructure exited with code 1: EssentialContainerExited: Essential container in task exited; "
        f"last output lines:\n{expected_tail}"
    )


def test_logs_read_the_tasks_stream_whole_or_tailed(ecs_pool: EcsPool) -> None:
    _, pid = submit_logged_run(ecs_pool, ["one", "two", "auth user:run-s3cret"])
    assert ecs_pool.backend.logs(pid).lines == ("one", "two", "auth ********")
    assert ecs_pool.backend.logs(pid, tail=1).lines == ("auth ********",)
    assert ecs_pool.backend.logs(pid, tail=0).lines == ()


def test_logs_of_a_task_without_awslogs_say_so(ecs_pool: EcsPool) -> None:
    run = ecs_pool.schedule()
    pid = ecs_pool.dispatcher.submit_run(run.id).infrastructure_pid or ""
    with pytest.raises(Exception, match="does not log to CloudWatch"):
        ecs_pool.backend.logs(pid)
    event = ecs_pool.stop(parse_infrastructure_id(pid)[1], exit_code=2)
    LambdaFunction(ecs_pool.dispatcher)(event, None)
    message = ecs_pool.store.get_run(run.id).state.message or ""
    assert message == "Infrastructure exited with code 2: EssentialContainerExited: Essential container in task exited"


class _DenyLogs(PassThrough):
    def on_request(self, call: Call) -> AWSResponse | None:
        if call.operation != "GetLogEvents":
            return None
        return error_response(call, "AccessDeniedException", "not authorized to perform: logs:GetLogEvents")


def test_where_reading_is_denied_logs_give_the_aws_cli_command_and_a_crash_keeps_ecs_reasons(
    ecs_pool_server: EcsPool,
) -> None:
    run_id, pid = submit_logged_run(ecs_pool_server, ["hello"])
    ecs_pool_server.world.add_layer(_DenyLogs())
    found = ecs_pool_server.backend.logs(pid)
    stream = f"prefect-logs_ecs-pool_{ecs_pool_server.deployment.id}/{DEFAULT_CONTAINER_NAME}/"
    stream += task_id(parse_infrastructure_id(pid)[1])
    assert found.lines == ()
    assert found.elsewhere == f"aws logs tail {GROUP} --log-stream-names {stream} --region us-east-1 --follow"
    event: dict[str, Any] = ecs_pool_server.stop(parse_infrastructure_id(pid)[1], exit_code=3)
    LambdaFunction(ecs_pool_server.dispatcher)(event, None)
    state = ecs_pool_server.store.get_run(run_id).state
    assert (state.type, state.message) == (
        StateType.CRASHED,
        "Infrastructure exited with code 3: EssentialContainerExited: Essential container in task exited",
    )


def test_runs_logs_prints_an_ecs_runs_output(
    ecs_pool: EcsPool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id, _ = submit_logged_run(ecs_pool, ["one", "two", "auth user:run-s3cret"])
    monkeypatch.setenv("PUSH_POOL_HOME", str(ecs_pool.store.path.parent))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    context.reset()
    capsys.readouterr()
    assert main(["runs", "logs", run_id, "--tail", "2"]) == 0
    assert capsys.readouterr().out == "two\nauth ********\n"


def test_a_task_ecs_has_forgotten_is_found_where_its_pools_job_logs(
    ecs_pool: EcsPool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id, pid = submit_logged_run(ecs_pool, ["one", "auth user:run-s3cret"])
    cluster, task_arn = parse_infrastructure_id(pid)
    del ecs_backends[MOTO_ACCOUNT][REGION].tasks[cluster][task_arn]  # stopped more than an hour ago
    with pytest.raises(ConfigurationError, match="ECS no longer knows task"):
        ecs_pool.backend.logs(pid)
    run = ecs_pool.store.get_run(run_id)
    job = RenderedJob(ecs_pool.dispatcher.prepare(run, ecs_pool.pool).configuration, run_context(run))
    assert ecs_pool.backend.logs(pid, job=job).lines == ("one", "auth ********")
    monkeypatch.setenv("PUSH_POOL_HOME", str(ecs_pool.store.path.parent))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    context.reset()
    capsys.readouterr()
    assert main(["runs", "logs", run_id]) == 0
    assert capsys.readouterr().out == "one\nauth ********\n"

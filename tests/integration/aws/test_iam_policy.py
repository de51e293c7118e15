"""The function's IAM grants (terraform/modules/aws/iam.tf) equal the AWS calls its code makes, plus the actions AWS
authorises on its behalf. The calls are recorded while the function goes through every path it has: cold start,
webhook (registering, discovering the default VPC, running), a delayed submission, the queue, the tick, task
events (one a crash, whose CloudWatch output is read), status and cancellation. Every test of this directory also
checks its own calls stay within the grants."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from push_pools.models import Deployment, StateType, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.aws.function import API_KEY_SECRET_ARN, QUEUE_URL, WEBHOOK_SECRET_ARN, LambdaFunction
from push_pools.platforms.aws.status import parse_infrastructure_id
from push_pools.triggers.auth import sign
from tests.integration.aws.conftest import IMAGE, AwsWorld, ecs_template, load_fixture, moto_task, task_event
from tests.terraform.aws_module import granted_actions

IMPLIED = {
    "logs:CreateLogStream": "the Lambda runtime writes the function's logs with its role",
    "logs:PutLogEvents": "the Lambda runtime writes the function's logs with its role",
    "sqs:ReceiveMessage": "the event source mapping polls the run queue with the function's role",
    "sqs:DeleteMessage": "the event source mapping deletes handled messages with the function's role",
    "sqs:GetQueueAttributes": "the event source mapping reads the queue's attributes with the function's role",
    "sqs:ChangeMessageVisibility": "the event source mapping extends visibility with the function's role",
    "ecs:TagResource": "ECS authorises tags given to RunTask (tag-on-create) as ecs:TagResource",
    "iam:PassRole": "ECS authorises the execution and task roles named in a task as iam:PassRole",
    "kms:Decrypt": "only with a customer managed key: reading secrets and messages encrypted with it",
    "kms:GenerateDataKey": "only with a customer managed key: sending messages encrypted with it",
}
"""Granted actions no boto3 call of ours makes: AWS authorises them for the function, each for the reason given."""

SECRET = "whsec-iam-test"
TASKS_LOG_GROUP = "/push-pools/test/tasks"


def test_the_module_grants_exactly_what_the_code_calls_and_aws_implies(
    aws: AwsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = exercise_every_path(aws, tmp_path, monkeypatch)
    granted = granted_actions()
    assert recorded - granted == set(), "the code calls actions the module does not grant"
    assert granted - recorded - set(IMPLIED) == set(), "the module grants actions the code never calls"
    assert recorded & set(IMPLIED) == set(), "an action listed as implied is in fact called: move it"


def exercise_every_path(aws: AwsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    secrets = aws.client("secretsmanager")
    monkeypatch.setenv("PUSH_POOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(WEBHOOK_SECRET_ARN, secrets.create_secret(Name="webhook", SecretString=SECRET)["ARN"])
    monkeypatch.setenv(API_KEY_SECRET_ARN, secrets.create_secret(Name="key", SecretString="pnu_x")["ARN"])
    monkeypatch.setenv(QUEUE_URL, aws.client("sqs").create_queue(QueueName="runs")["QueueUrl"])
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    store = LocalStore(tmp_path / "home" / "store.db")
    aws.client("logs").create_log_group(logGroupName=TASKS_LOG_GROUP)
    template = ecs_template(
        execution_role_arn="arn:aws:iam::123456789012:role/push-pools-task-execution",
        configure_cloudwatch_logs=True,
        cloudwatch_logs_options={"awslogs-group": TASKS_LOG_GROUP, "awslogs-create-group": "false"},
    )  # the module's pool defaults: the tasks log to CloudWatch, so a crash reads their output's tail
    store.save_pool(WorkPool(name="ecs-pool", type="ecs", base_job_template=template))
    deployment = store.save_deployment(Deployment(id=str(uuid.uuid4()), name="d", pool_name="ecs-pool", image=IMAGE))
    function = LambdaFunction.from_environment(os.environ, aws.session)

    def schedule(in_seconds: float = -1) -> str:
        now = datetime.now(UTC)
        return store.create_run(deployment, now + timedelta(seconds=in_seconds), now=now).id

    def webhook(run_id: str) -> int:
        event = load_fixture("function_url_post.json")
        body = json.dumps({"flow_run_id": run_id}).encode()
        event["headers"] |= sign(SECRET, body, int(time.time()))
        event["body"] = body.decode()
        status: int = function(event, None)["statusCode"]
        return status

    first, soon, queued, ticked = schedule(), schedule(300), schedule(), schedule()
    assert webhook(first) == 202
    assert webhook(soon) == 202
    message = {"eventSource": "aws:sqs", "messageId": "1", "body": json.dumps({"flow_run_id": queued})}
    assert function({"Records": [message]}, None) == {"batchItemFailures": []}
    function(load_fixture("scheduler_tick.json"), None)
    pid = store.get_run(first).infrastructure_pid or ""
    task_arn = parse_infrastructure_id(pid)[1]
    function(task_event(aws, task_arn), None)
    crashed = moto_task(task_arn)
    crashed.last_status = crashed.desired_status = "STOPPED"
    crashed.containers[0].exitCode = 1
    function(task_event(aws, task_arn, stop_code="EssentialContainerExited"), None)
    assert store.get_run(first).state.type is StateType.CRASHED
    function.dispatcher.backends.for_type("ecs").status(pid)
    store.request_cancellation(ticked)
    function(load_fixture("scheduler_tick.json"), None)
    assert store.get_run(ticked).state.type is StateType.CANCELLED
    assert (
        moto_task(parse_infrastructure_id(store.get_run(ticked).infrastructure_pid or "")[1]).desired_status
        == "STOPPED"
    )
    store.close()
    return aws.recorder.actions


@pytest.fixture(autouse=True)
def _stay_within_the_grants() -> None:
    """Keep this module's own IMPLIED list honest: every implied action must be granted."""
    assert set(IMPLIED) <= granted_actions()

"""The Lambda entry point with canned events of every kind, against moto: webhooks (Function URL, API Gateway v1
and v2), SQS batches, the tick (EventBridge rule and Scheduler), ECS task events, and everything it must refuse."""

from __future__ import annotations

import base64
import copy
import json
import os
import time
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from push_pools import logs
from push_pools.models import Deployment, FlowRun, StateType, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.aws.events import UnsupportedEventError
from push_pools.platforms.aws.function import (
    API_KEY_SECRET_ARN,
    AUTH_STRING_SECRET_ARN,
    QUEUE_URL,
    WEBHOOK_SECRET_ARN,
    LambdaFunction,
)
from push_pools.triggers.auth import sign
from tests.integration.aws.conftest import IMAGE, REGION, AwsWorld, ecs_template, load_fixture, moto_task, task_event

WEBHOOK_SECRET = "whsec-0123456789abcdef"
API_KEY = "pnu_lambda-test-key"


@dataclass
class Deployed:
    """The function as Terraform deploys it: secrets, queue, store; and the test's handle on them."""

    world: AwsWorld
    function: LambdaFunction
    store: LocalStore
    deployment: Deployment
    queue_url: str

    def schedule(self, in_seconds: float = -1) -> FlowRun:
        now = datetime.now(UTC)
        return self.store.create_run(self.deployment, now + timedelta(seconds=in_seconds), now=now)

    def state(self, run: FlowRun) -> StateType:
        return self.store.get_run(run.id).state.type

    def tasks(self, run: FlowRun) -> list[str]:
        ecs = self.world.client("ecs")
        started_by = f"push-pools-{run.idempotency_key}"
        return [
            arn
            for status in ("RUNNING", "STOPPED")
            for arn in ecs.list_tasks(cluster="push-pools", startedBy=started_by, desiredStatus=status)["taskArns"]
        ]

    def queued(self) -> list[tuple[dict[str, Any], int]]:
        """Messages on the run queue (delayed ones too), with their delay."""
        from moto.sqs.models import sqs_backends

        queue = sqs_backends["123456789012"][REGION].queues["push-pools-runs"]
        return [
            (json.loads(message.body), round((message.delayed_until - message.sent_timestamp) / 1000))
            for message in queue._messages
        ]


@pytest.fixture
def deployed(aws: AwsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    secrets, sqs = aws.client("secretsmanager"), aws.client("sqs")
    webhook_arn = secrets.create_secret(Name="push-pools/webhook", SecretString=WEBHOOK_SECRET)["ARN"]
    key_arn = secrets.create_secret(Name="push-pools/orchestrator-api-key", SecretString=API_KEY)["ARN"]
    queue_url = sqs.create_queue(QueueName="push-pools-runs")["QueueUrl"]
    monkeypatch.setenv("PUSH_POOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(WEBHOOK_SECRET_ARN, webhook_arn)
    monkeypatch.setenv(API_KEY_SECRET_ARN, key_arn)
    monkeypatch.setenv(QUEUE_URL, queue_url)
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    store = LocalStore(tmp_path / "home" / "store.db")
    pool = store.save_pool(WorkPool(name="ecs-pool", type="ecs", base_job_template=ecs_template()))
    deployment = store.save_deployment(
        Deployment(id=str(uuid.uuid4()), name="hourly", pool_name=pool.name, image=IMAGE, command="python -m flows")
    )
    function = LambdaFunction.from_environment(os.environ, aws.session)
    yield Deployed(aws, function, store, deployment, queue_url)
    store.close()


def http_event(
    fixture: str, body: bytes, *, signed: bool = True, headers: dict[str, str] | None = None, age: int = 0
) -> Any:
    """The fixture's event carrying `body`, signed `age` seconds ago."""
    event = load_fixture(fixture)
    extra = sign(WEBHOOK_SECRET, body, int(time.time()) - age) if signed else {}
    event["headers"] = {**event["headers"], **extra, **(headers or {})}
    encoded = event.get("isBase64Encoded")
    event["body"] = base64.b64encode(body).decode() if encoded else body.decode("utf-8", errors="surrogateescape")
    return event


def submit_body(run: FlowRun) -> bytes:
    return json.dumps({"flow_run_id": run.id}).encode()


# ---- the webhook ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["function_url_post.json", "apigw_v2_post.json", "apigw_v1_post.json"])
def test_a_signed_webhook_submits_the_run(deployed: Deployed, fixture: str) -> None:
    run = deployed.schedule()
    answer = deployed.function(http_event(fixture, submit_body(run)), None)
    assert answer["statusCode"] == 202, answer
    assert json.loads(answer["body"])["status"] == "submitted"
    assert deployed.state(run) is StateType.PENDING
    assert len(deployed.tasks(run)) == 1


def test_a_bearer_token_is_accepted_too(deployed: Deployed) -> None:
    run = deployed.schedule()
    event = http_event("function_url_post.json", submit_body(run), signed=False)
    event["headers"]["authorization"] = f"Bearer {WEBHOOK_SECRET}"
    assert deployed.function(event, None)["statusCode"] == 202


@pytest.mark.parametrize(
    ("body", "signed", "headers", "status"),
    [
        (b'{"flow_run_id": ', True, {}, 400),
        (b"[1, 2, 3]", True, {}, 400),
        (b'{"flow_run_id": "not-a-uuid"}', True, {}, 400),
        (b'{"action": "explode", "flow_run_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}', True, {}, 400),
        (b'{"flow_run_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}', False, {}, 401),
        (
            b'{"flow_run_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}',
            False,
            {"x-push-pool-signature": "sha256=00"},
            401,
        ),
        (b'{"flow_run_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}', False, {"authorization": "Bearer wrong"}, 401),
        (b'{"flow_run_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}', True, {}, 404),
        (b"\xff\xfe not utf-8", True, {}, 400),
    ],
    ids=["truncated", "array", "bad-uuid", "bad-action", "unsigned", "forged", "wrong-token", "unknown-run", "binary"],
)
def test_bad_webhooks_are_refused_and_dispatch_nothing(
    deployed: Deployed, body: bytes, signed: bool, headers: dict[str, str], status: int
) -> None:
    for age, fixture in enumerate(("function_url_post.json", "apigw_v2_post.json")):
        with deployed.world.recorder.counting() as calls:
            answer = deployed.function(http_event(fixture, body, signed=signed, headers=headers, age=age), None)
        assert answer["statusCode"] == status, answer
        assert "error" in json.loads(answer["body"])
        assert not any(action.startswith("ecs:") for action in calls)


def test_a_replayed_signature_is_refused(deployed: Deployed) -> None:
    run = deployed.schedule()
    event = http_event("function_url_post.json", submit_body(run))
    assert deployed.function(event, None)["statusCode"] == 202
    assert deployed.function(copy.deepcopy(event), None)["statusCode"] == 401


@pytest.mark.parametrize("fixture", ["function_url_post.json", "apigw_v2_post.json"])
def test_an_oversized_body_is_refused_before_it_is_read(deployed: Deployed, fixture: str) -> None:
    body = json.dumps({"flow_run_id": str(uuid.uuid4()), "padding": "x" * 70_000}).encode()
    answer = deployed.function(http_event(fixture, body), None)
    assert answer["statusCode"] == 413


def test_a_body_that_is_not_base64_is_refused(deployed: Deployed) -> None:
    event = http_event("apigw_v2_post.json", b"{}")
    event["body"] = "%%% not base64 %%%"
    assert deployed.function(event, None)["statusCode"] == 400


def test_health_and_methods(deployed: Deployed) -> None:
    event = load_fixture("function_url_post.json")
    event["requestContext"]["http"]["method"] = "GET"
    event["rawPath"] = "/healthz"
    assert deployed.function(event, None)["statusCode"] == 200
    event["requestContext"]["http"]["method"] = "PUT"
    answer = deployed.function(event, None)
    assert answer["statusCode"] == 405
    assert answer["headers"]["Allow"] == "POST"


def test_a_run_due_soon_is_queued_to_arrive_when_due(deployed: Deployed) -> None:
    run = deployed.schedule(in_seconds=600)
    answer = deployed.function(http_event("function_url_post.json", submit_body(run)), None)
    assert answer["statusCode"] == 202
    assert json.loads(answer["body"])["status"] == "queued"
    ((message, delay),) = deployed.queued()
    assert message == {"action": "submit", "flow_run_id": run.id}
    assert 598 <= delay <= 600
    assert deployed.state(run) is StateType.SCHEDULED


def test_a_run_due_after_the_horizon_is_left_to_the_tick(deployed: Deployed) -> None:
    run = deployed.schedule(in_seconds=3600)
    answer = deployed.function(http_event("function_url_post.json", submit_body(run)), None)
    assert json.loads(answer["body"])["status"] == "not-due"
    assert deployed.queued() == []


# ---- SQS --------------------------------------------------------------------------------------------------


def sqs_event(*bodies: Any) -> dict[str, Any]:
    template = load_fixture("sqs_batch.json")["Records"][0]
    records = []
    for body in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid.uuid4())
        if body is None:
            del record["body"]
        else:
            record["body"] = body
        records.append(record)
    return {"Records": records}


def test_an_sqs_batch_reports_only_the_records_to_redeliver(deployed: Deployed) -> None:
    run = deployed.schedule()
    good = json.dumps({"action": "submit", "flow_run_id": run.id})
    unknown = json.dumps({"action": "submit", "flow_run_id": str(uuid.uuid4())})
    event = sqs_event(good, "{garbage", unknown, good, None, '{"flow_run_id": 42}', "x" * 70_000)
    answer = deployed.function(event, None)
    failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
    expected = {event["Records"][i]["messageId"] for i in (1, 4, 5, 6)}
    assert failed == expected
    assert len(deployed.tasks(run)) == 1
    assert deployed.state(run) is StateType.PENDING


def test_a_message_that_arrives_early_is_queued_again_for_the_rest(deployed: Deployed) -> None:
    run = deployed.schedule(in_seconds=4.2)
    answer = deployed.function(sqs_event(json.dumps({"action": "submit", "flow_run_id": run.id})), None)
    assert answer == {"batchItemFailures": []}
    ((message, delay),) = deployed.queued()
    assert message["flow_run_id"] == run.id
    assert delay in (4, 5)  # what was left of 4.2 s when it was handled, rounded up
    assert deployed.state(run) is StateType.SCHEDULED


# ---- the tick ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["scheduled_event.json", "scheduler_tick.json"])
def test_the_schedule_ticks(deployed: Deployed, fixture: str) -> None:
    due, later = deployed.schedule(), deployed.schedule(in_seconds=3600)
    answer = deployed.function(load_fixture(fixture), None)
    assert answer["kind"] == "done"
    assert "1 submitted" in answer["tick"]
    assert deployed.state(due) is StateType.PENDING
    assert deployed.state(later) is StateType.SCHEDULED


class LambdaContext:
    """What Lambda passes as `context`, as far as the tick reads it."""

    def __init__(self, remaining_ms: int) -> None:
        self.aws_request_id = "req-1"
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.mark.parametrize(("remaining_ms", "submitted"), [(5_000, 2), (600_000, 5)])
def test_the_schedules_tick_drains_due_runs_within_the_invocations_remaining_time(
    deployed: Deployed, remaining_ms: int, submitted: int
) -> None:
    """Under the 10 s margin the tick takes one page and says what it left; with time to spare, every due run."""
    dispatcher = deployed.function.dispatcher
    dispatcher.settings = dispatcher.settings.model_copy(update={"tick_batch_size": 2})
    runs = [deployed.schedule() for _ in range(5)]
    answer = deployed.function(load_fixture("scheduled_event.json"), LambdaContext(remaining_ms))
    assert f"{submitted} submitted" in answer["tick"]
    assert sum(deployed.state(run) is StateType.PENDING for run in runs) == submitted
    assert ("due run(s) left" in answer["tick"]) is (submitted < len(runs))


def test_a_direct_invocation_can_cancel(deployed: Deployed) -> None:
    run = deployed.schedule()
    deployed.function({"action": "submit", "flow_run_id": run.id}, None)
    deployed.store.request_cancellation(run.id)
    answer = deployed.function({"action": "cancel", "flow_run_id": run.id}, None)
    assert answer["status"] == "cancelled"
    assert deployed.state(run) is StateType.CANCELLED
    (task_arn,) = deployed.tasks(run)
    assert moto_task(task_arn).desired_status == "STOPPED"


# ---- ECS task events --------------------------------------------------------------------------------------


def test_a_task_event_reaches_its_run(deployed: Deployed) -> None:
    run = deployed.schedule()
    deployed.function({"flow_run_id": run.id}, None)
    (task_arn,) = deployed.tasks(run)
    task = moto_task(task_arn)
    task.last_status, task.desired_status, task.stopped_reason = "STOPPED", "STOPPED", "Essential container exited"
    task.containers[0].exitCode = 2
    answer = deployed.function(task_event(deployed.world, task_arn, stop_code="EssentialContainerExited"), None)
    assert answer["status"] == "applied"
    state = deployed.store.get_run(run.id).state
    assert state.type is StateType.CRASHED
    assert "exited with code 2" in (state.message or "")


def test_a_malformed_task_event_is_reported_not_applied(deployed: Deployed) -> None:
    event = load_fixture("ecs_task_state_change.json")
    del event["detail"]["taskArn"]
    assert deployed.function(event, None)["status"] == "failed"


# ---- what the function refuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        load_fixture("s3_put.json"),
        load_fixture("sns_notification.json"),
        load_fixture("cloudwatch_alarm.json"),
        {},
        {"Records": []},
        [],
        "tick",
        None,
    ],
    ids=["s3", "sns", "alarm", "empty", "no-records", "list", "string", "none"],
)
def test_unknown_events_raise_a_clear_error(deployed: Deployed, event: Any, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(UnsupportedEventError, match="unsupported event"):
        deployed.function(event, None)
    assert "unsupported event" in caplog.text


def test_a_direct_invocation_with_a_bad_payload_raises(deployed: Deployed) -> None:
    with pytest.raises(UnsupportedEventError):
        deployed.function({"flow_run": "x"}, None)
    from push_pools.errors import PayloadError

    with pytest.raises(PayloadError):
        deployed.function({"action": "submit"}, None)


# ---- cold start -------------------------------------------------------------------------------------------


def test_secrets_are_read_once_per_instance_and_the_key_is_exported(deployed: Deployed) -> None:
    assert os.environ["PREFECT_API_KEY"] == API_KEY
    assert deployed.world.recorder.calls["secretsmanager:GetSecretValue"] == 2
    for _ in range(3):
        deployed.function(load_fixture("scheduler_tick.json"), None)
        deployed.function(http_event("function_url_post.json", submit_body(deployed.schedule())), None)
    assert deployed.world.recorder.calls["secretsmanager:GetSecretValue"] == 2


@pytest.mark.parametrize(
    ("secret_arn_variable", "value", "exported_as", "expected_connection"),
    [
        (API_KEY_SECRET_ARN, API_KEY, "PREFECT_API_KEY", (API_KEY, None)),
        (AUTH_STRING_SECRET_ARN, "admin:pass", "PREFECT_API_AUTH_STRING", (None, "admin:pass")),
    ],
    ids=["prefect-cloud-api-key", "self-hosted-basic-auth"],
)
def test_with_prefect_the_credential_from_secrets_manager_reaches_the_orchestrator(
    aws_inprocess: AwsWorld,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    secret_arn_variable: str,
    value: str,
    exported_as: str,
    expected_connection: tuple[str | None, str | None],
) -> None:
    secrets = aws_inprocess.client("secretsmanager")
    monkeypatch.setenv("PUSH_POOL_HOME", str(tmp_path))
    monkeypatch.setenv("PUSH_POOL_ORCHESTRATOR", "prefect")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    for name in (API_KEY_SECRET_ARN, AUTH_STRING_SECRET_ARN, "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(secret_arn_variable, secrets.create_secret(Name="credential", SecretString=value)["ARN"])
    monkeypatch.setenv(WEBHOOK_SECRET_ARN, secrets.create_secret(Name="w", SecretString=WEBHOOK_SECRET)["ARN"])
    function = LambdaFunction.from_environment(os.environ, aws_inprocess.session)
    connection = function.dispatcher.orchestrator.api.connection  # type: ignore[attr-defined]
    assert (connection.api_key, connection.auth_string) == expected_connection
    assert os.environ[exported_as] == value


def test_a_secret_that_cannot_be_read_stops_the_cold_start(
    aws_inprocess: AwsWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from push_pools.errors import ConfigurationError

    monkeypatch.setenv("PUSH_POOL_HOME", str(tmp_path))
    monkeypatch.setenv(WEBHOOK_SECRET_ARN, "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf")
    with pytest.raises(ConfigurationError, match=r"cannot read secret .*ResourceNotFoundException"):
        LambdaFunction.from_environment(os.environ, aws_inprocess.session)


# ---- logs -------------------------------------------------------------------------------------------------


def test_sqs_lines_are_json_with_the_run_and_the_request_id(
    deployed: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(logs.JsonFormatter("aws"))
    run = deployed.schedule()
    context = types.SimpleNamespace(aws_request_id="req-42")
    deployed.function(sqs_event(json.dumps({"action": "submit", "flow_run_id": run.id}), "{garbage"), context)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    mine = [line for line in lines if line.get("flow_run_id") == run.id]
    assert {line["logger"] for line in mine} == {"push_pools.dispatcher", "push_pools.platforms.aws.function"}
    (submission,) = [line for line in mine if "outcome" in line]
    assert (submission["outcome"], submission["pool"], submission["deployment"]) == ("submitted", "ecs-pool", "hourly")
    assert submission["infrastructure_pid"] == deployed.store.get_run(run.id).infrastructure_pid
    assert all(line["function_request_id"] == "req-42" for line in lines), "worker threads carry the request id"

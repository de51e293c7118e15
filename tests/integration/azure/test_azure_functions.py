"""The Azure Functions entry point, called the way the Functions host calls it (v2 decorated functions, built and
invoked with canned HttpRequest, QueueMessage and TimerRequest), over the embedded store, the real ACI client and
the fake ARM server; delayed runs go to a fake storage queue through the real azure-storage-queue client."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient
from pydantic import SecretStr

from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import StateType
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.azure import function as azure_functions
from push_pools.platforms.azure.function import FunctionRuntime, MessageNotHandled, StorageQueueEnqueue
from push_pools.settings import Settings
from push_pools.triggers.auth import sign
from push_pools.triggers.payloads import RunRequest
from tests.fakes.arm import FakeArm, Faults, fake_clients
from tests.fakes.storage_queue import ACCOUNT, ACCOUNT_KEY, FakeQueueService
from tests.integration.azure.conftest import ScheduleAciRun

SECRET = "webhook-secret-for-tests"
QUEUE = "push-pool-runs"


@pytest.fixture
def queue_service() -> Iterator[FakeQueueService]:
    with FakeQueueService() as service:
        yield service


@pytest.fixture
def function_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_secret": SecretStr(SECRET), "webhook_max_body_bytes": 2048})


@pytest.fixture
def runtime(
    store: LocalStore, arm: FakeArm, function_settings: Settings, queue_service: FakeQueueService
) -> Iterator[FunctionRuntime]:
    backend = azure_functions_backend(arm)
    dispatcher = Dispatcher(
        store, Backends(function_settings, {"aci": backend}), function_settings, sleep=lambda _: None
    )
    queue = QueueClient(
        queue_service.account_url, QUEUE, credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}
    )
    built = FunctionRuntime.build(dispatcher, StorageQueueEnqueue(queue))
    azure_functions.use_runtime(built)
    yield built
    azure_functions.use_runtime(None)


def azure_functions_backend(arm: FakeArm) -> Any:
    from push_pools.platforms.azure.backend import AciBackend

    return AciBackend(fake_clients(arm))


def call_webhook(body: bytes, headers: dict[str, str] | None = None) -> func.HttpResponse:
    request = func.HttpRequest("POST", "/api/runs", headers=headers or {}, body=body)
    response: func.HttpResponse = azure_functions.webhook.build().get_user_function()(request)
    return response


def signed(body: bytes) -> dict[str, str]:
    return sign(SECRET, body, int(time.time()))


def deliver(body: bytes | str, dequeue_count: int = 1) -> None:
    raw = body.encode() if isinstance(body, str) else body
    azure_functions.run_queue.build().get_user_function()(QueueMessage(id="m1", body=raw, dequeue_count=dequeue_count))


# ---- webhook ----------------------------------------------------------------------------------------------


def test_a_signed_webhook_submits_the_run(
    runtime: FunctionRuntime, store: LocalStore, arm: FakeArm, schedule_aci_run: ScheduleAciRun
) -> None:
    run = schedule_aci_run()
    body = RunRequest(flow_run_id=run.id).to_message().encode()
    response = call_webhook(body, signed(body))
    assert response.status_code == 202
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body())["status"] == "submitted"
    assert store.get_run(run.id).state.type is StateType.PENDING
    assert arm.calls["PUT group"] == 1


class HostHandler(logging.Handler):
    """Stands in for the Python worker's handler on the root logger: it keeps only each record's message."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_runs_lines_reach_the_host_with_its_fields_in_the_message(
    runtime: FunctionRuntime, schedule_aci_run: ScheduleAciRun
) -> None:
    host = HostHandler()
    root = logging.getLogger()
    level = root.level
    root.addHandler(host)
    root.setLevel(logging.INFO)  # as the worker sets it
    try:
        azure_functions.send_run_fields_to_the_host()
        azure_functions.send_run_fields_to_the_host()
        run = schedule_aci_run()
        body = RunRequest(flow_run_id=run.id).to_message().encode()
        assert call_webhook(body, signed(body)).status_code == 202
    finally:
        root.removeHandler(host)
        root.setLevel(level)
    (line,) = [message for message in host.messages if f"flow_run_id={run.id}" in message]
    assert line.endswith("outcome=submitted")
    assert line.count("flow_run_id=") == 1


def test_a_bearer_token_works_too(runtime: FunctionRuntime, schedule_aci_run: ScheduleAciRun) -> None:
    body = json.dumps({"flow_run_id": schedule_aci_run().id}).encode()
    assert call_webhook(body, {"Authorization": f"Bearer {SECRET}"}).status_code == 202


def test_a_run_due_soon_is_queued_with_a_visibility_delay(
    runtime: FunctionRuntime, queue_service: FakeQueueService, arm: FakeArm, schedule_aci_run: ScheduleAciRun
) -> None:
    run = schedule_aci_run(in_seconds=120)
    body = json.dumps({"flow_run_id": run.id}).encode()
    response = call_webhook(body, signed(body))
    assert response.status_code == 202
    assert json.loads(response.get_body())["status"] == "queued"
    (message,) = queue_service.messages
    assert message.queue == QUEUE
    assert 110 <= message.visibility_timeout <= 120
    assert json.loads(message.text) == {"action": "submit", "flow_run_id": run.id}
    assert arm.calls == {}


def test_a_queue_that_refuses_fails_the_request_as_on_aws_and_leaves_the_run_to_the_tick(
    runtime: FunctionRuntime,
    queue_service: FakeQueueService,
    store: LocalStore,
    schedule_aci_run: ScheduleAciRun,
) -> None:
    """A failed delayed enqueue once answered "queued" here while AWS answered 500: both answer 500 now."""
    queue_service.fail_with = 403
    run = schedule_aci_run(in_seconds=60)
    body = json.dumps({"flow_run_id": run.id}).encode()
    response = call_webhook(body, signed(body))
    assert response.status_code == 500
    assert "queued" not in response.get_body().decode()
    assert "queue:SendMessage: HTTP 403" in json.loads(response.get_body())["error"]
    assert store.get_run(run.id).state.type is StateType.SCHEDULED


def test_a_tick_request_answers_200(runtime: FunctionRuntime) -> None:
    body = b'{"action": "tick"}'
    response = call_webhook(body, signed(body))
    assert response.status_code == 200
    assert "pool(s)" in json.loads(response.get_body())["tick"]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b'{"flow_run_id": "x"}', {}, 401),
        (b'{"action": "tick"}', {"Authorization": "Bearer wrong"}, 401),
        (b'{"action": "tick"}', {"X-Push-Pool-Timestamp": "1", "X-Push-Pool-Signature": "sha256=00"}, 401),
        (b"not json", None, 400),
        (b"[1, 2]", None, 400),
        (b'{"flow_run_id": "not-a-uuid"}', None, 400),
        (b'{"action": "explode"}', None, 400),
        (b'{"flow_run_id": "6f1e0c3a-0000-4000-8000-000000000000"}', None, 404),
        (b"x" * 4096, None, 413),
    ],
)
def test_bad_webhook_requests_get_clear_errors(
    runtime: FunctionRuntime, arm: FakeArm, body: bytes, headers: dict[str, str] | None, status: int
) -> None:
    response = call_webhook(body, signed(body) if headers is None else headers)
    assert response.status_code == status
    assert json.loads(response.get_body())["error"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert arm.calls == {}


def test_a_replayed_signature_is_refused(runtime: FunctionRuntime) -> None:
    body = b'{"action": "tick"}'
    headers = signed(body)
    assert call_webhook(body, headers).status_code == 200
    assert call_webhook(body, headers).status_code == 401


def test_throttling_that_outlasts_the_retries_answers_503_with_retry_after(
    runtime: FunctionRuntime, arm: FakeArm, store: LocalStore, schedule_aci_run: ScheduleAciRun
) -> None:
    run = schedule_aci_run()
    body = json.dumps({"flow_run_id": run.id}).encode()
    with arm.faulty(Faults(throttle=1.0)):
        response = call_webhook(body, signed(body))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert store.get_run(run.id).state.type is StateType.SCHEDULED, "given back, to be retried"


# ---- storage queue ----------------------------------------------------------------------------------------


def test_a_queue_message_submits_the_run(
    runtime: FunctionRuntime, store: LocalStore, arm: FakeArm, schedule_aci_run: ScheduleAciRun
) -> None:
    run = schedule_aci_run()
    deliver(RunRequest(flow_run_id=run.id).to_message())
    assert store.get_run(run.id).state.type is StateType.PENDING
    deliver(RunRequest(flow_run_id=run.id).to_message(), dequeue_count=2)
    assert arm.calls["PUT group"] == 1, "a redelivered message starts nothing more"


def test_a_message_for_an_unknown_run_is_acknowledged(runtime: FunctionRuntime) -> None:
    deliver('{"flow_run_id": "6f1e0c3a-0000-4000-8000-000000000000"}')


@pytest.mark.parametrize("body", [b"", b"not json", b'{"flow_run_id": 12}', b'{"action": "cancel"}', b"\xff\xfe"])
def test_an_unreadable_message_raises_so_it_ends_in_the_poison_queue(runtime: FunctionRuntime, body: bytes) -> None:
    with pytest.raises(MessageNotHandled, match="invalid"):
        deliver(body)


def test_a_transient_failure_raises_so_the_message_is_retried(
    runtime: FunctionRuntime, arm: FakeArm, store: LocalStore, schedule_aci_run: ScheduleAciRun
) -> None:
    run = schedule_aci_run()
    with arm.faulty(Faults(server_error=1.0)), pytest.raises(MessageNotHandled, match="retry"):
        deliver(RunRequest(flow_run_id=run.id).to_message())
    assert store.get_run(run.id).state.type is StateType.SCHEDULED
    deliver(RunRequest(flow_run_id=run.id).to_message(), dequeue_count=2)
    assert store.get_run(run.id).infrastructure_pid is not None


def test_a_queued_message_for_a_later_run_is_queued_again(
    runtime: FunctionRuntime, queue_service: FakeQueueService, schedule_aci_run: ScheduleAciRun
) -> None:
    run = schedule_aci_run(in_seconds=30)
    deliver(RunRequest(flow_run_id=run.id).to_message())
    (message,) = queue_service.messages
    assert 20 <= message.visibility_timeout <= 30


# ---- timer ------------------------------------------------------------------------------------------------


def test_the_timer_ticks(
    runtime: FunctionRuntime, store: LocalStore, arm: FakeArm, schedule_aci_run: ScheduleAciRun
) -> None:
    runs = [schedule_aci_run() for _ in range(3)]
    azure_functions.tick.build().get_user_function()(TimerRequest(past_due=True))
    assert all(store.get_run(run.id).state.type is StateType.PENDING for run in runs)
    assert store.get_pool("azure").last_tick_at is not None
    assert arm.calls["PUT group"] == 3


# ---- the app as the host indexes it -----------------------------------------------------------------------


def test_the_app_declares_three_functions_with_their_bindings() -> None:
    bindings = {
        function.get_function_name(): json.loads(function.get_function_json())["bindings"]
        for function in azure_functions.app.get_functions()
    }
    assert set(bindings) == {"webhook", "run_queue", "tick"}
    http = bindings["webhook"][0]
    assert (http["type"], http["route"], http["methods"], http["authLevel"]) == (
        "httpTrigger",
        "runs",
        ["POST"],
        "ANONYMOUS",
    )
    queue = bindings["run_queue"][0]
    assert (queue["type"], queue["queueName"], queue["connection"]) == (
        "queueTrigger",
        "%PUSH_POOL_QUEUE_NAME%",
        "PUSH_POOL_QUEUE",
    )
    timer = bindings["tick"][0]
    assert (timer["type"], timer["schedule"]) == ("timerTrigger", "0 * * * * *")


def test_the_runtime_is_built_once_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, queue_service: FakeQueueService
) -> None:
    monkeypatch.setenv("PUSH_POOL_HOME", str(settings.home))
    monkeypatch.setenv("PUSH_POOL_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("PUSH_POOL_QUEUE__queueServiceUri", "https://acct.queue.core.windows.net")
    monkeypatch.setenv("PUSH_POOL_QUEUE_NAME", QUEUE)
    azure_functions.use_runtime(None)
    try:
        first = azure_functions.runtime()
        assert azure_functions.runtime() is first
        assert first.handler.enqueue is not None
        assert first.dispatcher.backends.for_type("aci").pool_type == "aci"
    finally:
        azure_functions.use_runtime(None)


def test_without_queue_settings_there_is_no_enqueue() -> None:
    assert StorageQueueEnqueue.from_environment({}) is None
    assert StorageQueueEnqueue.from_environment({"PUSH_POOL_QUEUE_NAME": "q"}) is None

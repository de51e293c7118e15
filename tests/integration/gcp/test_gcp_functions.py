"""The deployed `main.py` under functions-framework's own app, with canned HTTP requests and Pub/Sub CloudEvents,
dispatching to the fake Cloud Run through the real client."""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient

from push_pools.dispatcher import Backends, Dispatcher
from push_pools.models import Deployment, FlowRun, StateType, WorkPool
from push_pools.orchestrators.local import LocalStore
from push_pools.platforms.gcp import function as gcp_functions
from push_pools.platforms.gcp.backend import CloudRunBackend
from push_pools.settings import Settings
from push_pools.triggers.auth import sign
from tests.fakes.cloud_run import FakeCloudRun, Fault

MAIN = Path(__file__).parents[3] / "infra" / "gcp" / "main.py"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "gcp"
SECRET = "s3cret-webhook-token"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """functions-framework writes FUNCTION_TARGET/FUNCTION_SIGNATURE_TYPE and main.py configures logging."""
    for name in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE"):
        monkeypatch.delenv(name, raising=False)
    package = logging.getLogger("push_pools")
    saved = (list(package.handlers), package.level, package.propagate)
    yield
    package.handlers, package.level, package.propagate = saved[0], saved[1], saved[2]
    gcp_functions.install(None)


@pytest.fixture
def store(tmp_path: Path, cloud_run_template: dict[str, Any]) -> Iterator[LocalStore]:
    store = LocalStore(tmp_path / "store.db")
    store.save_pool(WorkPool(name="etl", type="cloud-run", base_job_template=cloud_run_template))
    store.save_deployment(Deployment(id=str(uuid.uuid4()), name="nightly", pool_name="etl", image="flows:1"))
    yield store
    store.close()


@pytest.fixture
def installed(store: LocalStore, cloud_run: CloudRunBackend, tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path, webhook_secret=SECRET, submit_attempts=2, webhook_max_body_bytes=2048)
    dispatcher = Dispatcher(store, Backends(settings, {"cloud-run": cloud_run}), settings, sleep=lambda _: None)
    gcp_functions.install(gcp_functions.GcpFunction.from_settings(settings, dispatcher))
    return settings


def app(target: str) -> FlaskClient:
    return functions_framework.create_app(target=target, source=str(MAIN)).test_client()


@pytest.fixture
def http(installed: Settings) -> FlaskClient:
    return app("webhook")


@pytest.fixture
def events(installed: Settings) -> FlaskClient:
    return app("pubsub")


def due_run(store: LocalStore, in_seconds: float = -1) -> FlowRun:
    now = datetime.now(UTC)
    return store.create_run(store.get_deployment_by_name("nightly"), now + timedelta(seconds=in_seconds), now=now)


def signed(body: bytes) -> dict[str, str]:
    return sign(SECRET, body, int(time.time())) | {"Content-Type": "application/json"}


# ---- the HTTP function ----------------------------------------------------------------------------------------


def test_a_signed_webhook_submits_the_run(http: FlaskClient, store: LocalStore, fake: FakeCloudRun) -> None:
    run = due_run(store)
    body = json.dumps({"flow_run_id": run.id}).encode()
    response = http.post("/", data=body, headers=signed(body))
    assert response.status_code == 202, response.text
    assert response.get_json()["status"] == "submitted"
    assert store.get_run(run.id).infrastructure_pid in fake.executions


def test_a_bearer_token_and_a_prefect_event_work_too(http: FlaskClient, store: LocalStore) -> None:
    run = due_run(store)
    event = {"event": "prefect.flow-run.Scheduled", "resource": {"prefect.resource.id": f"prefect.flow-run.{run.id}"}}
    response = http.post("/", data=json.dumps(event), headers={"Authorization": f"Bearer {SECRET}"})
    assert response.status_code == 202, response.text
    assert store.get_run(run.id).state.type is StateType.PENDING


def test_the_tick_over_http(http: FlaskClient) -> None:
    response = http.post("/", data=b'{"action": "tick"}', headers={"X-Push-Pool-Token": SECRET})
    assert response.status_code == 200
    assert "tick" in response.get_json()


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({}, "missing credentials"),
        ({"Authorization": "Bearer wrong"}, "invalid token"),
        ({"X-Push-Pool-Timestamp": str(int(time.time())), "X-Push-Pool-Signature": "sha256=" + "0" * 64}, "signature"),
        ({"X-Push-Pool-Timestamp": "1000", "X-Push-Pool-Signature": "sha256=00"}, "replay window"),
    ],
    ids=["none", "wrong-token", "forged-signature", "stale-timestamp"],
)
def test_unauthenticated_requests_are_refused_before_anything_runs(
    http: FlaskClient, store: LocalStore, fake: FakeCloudRun, headers: dict[str, str], problem: str
) -> None:
    run = due_run(store)
    response = http.post("/", data=json.dumps({"flow_run_id": run.id}), headers=headers)
    assert response.status_code == 401
    assert problem in response.json["error"]  # type: ignore[index]
    assert store.get_run(run.id).state.type is StateType.SCHEDULED
    assert sum(fake.calls.values()) == 0


def test_a_replayed_signature_is_refused(http: FlaskClient, store: LocalStore) -> None:
    body = json.dumps({"flow_run_id": due_run(store).id}).encode()
    headers = signed(body)
    assert http.post("/", data=body, headers=headers).status_code == 202
    replay = http.post("/", data=body, headers=headers)
    assert replay.status_code == 401
    assert "replayed" in replay.json["error"]  # type: ignore[index]


def test_oversized_bodies_are_refused_before_they_are_read(http: FlaskClient) -> None:
    body = b"x" * 5000
    assert http.post("/", data=body, headers={"Authorization": f"Bearer {SECRET}"}).status_code == 413
    streamed = http.post(  # no Content-Length: the server (gunicorn on Cloud Functions) marks the input terminated
        "/",
        input_stream=io.BytesIO(body),
        headers={"Authorization": f"Bearer {SECRET}", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert streamed.status_code == 413, streamed.text


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"flow_run_id": "42"}', 400, "UUID"),
        (b'{"action": "explode", "flow_run_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}', 400, "action"),
        (b'{"flow_run_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}', 404, "1b4e28ba"),
    ],
    ids=["malformed", "array", "bad-id", "bad-action", "unknown-run"],
)
def test_bad_webhook_payloads_get_clear_errors(http: FlaskClient, body: bytes, status: int, problem: str) -> None:
    response = http.post("/", data=body, headers={"Authorization": f"Bearer {SECRET}"})
    assert response.status_code == status
    assert problem in response.json["error"]  # type: ignore[index]


def test_only_post_is_allowed(http: FlaskClient) -> None:
    response = http.get("/")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_a_cloud_run_outage_asks_the_caller_to_come_back(
    http: FlaskClient, store: LocalStore, fake: FakeCloudRun
) -> None:
    fake.inject(Fault(503))
    run = due_run(store)
    response = http.post("/", data=json.dumps({"flow_run_id": run.id}), headers={"Authorization": f"Bearer {SECRET}"})
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert store.get_run(run.id).state.type is StateType.SCHEDULED


# ---- the Pub/Sub CloudEvent function --------------------------------------------------------------------------


def cloud_event(payload: bytes | str, **header_changes: str) -> tuple[dict[str, str], str]:
    canned = json.loads((FIXTURES / "cloudevent-pubsub.json").read_text())
    data = copy.deepcopy(canned["data"])
    data["message"]["data"] = base64.b64encode(payload).decode() if isinstance(payload, bytes) else payload
    return canned["headers"] | header_changes, json.dumps(data)


def test_a_pubsub_message_submits_the_run(events: FlaskClient, store: LocalStore, fake: FakeCloudRun) -> None:
    run = due_run(store)
    headers, body = cloud_event(json.dumps({"flow_run_id": run.id}).encode())
    response = events.post("/", data=body, headers=headers)
    assert response.status_code == 200, response.text
    assert store.get_run(run.id).infrastructure_pid in fake.executions


def test_a_raw_pubsub_push_of_the_scheduler_tick_is_handled(events: FlaskClient, store: LocalStore) -> None:
    run = due_run(store)
    push = (FIXTURES / "pubsub-push.json").read_text()
    response = events.post("/", data=push, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert store.get_run(run.id).state.type is StateType.PENDING, "the tick submitted the due run"


def test_a_run_not_yet_due_is_acknowledged_and_left_for_the_tick(events: FlaskClient, store: LocalStore) -> None:
    run = due_run(store, in_seconds=120)
    headers, body = cloud_event(json.dumps({"flow_run_id": run.id}).encode())
    assert events.post("/", data=body, headers=headers).status_code == 200
    assert store.get_run(run.id).state.type is StateType.SCHEDULED


@pytest.mark.parametrize(
    ("payload", "header_changes", "status", "problem"),
    [
        ("not*base64!", {}, 400, "not valid base64"),
        ("", {}, 400, "no message.data"),
        (b"{not json", {}, 400, "not JSON"),
        (b'{"flow_run_id": "7"}', {}, 400, "UUID"),
        (b"x" * 70000, {}, 400, "over the 65536-byte limit"),
        (b'{"action": "tick"}', {"ce-type": "google.cloud.storage.object.v1.finalized"}, 400, "is not 'google.cloud"),
        (b'{"flow_run_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}', {}, 200, "OK"),
    ],
    ids=["bad-base64", "no-data", "not-json", "bad-id", "oversized", "wrong-event-type", "unknown-run-acknowledged"],
)
def test_bad_messages_are_refused_for_the_dead_letter_topic_saying_why(
    events: FlaskClient, payload: bytes | str, header_changes: dict[str, str], status: int, problem: str
) -> None:
    headers, body = cloud_event(payload, **header_changes)
    response = events.post("/", data=body, headers=headers)
    assert response.status_code == status
    assert problem in response.text


def test_a_body_that_is_no_event_at_all_is_refused(events: FlaskClient) -> None:
    response = events.post("/", data='{"hello": "world"}', headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_a_message_that_cannot_be_handled_now_is_redelivered(
    events: FlaskClient, store: LocalStore, fake: FakeCloudRun
) -> None:
    fake.inject(Fault(429, method="RunJob"))
    run = due_run(store)
    headers, body = cloud_event(json.dumps({"flow_run_id": run.id}).encode())
    assert events.post("/", data=body, headers=headers).status_code == 503
    assert store.get_run(run.id).state.type is StateType.SCHEDULED


def test_a_message_our_configuration_cannot_handle_fails_loudly(events: FlaskClient, store: LocalStore) -> None:
    run = due_run(store)
    store.claim_run(run, datetime.now(UTC), None)
    store.record_submission(run, "not-a-cloud-run-execution", None)
    store.request_cancellation(run.id)
    headers, body = cloud_event(json.dumps({"flow_run_id": run.id, "action": "cancel"}).encode())
    response = events.post("/", data=body, headers=headers)
    assert response.status_code == 500
    assert "not a Cloud Run execution" in response.text


# ---- one instance, built once ---------------------------------------------------------------------------------


def test_the_function_builds_itself_from_settings_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PUSH_POOL_HOME", str(tmp_path))
    monkeypatch.setenv("PUSH_POOL_WEBHOOK_SECRET", SECRET)
    gcp_functions.install(None)
    client = app("webhook")
    for _ in range(2):
        assert client.post("/", data=b'{"action": "tick"}', headers={"X-Push-Pool-Token": SECRET}).status_code == 200
    first = gcp_functions.current()
    client.post("/", data=b'{"action": "tick"}', headers={"X-Push-Pool-Token": SECRET})
    assert gcp_functions.current() is first
    assert (tmp_path / "store.db").exists()


def test_without_a_configured_secret_every_webhook_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PUSH_POOL_HOME", str(tmp_path))
    monkeypatch.delenv("PUSH_POOL_WEBHOOK_SECRET", raising=False)
    gcp_functions.install(None)
    response = app("webhook").post("/", data=b'{"action": "tick"}', headers={"Authorization": "Bearer anything"})
    assert response.status_code == 401
    assert "PUSH_POOL_WEBHOOK_SECRET" in response.json["error"]  # type: ignore[index]


def test_logs_are_cloud_logging_json(capsys: pytest.CaptureFixture[str]) -> None:
    gcp_functions.configure_logging()
    logging.getLogger("push_pools.test").warning("careful: %s", "this")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert (line["severity"], line["message"], line["logger"]) == ("WARNING", "careful: this", "push_pools.test")


def test_a_pubsub_submission_logs_the_run_fields_and_the_event_id(
    events: FlaskClient, store: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    gcp_functions.configure_logging()
    run = due_run(store)
    headers, body = cloud_event(json.dumps({"flow_run_id": run.id}).encode())
    assert events.post("/", data=body, headers=headers).status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    (line,) = [line for line in lines if line.get("flow_run_id") == run.id]
    assert (line["severity"], line["outcome"], line["pool"]) == ("INFO", "submitted", run.pool_name)
    assert line["logging.googleapis.com/labels"]["flow_run_id"] == run.id
    assert line["execution_id"] == headers["ce-id"]

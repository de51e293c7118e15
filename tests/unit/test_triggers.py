"""The shared trigger layer: payloads, authentication, and the webhook's answers to good and bad requests."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

import pytest

from push_pools.dispatcher import Dispatcher
from push_pools.errors import AuthenticationError, PayloadError
from push_pools.models import StateType
from push_pools.orchestrators.local import LocalStore
from push_pools.testing import InMemoryBackend
from push_pools.triggers.auth import WebhookAuthenticator, sign
from push_pools.triggers.handling import ReplyKind, RequestHandler
from push_pools.triggers.payloads import MAX_MESSAGE_BYTES, Action, RunRequest, parse_request
from push_pools.triggers.webhook import Webhook
from tests.conftest import ScheduleRun

RUN_ID = "6d3f4a52-1b7c-4d2e-9a8f-0c1d2e3f4a5b"
SECRET = "s3cret-token"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"flow_run_id": RUN_ID}, RunRequest(flow_run_id=RUN_ID)),
        ({"flow_run_id": RUN_ID.upper()}, RunRequest(flow_run_id=RUN_ID)),
        ({"flow_run_id": RUN_ID, "action": "cancel"}, RunRequest(action=Action.CANCEL, flow_run_id=RUN_ID)),
        (
            {"flow_run_id": RUN_ID, "event": "prefect.flow-run.Cancelling"},
            RunRequest(action="cancel", flow_run_id=RUN_ID),
        ),
        ({"flow_run_id": RUN_ID, "event": "prefect.flow-run.Late"}, RunRequest(flow_run_id=RUN_ID)),
        ({"action": "tick"}, RunRequest(action=Action.TICK)),
        ({"action": "tick", "pool": "ecs-prod"}, RunRequest(action=Action.TICK, pool="ecs-prod")),
        (
            {
                "id": "e0c6b6e8-0000-4000-8000-000000000000",
                "event": "prefect.flow-run.Scheduled",
                "occurred": "2026-11-24T10:00:00Z",
                "resource": {"prefect.resource.id": f"prefect.flow-run.{RUN_ID}", "prefect.state-type": "SCHEDULED"},
                "related": [],
            },
            RunRequest(flow_run_id=RUN_ID),
        ),
        ({"flow_run_id": RUN_ID, "unknown_field": 1}, RunRequest(flow_run_id=RUN_ID)),
    ],
)
def test_payloads_that_are_understood(body: dict[str, Any], expected: RunRequest) -> None:
    assert parse_request(json.dumps(body).encode()) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"a string"', "must be a JSON object"),
        (b"{}", "action 'submit' needs a flow_run_id"),
        (b'{"flow_run_id": "not-a-uuid"}', "flow_run_id: Value error, must be a UUID"),
        (b'{"flow_run_id": 42}', "flow_run_id: Input should be a valid string"),
        (json.dumps({"flow_run_id": RUN_ID, "action": "explode"}).encode(), "action: Input should be"),
        (json.dumps({"flow_run_id": RUN_ID, "event": "prefect.flow-run.Running"}).encode(), "unsupported event"),
        (json.dumps({"flow_run_id": RUN_ID, "event": ["x"]}).encode(), "unsupported event"),
        (
            json.dumps({"flow_run_id": RUN_ID, "event": "prefect.flow-run.Late", "action": "cancel"}).encode(),
            "not both",
        ),
        (json.dumps({"action": "tick", "pool": "../etc"}).encode(), "pool: String should match pattern"),
        (json.dumps({"resource": {"prefect.resource.id": "prefect.deployment.x"}}).encode(), "needs a flow_run_id"),
        (b"[" * 100_000 + b"]" * 100_000, "over the"),
        (b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),
        (b'{"flow_run_id": ' + b"9" * 4301 + b"}", "number too long"),
        (json.dumps({"flow_run_id": RUN_ID, "pad": "x" * MAX_MESSAGE_BYTES}).encode(), "over the 65536-byte limit"),
    ],
)
def test_payloads_that_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_request(body)


def test_requests_round_trip_as_queue_messages() -> None:
    request = RunRequest(action=Action.CANCEL, flow_run_id=RUN_ID)
    assert parse_request(request.to_message()) == request


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
def authenticator(clock: Clock) -> WebhookAuthenticator:
    return WebhookAuthenticator(SECRET, replay_window_seconds=300, clock=clock)


BODY = json.dumps({"flow_run_id": RUN_ID}).encode()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {SECRET}"},
        {"authorization": f"bearer {SECRET}"},
        {"X-Push-Pool-Token": SECRET},
        {"x-push-pool-token": SECRET},
    ],
)
def test_tokens_are_accepted(authenticator: WebhookAuthenticator, headers: dict[str, str]) -> None:
    authenticator.verify(headers, BODY)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing credentials"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing credentials"),
        ({"Authorization": "Bearer "}, "missing credentials"),
        ({"Authorization": "Bearer wrong"}, "invalid token"),
        ({"X-Push-Pool-Token": SECRET + "x"}, "invalid token"),
        ({"X-Push-Pool-Token": "ünïcödé"}, "invalid token"),
    ],
)
def test_bad_tokens_are_refused(authenticator: WebhookAuthenticator, headers: dict[str, str], message: str) -> None:
    with pytest.raises(AuthenticationError, match=message):
        authenticator.verify(headers, BODY)


def test_signatures_are_accepted_once_within_the_window(authenticator: WebhookAuthenticator, clock: Clock) -> None:
    headers = sign(SECRET, BODY, int(clock.now) - 299)
    authenticator.verify(headers, BODY)
    with pytest.raises(AuthenticationError, match="replayed"):
        authenticator.verify(headers, BODY)


def test_a_future_dated_signature_is_remembered_until_its_timestamp_leaves_the_window(
    authenticator: WebhookAuthenticator, clock: Clock
) -> None:
    headers = sign(SECRET, BODY, int(clock.now) + 300)
    authenticator.verify(headers, BODY)
    clock.now += 599  # a window after receipt, but the signed timestamp is still inside it
    with pytest.raises(AuthenticationError, match="replayed"):
        authenticator.verify(headers, BODY)
    clock.now += 2
    with pytest.raises(AuthenticationError, match="outside the 300s replay window"):
        authenticator.verify(headers, BODY)


def test_the_replay_memory_forgets_expired_signatures(authenticator: WebhookAuthenticator, clock: Clock) -> None:
    for offset in range(5):
        authenticator.verify(sign(SECRET, BODY, int(clock.now) - offset), BODY)
    clock.now += 1000
    authenticator.verify(sign(SECRET, BODY, int(clock.now)), BODY)
    assert len(authenticator._seen) == 1


@pytest.mark.parametrize(
    ("make_headers", "message"),
    [
        (lambda now: sign(SECRET, BODY, now - 301), "outside the 300s replay window"),
        (lambda now: sign(SECRET, BODY, now + 301), "outside the 300s replay window"),
        (lambda now: sign("other-secret", BODY, now), "invalid signature"),
        (lambda now: sign(SECRET, BODY + b" ", now), "invalid signature"),
        (lambda now: {**sign(SECRET, BODY, now), "X-Push-Pool-Timestamp": str(now + 1)}, "invalid signature"),
        (lambda now: {"X-Push-Pool-Signature": sign(SECRET, BODY, now)["X-Push-Pool-Signature"]}, "Timestamp"),
        (lambda now: {**sign(SECRET, BODY, now), "X-Push-Pool-Timestamp": "yesterday"}, "Timestamp"),
        (lambda now: {**sign(SECRET, BODY, now), "X-Push-Pool-Signature": "md5=abc"}, "invalid signature"),
        (lambda now: {**sign(SECRET, BODY, now), "X-Push-Pool-Signature": "sha256=\udc80"}, "invalid signature"),
        # Digits Python's int() reads but a timestamp never has: non-ASCII, or too many to convert.
        (lambda now: {**sign(SECRET, BODY, now), "X-Push-Pool-Timestamp": "\u00b2"}, "Timestamp"),
        (lambda now: {**sign(SECRET, BODY, now), "X-Push-Pool-Timestamp": "\u0661" * 10}, "Timestamp"),
        (lambda now: {**sign(SECRET, BODY, now), "X-Push-Pool-Timestamp": "9" * 5000}, "Timestamp"),
        (lambda now: {**sign(SECRET, BODY, now), "X-Push-Pool-Timestamp": f" {now}"}, "Timestamp"),
    ],
)
def test_forged_or_stale_signatures_are_refused(
    authenticator: WebhookAuthenticator, clock: Clock, make_headers: Any, message: str
) -> None:
    with pytest.raises(AuthenticationError, match=message):
        authenticator.verify(make_headers(int(clock.now)), BODY)


def test_without_a_secret_nothing_is_accepted() -> None:
    with pytest.raises(AuthenticationError, match="no webhook secret is configured"):
        WebhookAuthenticator(None).verify({"Authorization": "Bearer anything"}, BODY)


@pytest.fixture
def webhook(dispatcher: Dispatcher, clock: Clock) -> Webhook:
    enqueued: list[tuple[RunRequest, float]] = []
    handler = RequestHandler(dispatcher, enqueue=lambda request, delay: enqueued.append((request, delay)))
    hook = Webhook(handler, WebhookAuthenticator(SECRET, clock=clock), max_body_bytes=1024)
    hook.enqueued = enqueued  # type: ignore[attr-defined]
    return hook


AUTH = {"Authorization": f"Bearer {SECRET}"}


def body_for(run_id: str, **extra: str) -> bytes:
    return json.dumps({"flow_run_id": run_id, **extra}).encode()


def test_webhook_submits_a_due_run(
    webhook: Webhook, backend: InMemoryBackend, store: LocalStore, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()
    response = webhook.handle(AUTH, body_for(run.id))
    assert response.status == 202
    assert response.body["status"] == "submitted"
    assert response.body["infrastructure_pid"] == store.get_run(run.id).infrastructure_pid
    assert backend.calls["submit"] == 1


def test_webhook_queues_a_run_due_soon_and_leaves_a_later_one_to_the_tick(
    webhook: Webhook, backend: InMemoryBackend, schedule_run: ScheduleRun
) -> None:
    soon, later = schedule_run(in_seconds=120), schedule_run(in_seconds=3600)
    response = webhook.handle(AUTH, body_for(soon.id))
    assert (response.status, response.body["status"]) == (202, "queued")
    assert 100 < response.body["delay_seconds"] <= 120
    response = webhook.handle(AUTH, body_for(later.id))
    assert (response.status, response.body["status"]) == (202, "not-due")
    assert [(request.flow_run_id, round(delay, -2)) for request, delay in webhook.enqueued] == [(soon.id, 100.0)]  # type: ignore[attr-defined]
    assert backend.calls["submit"] == 0


def test_webhook_cancels(
    webhook: Webhook, dispatcher: Dispatcher, store: LocalStore, backend: InMemoryBackend, schedule_run: ScheduleRun
) -> None:
    run = schedule_run()
    dispatcher.submit_run(run.id)
    store.request_cancellation(run.id)
    response = webhook.handle(AUTH, body_for(run.id, event="prefect.flow-run.Cancelling"))
    assert (response.status, response.body["status"]) == (202, "cancelled")
    assert store.get_run(run.id).state.type is StateType.CANCELLED
    assert backend.calls["cancel"] == 1


def test_webhook_ticks(webhook: Webhook, schedule_run: ScheduleRun) -> None:
    schedule_run()
    response = webhook.handle(AUTH, b'{"action": "tick"}')
    assert response.status == 200
    assert "1 submitted" in response.body["tick"]


@pytest.mark.parametrize(
    ("headers", "body", "status", "message"),
    [
        (AUTH, b"x" * 1025, 413, "over the 1024-byte limit"),
        ({}, body_for(RUN_ID), 401, "missing credentials"),
        ({"Authorization": "Bearer nope"}, body_for(RUN_ID), 401, "invalid token"),
        (AUTH, b"{oops", 400, "not JSON"),
        (AUTH, b'{"flow_run_id": "1; DROP TABLE flow_runs"}', 400, "must be a UUID"),
        (AUTH, body_for("0f0f0f0f-0000-4000-8000-000000000000"), 404, "no flow run with id"),
    ],
)
def test_webhook_refuses_bad_requests_and_dispatches_nothing(
    webhook: Webhook,
    backend: InMemoryBackend,
    schedule_run: ScheduleRun,
    headers: dict[str, str],
    body: bytes,
    status: int,
    message: str,
) -> None:
    schedule_run()
    response = webhook.handle(headers, body)
    assert response.status == status
    assert message in response.body["error"]
    assert backend.calls["submit"] == 0
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_webhook_asks_for_a_retry_when_submission_keeps_failing(
    store: LocalStore, settings: Any, schedule_run: ScheduleRun, clock: Clock
) -> None:
    from push_pools.dispatcher import Backends
    from push_pools.errors import TransientSubmissionError

    def always_throttled(operation: str, _context: Any) -> None:
        raise TransientSubmissionError("throttled")

    backend = InMemoryBackend(fail=always_throttled)
    dispatcher = Dispatcher(store, Backends(settings, {"process": backend}), settings, sleep=lambda _: None)
    hook = Webhook(RequestHandler(dispatcher), WebhookAuthenticator(SECRET, clock=clock), max_body_bytes=1024)
    run = schedule_run()
    response = hook.handle(AUTH, body_for(run.id))
    assert response.status == 503
    assert response.headers["Retry-After"] == "30"
    assert store.get_run(run.id).state.type is StateType.SCHEDULED


def test_queue_messages(dispatcher: Dispatcher, backend: InMemoryBackend, schedule_run: ScheduleRun) -> None:
    handler = RequestHandler(dispatcher)
    run = schedule_run()
    assert handler.handle_message(body_for(run.id)).acknowledged
    assert backend.calls["submit"] == 1
    unreadable = handler.handle_message("garbage")
    assert (unreadable.kind, unreadable.acknowledged) == (ReplyKind.INVALID, False)
    unknown = handler.handle_message(body_for(str(uuid.uuid4())))
    assert (unknown.kind, unknown.acknowledged) == (ReplyKind.NOT_FOUND, True)


def test_webhook_answers_503_while_the_store_is_locked_by_another_writer(
    webhook: Webhook, store: LocalStore, schedule_run: ScheduleRun, backend: InMemoryBackend
) -> None:
    run = schedule_run()
    store._db().execute("PRAGMA busy_timeout = 0")  # give up at once instead of waiting for the lock
    writer = sqlite3.connect(store.path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        response = webhook.handle(AUTH, body_for(run.id))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert response.status == 503
    assert response.headers["Retry-After"] == "30"
    assert "database is locked" in response.body["error"]
    assert backend.calls["submit"] == 0
    assert store.get_run(run.id).state.type is StateType.SCHEDULED

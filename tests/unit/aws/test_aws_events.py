"""Telling Lambda's events apart, and reading HTTP requests out of them, with the canned events in fixtures."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from push_pools.errors import PayloadError, PayloadTooLargeError
from push_pools.platforms.aws.events import EventKind, UnsupportedEventError, event_kind, http_answer, http_request
from push_pools.platforms.aws.task_events import parse_task_event
from push_pools.triggers.webhook import HttpResponse
from tests.unit.aws.conftest import fixture


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("function_url_post.json", EventKind.HTTP),
        ("apigw_v2_post.json", EventKind.HTTP),
        ("apigw_v1_post.json", EventKind.HTTP),
        ("sqs_batch.json", EventKind.SQS),
        ("scheduled_event.json", EventKind.SCHEDULED),
        ("scheduler_tick.json", EventKind.REQUEST),
        ("ecs_task_state_change.json", EventKind.TASK),
    ],
)
def test_every_canned_event_is_recognised(name: str, kind: EventKind) -> None:
    assert event_kind(fixture(name)) is kind


@pytest.mark.parametrize(
    "event",
    [
        fixture("s3_put.json"),
        fixture("sns_notification.json"),
        fixture("cloudwatch_alarm.json"),
        {"Records": [{"eventSource": "aws:sqs"}, {"eventSource": "aws:kinesis"}]},
        {"detail-type": "ECS Task State Change", "source": "not.ecs"},
        {},
        [],
        "tick",
        7,
        None,
    ],
)
def test_anything_else_is_unsupported_and_says_what_is_expected(event: Any) -> None:
    with pytest.raises(UnsupportedEventError, match="unsupported event") as raised:
        event_kind(event)
    assert isinstance(raised.value, PayloadError)


def test_the_error_names_the_keys_not_the_values() -> None:
    with pytest.raises(UnsupportedEventError) as raised:
        event_kind({"password": "hunter2", "other": 1})
    assert "other, password" in str(raised.value)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "method", "path"),
    [
        ("function_url_post.json", "POST", "/"),
        ("apigw_v2_post.json", "POST", "/prod/webhook"),
        ("apigw_v1_post.json", "POST", "/webhook"),
    ],
)
def test_http_requests_are_read_from_every_shape(name: str, method: str, path: str) -> None:
    request = http_request(fixture(name), 65536)
    assert (request.method, request.path) == (method, path)
    assert request.body == b'{"flow_run_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}'
    assert all(key == key.lower() for key in request.headers)


def test_base64_bodies_are_checked_and_bounded() -> None:
    event = fixture("apigw_v2_post.json")
    event["body"] = "not base64 at all!"
    with pytest.raises(PayloadError, match="not valid base64"):
        http_request(event, 65536)
    event["body"] = base64.b64encode(b"x" * 70_000).decode()
    with pytest.raises(PayloadTooLargeError, match="65536-byte limit"):
        http_request(event, 65536)
    event["body"] = None
    assert http_request(event, 65536).body == b""


def test_odd_http_events_are_read_safely() -> None:
    event = fixture("apigw_v1_post.json")
    event["headers"] = None
    event["body"] = {"not": "a string"}
    with pytest.raises(PayloadError, match="must be a string"):
        http_request(event, 65536)


def test_http_answers_are_lambda_proxy_responses() -> None:
    answer = http_answer(HttpResponse(202, {"status": "submitted"}))
    assert answer == {
        "statusCode": 202,
        "headers": {"Content-Type": "application/json"},
        "body": '{"status": "submitted"}',
        "isBase64Encoded": False,
    }


def test_task_events_name_their_run() -> None:
    parsed = parse_task_event(fixture("ecs_task_state_change.json"))
    assert parsed is not None
    assert parsed.flow_run_id == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert parsed.idempotency_key == "0f8fad5b-d9cb-469f-a165-70867728950e-1"


@pytest.mark.parametrize(
    "detail",
    [None, {}, {"taskArn": 5, "lastStatus": "STOPPED"}, {"taskArn": "arn", "lastStatus": None}],
)
def test_malformed_task_events_are_refused(detail: Any) -> None:
    event = fixture("ecs_task_state_change.json")
    event["detail"] = detail
    with pytest.raises(PayloadError):
        parse_task_event(event)

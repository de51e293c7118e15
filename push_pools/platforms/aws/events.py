"""The shapes of the events AWS Lambda hands to push-pools, told apart and decoded. Pure.

- HTTP: a Function URL or API Gateway request (v2: `requestContext.http`; v1: `httpMethod`);
- SQS: a batch from the run queue's event source mapping (`Records` whose `eventSource` is `aws:sqs`);
- TASK: an "ECS Task State Change" from EventBridge (`source` aws.ecs and that `detail-type`);
- SCHEDULED: an EventBridge rule's "Scheduled Event";
- REQUEST: a push-pools payload as the event itself (it has `action` or `flow_run_id`), e.g. EventBridge
  Scheduler's input `{"action": "tick"}` or a direct invocation `{"flow_run_id": ..., "action": "cancel"}`.

Anything else is an UnsupportedEventError, which the handler raises: the invocation then counts as an error in
the function's metrics, and an asynchronous source retries it and finally hands it to its on-failure destination.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from push_pools.errors import PayloadError, PayloadTooLargeError
from push_pools.triggers.webhook import HttpResponse

TASK_STATE_CHANGE = "ECS Task State Change"
SCHEDULED_EVENT = "Scheduled Event"


class UnsupportedEventError(PayloadError):
    """An event of a shape the Lambda entry point does not handle (see the table in `aws_events`)."""


class EventKind(StrEnum):
    HTTP = "http"
    SQS = "sqs"
    TASK = "ecs-task-state-change"
    SCHEDULED = "scheduled"
    REQUEST = "request"


def event_kind(event: Any) -> EventKind:
    """Which kind of event this is; UnsupportedEventError (naming the keys seen, not the values) otherwise."""
    if not isinstance(event, Mapping):
        raise UnsupportedEventError(f"unsupported event: a JSON object was expected, not {type(event).__name__}")
    context = event.get("requestContext")
    if isinstance(context, Mapping) and (isinstance(context.get("http"), Mapping) or "httpMethod" in event):
        return EventKind.HTTP
    records = event.get("Records")
    if isinstance(records, list) and records and all(_from_sqs(record) for record in records):
        return EventKind.SQS
    detail_type = event.get("detail-type")
    if detail_type == TASK_STATE_CHANGE and event.get("source") == "aws.ecs":
        return EventKind.TASK
    if detail_type == SCHEDULED_EVENT:
        return EventKind.SCHEDULED
    if {"action", "flow_run_id"} & event.keys() and not {"Records", "detail-type", "requestContext"} & event.keys():
        return EventKind.REQUEST
    keys = ", ".join(sorted(str(key) for key in event)[:12]) or "none"
    raise UnsupportedEventError(
        f"unsupported event (keys: {keys}); expected an HTTP request (Function URL or API Gateway), an SQS batch, "
        'an ECS Task State Change, a scheduled event or a push-pools request such as {"action": "tick"}'
    )


def _from_sqs(record: Any) -> bool:
    return isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes


def http_request(event: Mapping[str, Any], max_body_bytes: int) -> HttpRequest:
    """The request in a Function URL or API Gateway (v1, v2) event; a base64 body too long to fit the limit once
    decoded is refused (PayloadTooLargeError) before it is decoded."""
    context = event.get("requestContext") or {}
    http = context.get("http") if isinstance(context, Mapping) else None
    if isinstance(http, Mapping):
        method, path = str(http.get("method", "")), str(event.get("rawPath") or http.get("path") or "/")
    else:
        method, path = str(event.get("httpMethod", "")), str(event.get("path") or "/")
    raw_headers = event.get("headers") or {}
    headers = {str(k).lower(): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, Mapping) else {}
    text = event.get("body") or ""
    if not isinstance(text, str):
        raise PayloadError("the request body must be a string")
    return HttpRequest(method.upper(), path, headers, _body(text, bool(event.get("isBase64Encoded")), max_body_bytes))


def _body(text: str, base64_encoded: bool, max_body_bytes: int) -> bytes:
    if not base64_encoded:
        return text.encode("utf-8", errors="surrogateescape")
    if len(text) > 4 * (max_body_bytes // 3 + 1):
        raise PayloadTooLargeError(f"body of about {len(text) * 3 // 4} bytes is over the {max_body_bytes}-byte limit")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError("the request body is not valid base64") from None


def http_answer(response: HttpResponse) -> dict[str, Any]:
    """A Lambda proxy response (the same shape for Function URLs and API Gateway v1 and v2)."""
    return {
        "statusCode": response.status,
        "headers": response.headers,
        "body": response.text(),
        "isBase64Encoded": False,
    }

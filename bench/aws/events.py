"""The events AWS hands the Lambda function, built as Lambda builds them (see tests/fixtures/aws for real ones)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:push-pools-runs"


def function_url_post(body: str, headers: dict[str, str]) -> dict[str, Any]:
    """A Function URL (payload v2) POST."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "content-length": str(len(body.encode()))} | headers,
        "requestContext": {"http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1"}, "stage": "$default"},
        "body": body,
        "isBase64Encoded": False,
    }


def sqs_batch(messages: Sequence[tuple[str, str]], receive_count: int = 1) -> dict[str, Any]:
    """An event source mapping's batch: (message id, body) pairs."""
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": f"handle-{message_id}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": "us-east-1",
            }
            for message_id, body in messages
        ]
    }


def scheduled_event() -> dict[str, Any]:
    """What an EventBridge rule with `rate(1 minute)` sends."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/push-pools-tick"],
        "detail": {},
    }


def run_request(flow_run_id: str) -> str:
    return json.dumps({"flow_run_id": flow_run_id})

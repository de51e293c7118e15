"""AWS Lambda entry point: one handler for every trigger of the push-pools function.

    handler(event, context)    # infra/aws/lambda_function.py re-exports it; Lambda's handler is lambda_function.handler

What it answers, by event (see `aws_events` for how each is recognised):

- **HTTP** (Function URL, API Gateway v1/v2): the webhook. Base64 bodies are decoded; `POST` goes to
  `Webhook.handle` (413, 401, 400, then 202/200/404/503/500), `GET .../healthz` answers 200, other methods 405.
- **SQS batch**: each record's body is a `RunRequest` message; the answer is a partial batch response whose
  `batchItemFailures` lists only the records to redeliver (not acknowledged: retry, unreadable, failed), so SQS
  deletes the others and, after the queue's receive limit, moves the failed ones to the dead-letter queue.
- **Scheduled event** (EventBridge rule) or a `{"action": "tick"}` payload (EventBridge Scheduler's input): the tick.
  Other push-pools payloads (`{"flow_run_id": ..., "action": "submit"|"cancel"}`) work on direct invocation.
- **ECS Task State Change**: applied to its run (`aws_task_events`).
- **Anything else**: UnsupportedEventError is logged and raised, so the invocation counts as an error in
  CloudWatch and an asynchronous source retries it, then sends it to its on-failure destination.

A run due within `PUSH_POOL_ENQUEUE_HORIZON_SECONDS` (15 min) is put on the queue (`PUSH_POOL_QUEUE_URL`) with a
delay that makes it arrive when due; a message arriving a little early is queued again for the rest.

Cold start, once per instance: the webhook secret and the orchestrator's credentials are read from Secrets Manager
(`PUSH_POOL_WEBHOOK_SECRET_ARN`; `PUSH_POOL_ORCHESTRATOR_API_KEY_SECRET_ARN`, exported as PREFECT_API_KEY, and
`PUSH_POOL_ORCHESTRATOR_AUTH_STRING_SECRET_ARN`, exported as PREFECT_API_AUTH_STRING for a self-hosted server behind
basic auth, before the orchestrator is built), then the clients, the dispatcher and the webhook are built and kept
for the instance's warm invocations. Importing this module builds nothing.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from push_pools import logs
from push_pools.dispatcher import Dispatcher
from push_pools.errors import (
    ConfigurationError,
    OrchestratorUnavailableError,
    PayloadError,
    PayloadTooLargeError,
    PushPoolError,
)
from push_pools.platforms.aws.backend import EcsBackend, client_config
from push_pools.platforms.aws.errors import translate
from push_pools.platforms.aws.events import EventKind, event_kind, http_answer, http_request
from push_pools.platforms.aws.task_events import apply_task_event
from push_pools.settings import Settings
from push_pools.triggers.handling import Reply, RequestHandler
from push_pools.triggers.payloads import Action, RunRequest, parse_request
from push_pools.triggers.webhook import HttpResponse, Webhook, error_response

logger = logging.getLogger(__name__)

WEBHOOK_SECRET_ARN = "PUSH_POOL_WEBHOOK_SECRET_ARN"
API_KEY_SECRET_ARN = "PUSH_POOL_ORCHESTRATOR_API_KEY_SECRET_ARN"
AUTH_STRING_SECRET_ARN = "PUSH_POOL_ORCHESTRATOR_AUTH_STRING_SECRET_ARN"
QUEUE_URL = "PUSH_POOL_QUEUE_URL"
EXPORTED_SECRETS = {API_KEY_SECRET_ARN: "PREFECT_API_KEY", AUTH_STRING_SECRET_ARN: "PREFECT_API_AUTH_STRING"}
"""The orchestrator's credentials: the variable naming each secret, and the variable its value is exported as."""
MAX_DELAY_SECONDS = 900
"""SQS's longest message delay."""


class SqsEnqueue:
    """Puts a request on the run queue, delayed so that it arrives when due (never early: delays round up)."""

    def __init__(self, client: Callable[[], Any], queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def __call__(self, request: RunRequest, delay: float) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        seconds = min(MAX_DELAY_SECONDS, max(0, math.ceil(delay)))
        try:
            self._client().send_message(QueueUrl=self.queue_url, MessageBody=request.to_message(), DelaySeconds=seconds)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "sqs:SendMessage") from exc


class LambdaFunction:
    """The function's state for one Lambda instance, and the routing of its events."""

    def __init__(self, dispatcher: Dispatcher, *, enqueue: SqsEnqueue | None = None) -> None:
        self.dispatcher = dispatcher
        self.handler = RequestHandler(dispatcher, enqueue=enqueue)
        self.webhook = Webhook.for_handler(self.handler)

    @classmethod
    def from_environment(
        cls, environ: MutableMapping[str, str] | None = None, session: boto3.session.Session | None = None
    ) -> LambdaFunction:
        """Read the secrets, export the orchestrator's credentials, build clients and the dispatcher: once per
        instance."""
        environ = os.environ if environ is None else environ
        session = session or boto3.session.Session()
        secrets = _SecretReader(session, client_config(Settings()))
        webhook_secret = secrets.read(environ.get(WEBHOOK_SECRET_ARN))
        for secret_arn_variable, exported_as in EXPORTED_SECRETS.items():
            value = secrets.read(environ.get(secret_arn_variable))
            if value is not None:
                environ[exported_as] = value
        settings = Settings(webhook_secret=webhook_secret) if webhook_secret is not None else Settings()
        config = client_config(settings)
        dispatcher = Dispatcher.from_settings(settings, {"ecs": EcsBackend.from_session(session, settings)})
        queue_url = environ.get(QUEUE_URL)
        sqs = functools.cache(lambda: session.client("sqs", config=config))
        return cls(dispatcher, enqueue=SqsEnqueue(sqs, queue_url) if queue_url else None)

    def __call__(self, event: Any, context: Any = None) -> dict[str, Any]:
        logs.bind_correlation_id(getattr(context, "aws_request_id", None))
        try:
            kind = event_kind(event)
        except PayloadError as exc:
            logger.error("%s", exc)
            raise
        if kind is EventKind.HTTP:
            return self.http(event)
        if kind is EventKind.SQS:
            return self.sqs(event["Records"])
        if kind is EventKind.TASK:
            return self.task_event(event)
        if kind is EventKind.SCHEDULED:
            return _answer(self.handler.handle(RunRequest(action=Action.TICK), deadline=_deadline(context)))
        return self.direct(event)

    def http(self, event: Mapping[str, Any]) -> dict[str, Any]:
        settings = self.dispatcher.settings
        try:
            request = http_request(event, settings.webhook_max_body_bytes)
        except PayloadTooLargeError as exc:
            return http_answer(error_response(413, str(exc)))
        except PayloadError as exc:
            return http_answer(error_response(400, str(exc)))
        if request.method == "GET" and request.path.rstrip("/").endswith("/healthz"):
            return http_answer(HttpResponse(200, {"status": "ok"}))
        if request.method != "POST":
            return http_answer(
                error_response(405, f"{request.method} is not allowed; POST a request", {"Allow": "POST"})
            )
        response = self.webhook.handle(request.headers, request.body)
        logger.info("webhook answered %s", response.status)
        return http_answer(response)

    def sqs(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Handle a batch, several records at once; only the records to redeliver are reported."""
        workers = max(1, min(len(records), self.dispatcher.settings.max_parallel_submissions))
        with ThreadPoolExecutor(max_workers=workers) as executor:
            # Each worker runs in a copy of this context, so its lines carry the invocation's request id.
            contexts = [contextvars.copy_context() for _ in records]
            handled = list(executor.map(lambda c, r: c.run(self._record, r), contexts, records))
        failures = [
            {"itemIdentifier": str(r.get("messageId", ""))} for r, ok in zip(records, handled, strict=True) if not ok
        ]
        return {"batchItemFailures": failures}

    def _record(self, record: Mapping[str, Any]) -> bool:
        body = record.get("body")
        if not isinstance(body, str):
            logger.error("SQS message %s has no text body", record.get("messageId"))
            return False
        extra = {"flow_run_id": _flow_run_id(body)}
        try:
            reply = self.handler.handle_message(body)
        except Exception:  # one failing message must not fail its batch: it is redelivered, then dead-lettered
            logger.exception("SQS message %s failed", record.get("messageId"), extra=extra)
            return False
        logger.info("SQS message %s: %s", record.get("messageId"), reply.kind, extra=extra)
        return reply.acknowledged

    def task_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Apply an ECS task state change. An unreachable orchestrator raises, so that Lambda retries the event."""
        try:
            answer = apply_task_event(self.dispatcher, event)
        except OrchestratorUnavailableError:
            raise
        except PushPoolError as exc:
            logger.error("ECS task event not applied: %s", exc)
            return {"status": "failed", "error": str(exc)}
        logger.info("ECS task event: %s", answer)
        return answer

    def direct(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A push-pools request given as the event itself (Scheduler input, direct invocation)."""
        return _answer(self.handler.handle(parse_request(json.dumps(event, default=str))))


class _SecretReader:
    """Secrets Manager, read at cold start only; its client is made only if a secret is configured."""

    def __init__(self, session: boto3.session.Session, config: Any) -> None:
        self._session = session
        self._config = config
        self._client: Any = None

    def read(self, secret_id: str | None) -> str | None:
        if not secret_id:
            return None
        from botocore.exceptions import BotoCoreError, ClientError

        if self._client is None:
            self._client = self._session.client("secretsmanager", config=self._config)
        try:
            value = self._client.get_secret_value(SecretId=secret_id).get("SecretString")
        except (ClientError, BotoCoreError) as exc:
            raise ConfigurationError(
                f"cannot read secret {secret_id}: {translate(exc, 'secretsmanager:GetSecretValue')}"
            ) from exc
        if not value:
            raise ConfigurationError(f"secret {secret_id} has no string value")
        return str(value)


def _flow_run_id(body: str) -> str | None:
    """The run a queue message is about, for its log lines; None when the body names none."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    run_id = message.get("flow_run_id") if isinstance(message, dict) else None
    return run_id if isinstance(run_id, str) else None


TICK_MARGIN_SECONDS = 10.0
"""Time a tick leaves the invocation after its last submission, for the submissions in flight and the sweep."""


def _deadline(context: Any) -> float | None:
    """When a tick must stop taking due runs: the invocation's remaining time less a margin; None outside Lambda
    (the tick then uses `tick_deadline_seconds`)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    return time.monotonic() + max(0.0, float(remaining()) / 1000 - TICK_MARGIN_SECONDS)


def _answer(reply: Reply) -> dict[str, Any]:
    return {"kind": str(reply.kind), **reply.body}


@functools.cache
def _function() -> LambdaFunction:
    logs.configure(logs.JsonFormatter("aws"))
    return LambdaFunction.from_environment()


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda handler: builds the instance's function on first use, then routes the event."""
    return _function()(event, context)

"""Google Cloud Functions (2nd gen) entry points. One source, deployed as two functions:

- `webhook` (HTTP): the webhook payloads (`{"flow_run_id": ...}`, Prefect events, `{"action": "tick"}`),
  authenticated by the shared secret (a bearer token or an HMAC signature: see `auth`). It is the one public
  endpoint, because Prefect's automations cannot mint Google ID tokens; everything else is refused before it is
  read (405 for other methods, 413 past the size limit, 401 without the secret).
- `pubsub` (CloudEvent): the same payloads as Pub/Sub messages, pushed by a subscription with an OIDC token to a
  function that only that subscription's service account may invoke (or delivered by an Eventarc trigger).
  Cloud Scheduler publishes `{"action": "tick"}` to the same topic every minute, so the tick needs no secret of
  ours and no public endpoint: Google checks every caller's identity before the function runs.

Pub/Sub's answer: a message handled, or naming a run that does not exist, is acknowledged (HTTP 200). Any other
is refused (400 unreadable or not a Pub/Sub event, 503 try again later, 500 our configuration), so Pub/Sub
delivers it again with backoff and, after the subscription's maximum delivery attempts, moves it to the
dead-letter topic: nothing is dropped unseen, unreadable messages included.

Runs announced before they are due: Pub/Sub has no delayed delivery, so they stay SCHEDULED and the tick (every
minute) submits them once due, at most one tick interval late. No queue of our own holds them, so none is lost.

Secrets (PUSH_POOL_WEBHOOK_SECRET, PREFECT_API_KEY) come from Secret Manager as the platform's secret environment
variables, set by Terraform: no SDK to import at cold start and no call per instance; access is checked when the
function is deployed. A new secret version reaches new instances (pin versions and redeploy to roll it out).

The dispatcher, its Cloud Run clients and the authenticator are built once per instance, on the first request.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import flask
import functions_framework

from push_pools import logs
from push_pools.dispatcher import Dispatcher
from push_pools.errors import PayloadError
from push_pools.settings import Settings
from push_pools.triggers.handling import ReplyKind, RequestHandler
from push_pools.triggers.payloads import MAX_MESSAGE_BYTES
from push_pools.triggers.webhook import HttpResponse, Webhook, error_response

if TYPE_CHECKING:
    from cloudevents.http import CloudEvent

logger = logging.getLogger(__name__)

PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
_REFUSAL_STATUS = {ReplyKind.INVALID: 400, ReplyKind.RETRY: 503, ReplyKind.FAILED: 500}
_MAX_ENCODED_BYTES = 4 * (MAX_MESSAGE_BYTES // 3 + 1)


@dataclass(frozen=True)
class GcpFunction:
    """What one function instance keeps between invocations."""

    handler: RequestHandler
    webhook: Webhook

    @classmethod
    def from_settings(cls, settings: Settings | None = None, dispatcher: Dispatcher | None = None) -> GcpFunction:
        settings = settings or Settings()
        dispatcher = dispatcher or Dispatcher.from_settings(settings)
        # No `enqueue`: Pub/Sub cannot delay a message; the tick submits early runs when they are due.
        handler = RequestHandler(dispatcher)
        return cls(handler, Webhook.for_handler(handler))


_instance: GcpFunction | None = None
_instance_lock = threading.Lock()


def current() -> GcpFunction:
    """This instance's function state, built on first use."""
    global _instance
    with _instance_lock:
        if _instance is None:
            _instance = GcpFunction.from_settings()
        return _instance


def install(function: GcpFunction | None) -> None:
    """Use this state from now on (tests, embedding); None builds it again from settings on the next request."""
    global _instance
    with _instance_lock:
        _instance = function


@functions_framework.http
def webhook(request: flask.Request) -> flask.Response:
    """The HTTP function: one webhook request."""
    if request.method != "POST":
        return _flask(error_response(405, f"{request.method} is not allowed; POST a JSON payload", {"Allow": "POST"}))
    logs.bind_correlation_id(
        request.headers.get("Function-Execution-Id") or request.headers.get("X-Cloud-Trace-Context")
    )
    function = current()
    too_large = function.webhook.oversized(request.content_length or 0)
    if too_large is not None:
        return _flask(too_large)
    # Read at most one byte past the limit, so a body sent without Content-Length is bounded too.
    body = request.stream.read(function.webhook.max_body_bytes + 1)
    return _flask(function.webhook.handle(dict(request.headers.items()), body))


@functions_framework.cloud_event
def pubsub(event: CloudEvent) -> None:
    """The CloudEvent function: one Pub/Sub message. Returning acknowledges it; raising refuses it."""
    logs.bind_correlation_id(event.get("id"))
    try:
        body = pubsub_message(event)
    except PayloadError as exc:
        logger.error("refused event %s: %s", event.get("id"), exc)
        _refuse(400, str(exc))
    reply = current().handler.handle_message(body)
    if reply.acknowledged:
        logger.info("message %s: %s", event.get("id"), reply.kind)
        return
    error = str(reply.body.get("error") or reply.body.get("message") or reply.kind)
    logger.warning("message %s not acknowledged (%s): %s", event.get("id"), reply.kind, error)
    _refuse(_REFUSAL_STATUS.get(reply.kind, 500), error)


def pubsub_message(event: CloudEvent) -> bytes:
    """The decoded data of a Pub/Sub `messagePublished` event; a PayloadError says what is wrong with it."""
    if event.get("type") != PUBSUB_EVENT_TYPE:
        raise PayloadError(f"event type {str(event.get('type'))[:100]!r} is not {PUBSUB_EVENT_TYPE!r}")
    data: Any = event.get_data()
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise PayloadError("event data is not JSON") from None
    message = data.get("message") if isinstance(data, dict) else None
    encoded = message.get("data") if isinstance(message, dict) else None
    if not isinstance(encoded, str) or not encoded:
        raise PayloadError("event has no message.data")
    if len(encoded) > _MAX_ENCODED_BYTES:
        raise PayloadError(f"message data is over the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError("message.data is not valid base64") from None


def _refuse(status: int, message: str) -> NoReturn:
    """Answer the push with this status and a JSON error: anything but 2xx makes Pub/Sub deliver it again."""
    flask.abort(_flask(error_response(status, message)))


def _flask(response: HttpResponse) -> flask.Response:
    return flask.Response(response.text(), status=response.status, headers=response.headers)


def configure_logging(level: int = logging.INFO) -> None:
    """Log push-pools' records to stderr as Cloud Logging JSON (called by the deployed `main.py`)."""
    logs.configure(logs.JsonFormatter("gcp"), level)

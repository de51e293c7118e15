"""Azure Functions entry point (Python v2 programming model): a webhook, a storage queue and a timer.

- `webhook` — HTTP `POST /api/runs`. Authenticated by push-pools itself (bearer token or HMAC signature with
  `PUSH_POOL_WEBHOOK_SECRET`, a Key Vault reference in the app settings), so the route is anonymous to Azure.
- `run_queue` — storage queue `%PUSH_POOL_QUEUE_NAME%` through the identity-based connection `PUSH_POOL_QUEUE`
  (`PUSH_POOL_QUEUE__queueServiceUri`, `__credential`, `__clientId`). A message that is not handled now (a
  transient failure, an unreadable body, a configuration error) raises, so the host makes it visible again after
  `visibilityTimeout` and, after `maxDequeueCount` tries (host.json: 12 tries 30 s apart, longer than ACI's 5-minute
  create-quota window), moves it to `<queue>-poison`. A run whose message ends there is still submitted by the
  tick: the queue only makes it faster.
- `tick` — timer, every minute: cancellations, status of running container groups, orphans, due runs, sweep.

Runs due within `PUSH_POOL_ENQUEUE_HORIZON_SECONDS` are put back on the queue with a visibility delay (storage
queues allow up to 7 days), so they start on time instead of at the next tick. Clients are built once per
instance, on first use, with `DefaultAzureCredential` (the user-assigned identity named by `AZURE_CLIENT_ID`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import azure.functions as func

from push_pools import logs
from push_pools.dispatcher import Dispatcher
from push_pools.platforms.azure.errors import translated
from push_pools.settings import Settings
from push_pools.tick import tick as run_tick
from push_pools.triggers.handling import Enqueue, RequestHandler
from push_pools.triggers.payloads import RunRequest
from push_pools.triggers.webhook import Webhook

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

logger = logging.getLogger(__name__)

QUEUE_CONNECTION = "PUSH_POOL_QUEUE"
"""The queue trigger's identity-based connection: app settings `PUSH_POOL_QUEUE__queueServiceUri` and friends."""
QUEUE_NAME_SETTING = "PUSH_POOL_QUEUE_NAME"
QUEUE_SERVICE_URI_SETTING = f"{QUEUE_CONNECTION}__queueServiceUri"
TICK_SCHEDULE = "0 * * * * *"
"""Every minute, at second 0 (NCRONTAB with seconds); PUSH_POOL_TICK_INTERVAL_SECONDS should say 60."""
MAX_QUEUE_DELAY_SECONDS = 7 * 24 * 3600

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


class MessageNotHandled(Exception):
    """Raised from the queue trigger so the host redelivers the message (and, in the end, poisons it)."""


class StorageQueueEnqueue:
    """Puts a request back on the storage queue, invisible until its delay has passed."""

    def __init__(self, queue: QueueClient) -> None:
        self.queue = queue

    def __call__(self, request: RunRequest, delay_seconds: float) -> None:
        # Whole seconds, rounded up: a message seen early would only be queued again.
        delay = min(MAX_QUEUE_DELAY_SECONDS, max(0, math.ceil(delay_seconds)))
        # A refusal is raised, as on AWS: the request is answered as failed (the message is redelivered, the webhook
        # caller sees a 500) instead of "queued", and the run stays SCHEDULED for the tick. Nothing is lost either way;
        # this way nothing claims a message that was never queued.
        with translated("queue:SendMessage"):
            self.queue.send_message(request.to_message(), visibility_timeout=delay)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> StorageQueueEnqueue | None:
        """The queue the trigger listens to, or None when the app settings name none."""
        service_uri = environ.get(QUEUE_SERVICE_URI_SETTING)
        queue_name = environ.get(QUEUE_NAME_SETTING)
        if not service_uri or not queue_name:
            return None
        from azure.identity import DefaultAzureCredential
        from azure.storage.queue import QueueClient

        return cls(QueueClient(service_uri, queue_name, credential=DefaultAzureCredential(), retry_total=2))


def send_run_fields_to_the_host() -> None:
    """The worker's handlers (on the root logger) forward only the message, with the invocation id added by the
    host: put the run's fields into the message so a run's lines are found in Application Insights."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, logs.RunFieldsInMessage) for existing in handler.filters):
            handler.addFilter(logs.RunFieldsInMessage())


@dataclass(frozen=True)
class FunctionRuntime:
    """What one function instance builds once and reuses across invocations."""

    dispatcher: Dispatcher
    handler: RequestHandler
    webhook: Webhook

    @classmethod
    def build(cls, dispatcher: Dispatcher, enqueue: Enqueue | None = None) -> FunctionRuntime:
        handler = RequestHandler(dispatcher, enqueue=enqueue)
        return cls(dispatcher, handler, Webhook.for_handler(handler))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> FunctionRuntime:
        from push_pools.platforms.azure import backend as aci

        environ = os.environ if environ is None else environ
        # The SDKs log every request's headers at INFO: noise (and cost) in Application Insights.
        logging.getLogger("azure").setLevel(logging.WARNING)
        send_run_fields_to_the_host()
        settings = Settings()
        dispatcher = Dispatcher.from_settings(settings, {"aci": aci.from_settings(settings)})
        return cls.build(dispatcher, StorageQueueEnqueue.from_environment(environ))


_runtime: FunctionRuntime | None = None
_runtime_lock = threading.Lock()


def runtime() -> FunctionRuntime:
    """This instance's runtime, built on the first invocation (not at import, so indexing needs no settings)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = FunctionRuntime.from_environment()
        return _runtime


def use_runtime(replacement: FunctionRuntime | None) -> None:
    """Set (or, with None, forget) this instance's runtime: for tests and for hosting the app elsewhere."""
    global _runtime
    with _runtime_lock:
        _runtime = replacement


@app.function_name("webhook")
@app.route(route="runs", methods=[func.HttpMethod.POST])
def webhook(req: func.HttpRequest) -> func.HttpResponse:
    response = runtime().webhook.handle(dict(req.headers), req.get_body())
    headers = {name: value for name, value in response.headers.items() if name.lower() != "content-type"}
    return func.HttpResponse(response.text(), status_code=response.status, headers=headers, mimetype="application/json")


@app.function_name("run_queue")
@app.queue_trigger(arg_name="message", queue_name=f"%{QUEUE_NAME_SETTING}%", connection=QUEUE_CONNECTION)
def run_queue(message: func.QueueMessage) -> None:
    reply = runtime().handler.handle_message(message.get_body())
    if not reply.acknowledged:
        raise MessageNotHandled(f"message {message.id} not handled ({reply.kind}): {reply.body.get('error', '')}")


@app.function_name("tick")
@app.timer_trigger(schedule=TICK_SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=False)
def tick(timer: func.TimerRequest) -> None:
    if timer.past_due:
        logger.warning("the tick is running late")
    report = run_tick(runtime().dispatcher)
    logger.info("tick: %s", report.summary())
    for error in report.errors:
        logger.warning("tick error: %s", error)

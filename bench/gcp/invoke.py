"""Run by `bench.gcp.footprint` in a fresh process from the unpacked Cloud Functions archive: load `main.py` with
functions-framework as the runtime does (target `webhook` or `pubsub`), hand it the requests of one scenario, print
the cost (`bench.fresh_process`). Configured like the deployed function (PUSH_POOL_* and the secret as environment
variables), except that its Cloud Run clients reach the local fake at $BENCH_CLOUD_RUN_ENDPOINT, anonymously.

    python -m bench.gcp.invoke webhook|batch|tick RUN_ID...
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.fresh_process import run_child

WEBHOOK_TOKEN = "bench-webhook-secret"
ENDPOINT_VARIABLE = "BENCH_CLOUD_RUN_ENDPOINT"
PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"


def load(scenario: str) -> Callable[[Any], Any]:
    import functions_framework

    target = "webhook" if scenario == "webhook" else "pubsub"
    app = functions_framework.create_app(target=target, source=str(Path.cwd() / "main.py"))  # type: ignore[no-untyped-call]
    client = app.test_client()
    point_clients_at_the_fake()
    return lambda request: client.post("/", **request).status_code


def point_clients_at_the_fake() -> None:
    """What `GcpFunction.from_settings` builds on the first request, with the fake's endpoint and no credentials."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import run_v2

    from push_pools.dispatcher import Dispatcher
    from push_pools.platforms.gcp import function as gcp_functions
    from push_pools.platforms.gcp.backend import CloudRunBackend
    from push_pools.settings import Settings

    settings = Settings()
    options = ClientOptions(api_endpoint=os.environ[ENDPOINT_VARIABLE])
    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    backend = CloudRunBackend(
        run_v2.JobsClient(transport="rest", client_options=options, credentials=credentials),
        run_v2.ExecutionsClient(transport="rest", client_options=options, credentials=credentials),
        default_project=settings.gcp_project,
        call_timeout=min(20.0, settings.submit_deadline_seconds),
    )
    dispatcher = Dispatcher.from_settings(settings, {"cloud-run": backend})
    gcp_functions.install(gcp_functions.GcpFunction.from_settings(settings, dispatcher))


def pubsub_event(body: str, message_id: str) -> dict[str, Any]:
    """A Pub/Sub push as Eventarc delivers it to a CloudEvent function (binary content mode)."""
    data = {
        "message": {"data": base64.b64encode(body.encode()).decode(), "messageId": message_id, "attributes": {}},
        "subscription": "projects/bench/subscriptions/push-pools-requests",
    }
    headers = {
        "ce-id": message_id,
        "ce-specversion": "1.0",
        "ce-source": "//pubsub.googleapis.com/projects/bench/topics/push-pools-requests",
        "ce-type": PUBSUB_EVENT_TYPE,
        "Content-Type": "application/json",
    }
    return {"data": json.dumps(data), "headers": headers}


def events(scenario: str, run_ids: list[str]) -> list[Any]:
    if scenario == "webhook":
        body = json.dumps({"flow_run_id": run_ids[0]})
        headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}", "Content-Type": "application/json"}
        return [{"data": body, "headers": headers}]
    if scenario == "batch":  # Pub/Sub pushes one message per invocation
        return [pubsub_event(json.dumps({"flow_run_id": run_id}), f"m-{i}") for i, run_id in enumerate(run_ids)]
    return [pubsub_event(json.dumps({"action": "tick"}), "tick")]  # Cloud Scheduler → Pub/Sub


if __name__ == "__main__":
    run_child(load, events)
